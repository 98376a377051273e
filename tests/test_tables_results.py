"""``show_table`` (notebook display + CSV/Markdown/LaTeX under the tables folder), ``hw3 results`` (one line per
finished run, from the checkpoints) and ``hw3 report``'s per-problem progress."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from hw3lib import checkpoint
from hw3lib.cli import main
from hw3lib.report.tables import show_table, tables_dir, write_table


def _table() -> pd.DataFrame:
    df = pd.DataFrame({"usps → mnistm": ["71.20 ± 1.05", "—"], "mse_x": [0.0123456789, 2.5]},
                      index=["DANN", "GTA | 50%"])
    df.index.name = "target-test accuracy (%)"
    return df


def test_show_table_displays_and_writes_csv_md_tex(tmp_path, monkeypatch):
    shown = []
    metadata = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: (shown.append(obj), metadata.append(kw)))
    monkeypatch.setenv("HW3_TABLES_DIR", str(tmp_path / "tables"))
    assert show_table(_table(), "p3_accuracy", caption="Accuracy & 5% of _all_") is None  # no Out[] line
    # both outputs carry the table's name: the report places it by name (hw3lib.report.placement)
    assert [m["metadata"]["hw3_appendix"]["name"] for m in metadata] == ["p3_accuracy"] * 2
    assert not metadata[0]["metadata"]["hw3_appendix"]["appendix"]
    assert "Accuracy & 5% of _all_" in shown[0].data and shown[1] is not None and len(shown) == 2
    folder = tmp_path / "tables"
    assert sorted(p.name for p in folder.iterdir()) == ["p3_accuracy.csv", "p3_accuracy.md", "p3_accuracy.tex"]
    rows = list(csv.reader((folder / "p3_accuracy.csv").open()))
    assert rows[0] == ["target-test accuracy (%)", "usps → mnistm", "mse_x"]
    assert rows[1] == ["DANN", "71.20 ± 1.05", "0.0123456789"]  # full precision in the CSV
    md = (folder / "p3_accuracy.md").read_text().splitlines()
    assert md[2] == "| target-test accuracy (%) | usps → mnistm | mse_x |" and md[3] == "|---|---|---|"
    assert md[5] == r"| GTA \| 50% | — | 2.5 |"
    tex = (folder / "p3_accuracy.tex").read_text()
    assert r"\caption{Accuracy \& 5\% of \_all\_}" in tex and r"\label{tab:p3_accuracy}" in tex
    assert r"71.20 $\pm$ 1.05" in tex and r"usps $\rightarrow$ mnistm" in tex and r"GTA | 50\%" in tex
    assert "→" not in tex and "±" not in tex
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*"))


def test_a_two_level_index_is_two_columns_in_markdown(tmp_path):
    df = pd.DataFrame({"accuracy": ["37.65", "84.00"]},
                      index=pd.MultiIndex.from_tuples([("usps → mnistm", "DANN"), ("usps → mnistm", "AdaMatch + MCC")],
                                                      names=["course pair", "candidate"]))
    md = write_table(df, "p4_development", folder=tmp_path)["md"].read_text().splitlines()
    assert md[0] == "| course pair | candidate | accuracy |" and md[1] == "|---|---|---|"
    assert md[3] == "| usps → mnistm | AdaMatch + MCC | 84.00 |"
    assert next(csv.reader((tmp_path / "p4_development.csv").open())) == ["course pair", "candidate", "accuracy"]


def test_tables_folder_defaults_to_the_project_and_names_are_checked(tmp_path, monkeypatch):
    monkeypatch.delenv("HW3_TABLES_DIR", raising=False)
    monkeypatch.setenv("HW3_ROOT", str(tmp_path))
    assert tables_dir() == tmp_path / "report" / "tables"
    paths = write_table(pd.DataFrame({"a": [1, 2]}), "plain")
    assert paths["csv"].read_text() == "a\n1\n2\n"  # a default 0..n-1 index is not written
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="table name"):
            write_table(pd.DataFrame({"a": [1]}), bad)
    with pytest.raises(ValueError, match="DataFrame"):
        write_table([1, 2], "x")


# ---------------------------------------------------------------- hw3 results

def _ckpt(path: Path, **fields) -> None:
    checkpoint.save({"models": {}, **fields}, path / checkpoint.CKPT_NAME)


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs" / "quick"
    _ckpt(root / "p1_vae", kind="vae", config={"seed": 0}, step=750, total_steps=750, finished=True,
          history={"test_mse": [0.05, 0.0321]}, extra={"wall_s": 125.4, "threads": 1})
    _ckpt(root / "p3_dann" / "dann_usps_mnistm_s1", kind="uda", step=300, total_steps=300, finished=True,
          config={"method": "dann", "source": "usps", "target": "mnistm", "seed": 1},
          extra={"metrics": {"target_acc": 71.234}, "threads": [2, 1]})
    _ckpt(root / "p4_uda" / "gta_svhn_usps_s0", kind="gta", step=10, total_steps=250, finished=False,
          config={"method": "gta", "source": "svhn", "target": "usps", "seed": 0})
    _ckpt(root / "p2_gan", finished=True)  # almost nothing recorded: still listed
    (root / "p2_attr").mkdir()
    (root / "p2_attr" / checkpoint.CKPT_NAME).write_bytes(b"not a checkpoint")
    return root


def test_results_lists_finished_runs_one_line_each(runs, capsys):
    assert main(["results", str(runs)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["problem", "method", "pair", "seed", "metric", "steps", "threads", "wall", "run"]
    assert len(lines) == 4  # header + vae, dann, gan; the unfinished GTA run and the broken file are not listed
    vae = next(ln for ln in lines if ln.startswith("p1_vae"))
    assert vae.split()[:2] == ["p1_vae", "vae"] and "test_mse 0.0321" in vae and "750/750" in vae
    assert "2 min 05 s" in vae  # from extra["wall_s"]
    assert vae.split()[6:8] == ["750/750", "1"]  # extra["threads"]
    dann = next(ln for ln in lines if ln.startswith("p3_dann"))
    assert "usps → mnistm" in dann and "target acc 71.23 %" in dann and dann.endswith("p3_dann/dann_usps_mnistm_s1")
    assert " 2,1 " in dann  # resumed at another thread count: both
    gan = next(ln for ln in lines if ln.startswith("p2_gan"))
    assert gan.split()[:4] == ["p2_gan", "—", "—", "—"] and "?/?" in gan
    assert "1 unfinished" in err and "1 unreadable" in err


def test_results_default_root_and_errors(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HW3_ROOT", str(tmp_path))
    monkeypatch.delenv("HW3_RUNS", raising=False)
    assert main(["results"]) == 0  # runs/quick of the project (settings.RUNS), like the course scripts
    assert "p3_dann/dann_usps_mnistm_s1" in capsys.readouterr().out  # relative to runs/quick
    monkeypatch.setenv("HW3_RUNS", "runs/full")
    assert main(["results"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hw3: error: no run folder") and "runs/full" in err and "\n" not in err


# ---------------------------------------------------------------- progress of hw3 report

def test_progress_counts_finished_runs_and_estimates_from_the_last_build(runs):
    from hw3lib.report.progress import ProblemProgress

    params = {"steps": 300, "seeds": (0, 1)}
    previous = {"status": "ok", "wall_s": 185.0, "runs_finished": 3, "parameters": {"steps": 300, "seeds": [0, 1]}}
    with ProblemProgress("Problem 3: DANN", runs / "p3_dann", previous, params, enabled=False) as bar:
        assert bar.before == 1
        assert bar.line().startswith("1/3 runs finished · 0 s of ~3 min 05 s (last build)")
        _ckpt(runs / "p3_dann" / "dann_usps_mnistm_s2", kind="uda", step=300, total_steps=300, finished=True,
              config={"method": "dann"})
        bar.status = "ok"
    assert bar.finished == 2 and bar.line().startswith("ok · 2/3 runs finished (1 new)")
    other = ProblemProgress("P3", runs / "p3_dann", previous, {"steps": 5}, enabled=False)
    assert other.estimate_s is None and "last build" not in other.line()  # other parameters: no estimate
    finished, current = other.watch.scan()
    assert finished == 2 and current is None
    assert ProblemProgress("P4", runs / "p4_uda").watch.scan()[1].step == 10  # the run in progress


def test_report_sets_tables_folder_and_records_runs(tmp_path):
    """A dummy notebook calls show_table and writes a checkpoint: the tables land in REPORT/tables (the kernel
    inherits $HW3_TABLES_DIR) and run.json counts the finished run."""
    from hw3lib.report.build import build_report

    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    params = new_code_cell('run_dir = "../runs/quick/p1_vae"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(
        "import pandas as pd\nfrom hw3lib import checkpoint\nfrom hw3lib.report.tables import show_table\n"
        "show_table(pd.DataFrame({'acc': [42.5]}, index=['DANN']), 'p1_demo', caption='Demo')\n"
        "checkpoint.save({'models': {}, 'finished': True, 'kind': 'vae'}, run_dir + '/checkpoint.pt')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(nbs / "p1_vae.ipynb"))
    profile = tmp_path / "p.yaml"
    profile.write_text("data_size: null\n")
    data = tmp_path / "data" / "face"
    data.mkdir(parents=True)
    result = build_report(profile, data=data.parent, out=tmp_path / "out", device="cpu", only="p1", notebooks=nbs,
                          runs_root=tmp_path / "runs", figures_dir=tmp_path / "figs", pdf=False, progress=False)
    assert result.exit_code == 0
    assert (tmp_path / "out" / "tables" / "p1_demo.csv").read_text() == ",acc\nDANN,42.5\n"
    assert {p.suffix for p in (tmp_path / "out" / "tables").iterdir()} == {".csv", ".md", ".tex"}
    assert json.loads(result.run_json.read_text())["notebooks"]["p1_vae"]["runs_finished"] == 1
    assert "Demo" in result.html.read_text()
