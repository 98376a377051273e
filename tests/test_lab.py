"""JupyterLab-first pieces that need no browser: project-relative paths, the data check of the notebooks, the
notebooks' path cell from two working directories, the seaborn theme and figures, `make lab`."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hw3lib.paths import project_path, project_root

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- project_path


@pytest.fixture
def project(tmp_path, monkeypatch):
    """tmp/proj (notebooks/ + .hw3-project) inside tmp, which has a notebooks/ but no marker."""
    monkeypatch.delenv("HW3_ROOT", raising=False)
    (tmp_path / "notebooks").mkdir()
    proj = tmp_path / "proj"
    (proj / "notebooks" / "sub").mkdir(parents=True)
    (proj / ".hw3-project").touch()
    return proj


def test_project_path_from_the_root_and_from_below(project, monkeypatch):
    for cwd in (project, project / "notebooks", project / "notebooks" / "sub"):
        monkeypatch.chdir(cwd)
        assert project_root() == project.resolve()
        assert project_path("data") == project.resolve() / "data"
    assert project_path("/abs/data") == Path("/abs/data")  # absolute: unchanged
    assert project_path("~/x") == Path.home() / "x"


def test_project_root_needs_notebooks_and_a_marker(project, monkeypatch):
    # tmp has notebooks/ but neither marker: from there the cwd itself is the root
    monkeypatch.chdir(project.parent)
    assert project_root() == project.parent.resolve()
    (project / ".hw3-project").unlink()
    (project / "pyproject.toml").write_text("[project]\n")  # pyproject.toml is a marker too
    assert project_root(project / "notebooks") == project.resolve()
    elsewhere = project.parent / "other"
    elsewhere.mkdir()
    assert project_root(elsewhere) == elsewhere.resolve()  # nothing above: the cwd


def test_hw3_root_wins(project, monkeypatch, tmp_path):
    monkeypatch.chdir(project / "notebooks")
    monkeypatch.setenv("HW3_ROOT", str(tmp_path / "elsewhere"))
    assert project_path("runs/x") == (tmp_path / "elsewhere" / "runs" / "x").resolve()


def test_the_repository_is_a_project():
    assert project_root(ROOT / "notebooks") == ROOT


# ---------------------------------------------------------------- require_data


def test_require_data_names_the_command(tmp_path):
    from hw3lib.data import require_data

    with pytest.raises(FileNotFoundError) as err:
        require_data(tmp_path / "nothing", part="faces")
    msg = str(err.value)
    assert f"hw3 data make --out {tmp_path / 'nothing'} --size quick --only faces" in msg
    assert "make_data = True" in msg and "\n" not in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no digit data"):
        require_data(tmp_path / "empty", part="digits")


def test_require_data_accepts_course_layout(tiny_course_data):
    from hw3lib.data import has_data, require_data

    assert require_data(tiny_course_data, part="faces") == tiny_course_data
    assert has_data(tiny_course_data) and has_data(tiny_course_data.parent)  # a parent holding hw3_data/ too
    faces_only = tiny_course_data.parent / "faces_only"
    faces_only.mkdir()
    (faces_only / "face").symlink_to(tiny_course_data / "face")
    assert has_data(faces_only, "faces") and not has_data(faces_only, "digits") and not has_data(faces_only)


def test_require_data_makes_only_the_part_asked_for(tmp_path, monkeypatch, capsys):
    import hw3lib.data.make as make

    calls = []

    def fake_make(out, size, **kw):
        calls.append((Path(out), size, kw))
        (Path(out) / "face").mkdir(parents=True)  # what the faces generator would leave

    monkeypatch.setattr(make, "make_data", fake_make)
    from hw3lib.data import require_data

    out = tmp_path / "data"
    assert require_data(out, make=True, size="smoke", part="faces") == out
    assert calls == [(out, "smoke", {"figures_dir": None, "progress": False, "only": "faces"})]
    assert "hw3 data make --out" in capsys.readouterr().out
    require_data(out, make=True, part="faces")  # there now: nothing made
    assert len(calls) == 1


# ---------------------------------------------------------------- notebooks: parameters and the path cell

NOTEBOOKS = ("p1_vae", "p2_gan")


def _cells(name):
    return json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_parameters_are_project_relative(name):
    cells = _cells(name)
    params = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    src = "".join(cells[params]["source"])
    paths = dict(re.findall(r'^(\w+_dir) = "([^"]*)"', src, re.M))
    assert paths["data_dir"] == "data" and paths["figures_dir"] == "figures"
    assert all(not p.startswith(("/", "..")) for p in paths.values()), paths
    assert re.search(r"^make_data = (True|False)\b", src, re.M)
    resolve = "".join(cells[params + 1]["source"])  # the cell right after: the problem's Params resolve every *_dir
    assert f"p = {name}.Params.from_namespace(globals())" in resolve
    assert all(c["cell_type"] != "code" or not c.get("outputs") for c in cells)  # committed without outputs


def _path_cell(name: str) -> str:
    cells = _cells(name)
    params = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    return "".join(cells[params]["source"]) + "\n" + "".join(cells[params + 1]["source"])


@pytest.mark.parametrize("cwd", ["", "notebooks"])
def test_path_cell_resolves_from_root_and_notebooks(cwd, tmp_path, tiny_course_data, monkeypatch):
    """p1's parameters + path cells, run from two working directories of a project copy, give the same paths."""
    proj = tmp_path / "proj"
    (proj / "notebooks").mkdir(parents=True)
    (proj / ".hw3-project").touch()
    (proj / "data").symlink_to(tiny_course_data)
    monkeypatch.delenv("HW3_ROOT", raising=False)
    monkeypatch.chdir(proj / cwd)
    ns: dict = {}
    exec(_path_cell("p1_vae"), ns)  # noqa: S102 (the notebook's own code)
    root, p = proj.resolve(), ns["p"]
    assert (p.data_dir, p.figures_dir) == (str(root / "data"), str(root / "figures"))
    assert p.run_dir == str(root / "runs" / "quick" / "p1_vae")
    assert p.attr_run_dir == str(root / "runs" / "quick" / "p2_attr_classifier")
    (proj / "data").unlink()
    with pytest.raises(FileNotFoundError, match="hw3 data make"):
        exec(_path_cell("p1_vae").replace("make_data = True", "make_data = False"), {})  # noqa: S102


# ---------------------------------------------------------------- theme and figures


def test_one_theme_for_every_figure():
    import matplotlib

    from hw3lib.plots import show, theme
    from hw3lib.plots.theme import RC, apply_theme, theme_active

    assert theme_active()
    assert matplotlib.rcParams["axes.grid"] and matplotlib.rcParams["legend.frameon"] is False
    matplotlib.rcdefaults()  # a notebook cell resets matplotlib
    assert not theme_active()
    import matplotlib.pyplot as plt

    show(plt.figure(), "x", "caption")  # show() puts the theme back for the next figures
    assert theme_active() and all(matplotlib.rcParams[k] == v for k, v in RC.items())
    assert theme.PALETTE == "colorblind"
    apply_theme()  # idempotent


def test_curves_over_seeds_band_spans_the_seeds():
    from hw3lib.plots.curves import curves_over_seeds, long_form

    h = {("dann", 0): {"eval_step": [10, 20], "target_acc": [10.0, 30.0]},
         ("dann", 1): {"eval_step": [10, 20], "target_acc": [20.0, 50.0]},
         ("src", 0): {"eval_step": [10, 20, 30], "target_acc": [5.0, 6.0]},  # shorter y: 2 points
         ("none", 0): {"step": [1]}}
    df = long_form(h, "eval_step", "target_acc")
    assert list(df.columns) == ["run", "seed", "eval_step", "target_acc"] and len(df) == 6
    fig = curves_over_seeds(df, "eval_step", "target_acc", errorbar=("pi", 100))
    ax = fig.axes[0]
    names = {line.get_color(): line.get_label() for line in ax.lines if not line.get_label().startswith("_")}
    means = {names[line.get_color()]: [float(v) for v in line.get_ydata()] for line in ax.lines
             if line.get_label().startswith("_")}
    assert means == {"dann": [15.0, 40.0], "src": [5.0, 6.0]}
    band = ax.collections[0].get_paths()[0].vertices  # the dann band: min..max of the two seeds
    assert band[:, 1].min() == pytest.approx(10.0) and band[:, 1].max() == pytest.approx(50.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dann (2 seeds)", "src (1 seed)"]
    empty = curves_over_seeds({}, "eval_step", "target_acc")
    assert "no target_acc logged" in empty.axes[0].texts[0].get_text()


def test_confusion_figure_counts_and_rows():
    from hw3lib.plots.uda import confusion_figure

    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 1, 0]
    ax = confusion_figure(y_true, y_pred, "t", labels=(0, 1, 2)).axes[0]
    cells = np.array([float(t.get_text()) for t in ax.texts]).reshape(3, 3)
    assert cells[0].tolist() == [67, 33, 0] and cells[2].tolist() == [100, 0, 0]
    assert "accuracy 66.7 % of 6" in ax.get_title()
    raw = confusion_figure(y_true, y_pred, labels=(0, 1, 2), normalize=False).axes[0]
    assert [float(t.get_text()) for t in raw.texts][:3] == [2, 1, 0]


def test_tsne_figure_marks_domains_and_classes():
    from hw3lib.plots.uda import tsne_figure

    rng = np.random.default_rng(0)
    pts = {"xy": rng.normal(size=(20, 2)), "label": np.arange(20) % 5, "domain": np.r_[np.zeros(8), np.ones(12)]}
    fig = tsne_figure(pts, "DANN", ("usps", "mnistm"))
    left, right = fig.axes[:2]
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert labels == ["digit", "0", "1", "2", "3", "4", "domain", "usps", "mnistm"]  # colour: class; marker: domain
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["usps (8)", "mnistm (12)"]


def test_tsne_figure_keeps_class_and_domain_colours_whatever_is_present():
    """Digit 7 is the same colour with or without digits 0-6 in the points; the target domain is the same colour
    and marker with or without source points (one figure function for the notebooks and the explorer)."""
    from matplotlib.colors import to_rgba

    from hw3lib.plots.uda import CLASS_COLOURS, DOMAIN_COLOURS, tsne_figure

    def legend(fig, panel):
        """{label: (rgb, marker)} of the panel's legend entries (the class panel's section titles left out)."""
        lg = fig.axes[panel].get_legend()
        return {t.get_text(): (to_rgba(h.get_markerfacecolor())[:3], h.get_marker())
                for t, h in zip(lg.get_texts(), lg.legend_handles) if h.get_marker()}

    rng = np.random.default_rng(0)
    full = {"xy": rng.normal(size=(40, 2)), "label": np.arange(40) % 10, "domain": np.r_[np.zeros(20), np.ones(20)]}
    only = {"xy": full["xy"][-4:], "label": np.array([7, 8, 9, 7]), "domain": np.ones(4)}
    a, b = tsne_figure(full, "", ("svhn", "usps")), tsne_figure(only, "", ("svhn", "usps"))
    la, lb = legend(a, 0), legend(b, 0)
    digits_b = [k for k in lb if k.isdigit()]
    assert digits_b == ["7", "8", "9"]
    assert all(lb[d][0] == la[d][0] == to_rgba(CLASS_COLOURS[d])[:3] for d in digits_b)
    assert len({la[str(c)][0] for c in range(10)}) == 10
    assert (la["svhn"][1], la["usps"][1]) == ("o", "X")                     # marker = domain on the class panel
    target = (to_rgba(DOMAIN_COLOURS[1])[:3], "X")
    assert legend(a, 1) == {"svhn (20)": (to_rgba(DOMAIN_COLOURS[0])[:3], "o"), "usps (20)": target}
    assert legend(b, 1) == {"usps (4)": target}


def test_attribute_rates_grouped_bars():
    from hw3lib.plots.gan import attribute_rates

    table = pd.DataFrame({"real": [0.1, 0.9], "dcgan": [0.2, 0.5]}, index=["Big_Lips", "Male"])
    ax = attribute_rates(table).axes[0]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches if p.get_height() > 0)
    assert heights == [0.1, 0.2, 0.5, 0.9]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Big Lips", "Male"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["real", "dcgan"]


# ---------------------------------------------------------------- packaging of the lab


def test_make_lab_runs_jupyterlab_from_the_venv_on_notebooks():
    out = subprocess.run(["make", "-n", "lab", "VENV=/fake/venv"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert re.search(r"/fake/venv/bin/jupyter lab .*notebooks", out.stdout), out.stdout
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "test_lab_browser" in readme
