"""Problem modules (:mod:`hw3lib.problems`): each problem's parameters are its notebook's, one function gives its
runs to the plan, the pool and the notebook, a user's own notebook values are said and used, and a problem really is
a module + a notebook + a profile entry: a toy problem dropped into a copy of the package is planned, trained by the
pool, reported and handed in, with no other file edited."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from hw3lib import problems
from hw3lib.report import build as report_build
from hw3lib.report import plan as planning

ROOT = Path(__file__).resolve().parents[1]


def _parameters_cell(notebook: Path) -> dict:
    """``{name: value}`` of the assignments in a notebook's cell tagged ``parameters`` (plain literals)."""
    nb = nbformat.read(str(notebook), as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    out = {}
    for node in ast.parse(cell.source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.unparse(node)
        out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


@pytest.mark.parametrize("key", problems.keys())
def test_each_problems_parameters_are_its_notebooks(key):
    """The dataclass's fields and defaults are the notebook's parameters cell, name for name, value for value."""
    cell = _parameters_cell(ROOT / "notebooks" / f"{key}.ipynb")
    defaults = problems.get(key).params.defaults()
    assert {k: (v, type(v)) for k, v in defaults.items()} == {k: (v, type(v)) for k, v in cell.items()}


def test_the_registry_names_the_report_and_the_handin():
    from hw3lib.report.profile import NOTEBOOKS

    assert NOTEBOOKS == tuple(problems.keys()) == ("p1_vae", "p2_gan", "p3_dann", "p4_uda")
    assert [p.short for p in problems.ordered()] == ["p1", "p2", "p3", "p4"]
    assert problems.get("p3") is problems.get("p3_dann")
    with pytest.raises(ValueError, match="unknown problem 'p9'"):
        problems.get("p9")


def test_problem_3s_runs_are_the_registrys_bounds_and_baseline():
    from hw3lib import methods
    from hw3lib.problems import p3_dann

    assert p3_dann.methods_trained() == [m.name for m in methods.ordered("bound", "baseline")]
    runs = p3_dann.configs(p3_dann.Params(seeds=[0, 1]))
    assert [k for k, _, _ in runs][:6] == [(m, "usps", "mnistm", s) for m in p3_dann.methods_trained() for s in (0, 1)]
    assert all(folder.name == cfg.name for _, cfg, folder in runs)


def test_a_notebook_of_your_own_gets_one_line_per_changed_value_and_its_runs_use_it(tmp_path, capsys):
    """``hw3 init`` copies the notebooks; a parameters cell edited there is said in one line, passed to the notebook
    and planned with (never trained outside the pool)."""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    nb = nbformat.read(str(ROOT / "notebooks" / "p3_dann.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "lr = 0.001\n" in cell.source
    cell.source = cell.source.replace("lr = 0.001\n", "lr = 0.002\n")
    nbformat.write(nb, str(nbs / "p3_dann.ipynb"))
    plan = report_build.plan_report("smoke", tmp_path / "out", "cpu", only="p3", notebooks=nbs,
                                    runs_root=tmp_path / "runs", figures_dir=tmp_path / "figures")
    report_build._SAID.clear()
    params = report_build.notebook_parameters(plan, tmp_path / "no-data")
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["hw3 report: p3_dann.ipynb sets lr = 0.002 (hw3lib.problems.p3_dann: 0.001); using 0.002"]
    assert params["p3_dann"]["lr"] == 0.002
    runs = planning.planned_runs(plan.notebooks, params, planning.data_counts({}, "smoke"))
    assert runs and {r.config.lr for r in runs} == {0.002}
    # a value the profile sets is the profile's: nothing to say
    plan = report_build.plan_report("smoke", tmp_path / "out", "cpu", [("p3.lr", "0.003")], only="p3", notebooks=nbs,
                                    runs_root=tmp_path / "runs", figures_dir=tmp_path / "figures")
    report_build._SAID.clear()
    assert report_build.notebook_parameters(plan, tmp_path / "no-data")["p3_dann"]["lr"] == 0.003
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- a problem is a module, a notebook, a profile entry

TOY = '''\
"""A toy problem: a few steps of the VAE on the faces."""
from dataclasses import dataclass

from hw3lib import problems
from hw3lib.problems.base import face_run


@dataclass
class Params(problems.Params):
    DATA = "faces"
    run_dir: str = "runs/quick/p5_toy"
    make_data: bool = False
    max_steps: int = 8


def config(p):
    from hw3lib.train.vae import VAEConfig
    return VAEConfig(epochs=3, batch_size=8, max_steps=p.max_steps, seed=p.seed, device=p.device)


def runs(p, where):
    from hw3lib.train import vae
    return [face_run("p5_toy", "vae", config(p), vae.KIND, p.run_dir, where, vae.train_or_load)]


def train_or_load(p):
    from hw3lib.train import vae
    return vae.train_or_load(config(p), p.data_dir, p.run_dir)


problems.register(problems.Problem("p5_toy", "Problem 5: a toy", 5, Params, runs, problems.Handin(
    "toy VAE", "faces", "32 faces from the toy VAE", kinds=("vae",), command="vae")))
'''

TOY_CELLS = [
    'data_dir = "data"\nrun_dir = "runs/quick/p5_toy"\nfigures_dir = "figures"\nmake_data = False\n'
    'device = "auto"\nseed = 0\nmax_steps = 8',
    "from hw3lib.problems import p5_toy\n\np = p5_toy.Params.from_namespace(globals())",
    "result = p5_toy.train_or_load(p)",
    "print('TOY MAX STEPS', result.config.max_steps)",
]

CHECKS = '''
import contextlib, io, json, sys
from pathlib import Path
sys.path.insert(0, TESTS)
from conftest import write_tiny_course_data
from hw3lib import problems
from hw3lib.cli import main
from hw3lib.report import build
from hw3lib.report import plan as planning

planning.estimate = lambda runs, device: {}  # --plan's list, not its step timing (tests/test_plan.py times steps)
out = {"package": problems.__file__, "keys": problems.keys()}
data = write_tiny_course_data(Path(TMP) / "data")
profile = Path(TMP) / "toy.yaml"
profile.write_text(f"data_size: null\\nruns_root: {TMP}/runs\\nfigures_dir: {TMP}/figures\\n"
                   "notebooks:\\n  p5_toy: {max_steps: 4}\\n")
with contextlib.redirect_stdout(io.StringIO()):
    table = build.print_plan(str(profile), data=str(data), out=TMP + "/report", device="cpu", only="p5")
out["plan"] = table[["problem", "method", "steps", "status", "run_dir"]].values.tolist()
result = build.build_report(str(profile), data=str(data), out=TMP + "/report", device="cpu", only="p5", pdf=False,
                            progress=False, jobs=1, threads=1)
out["status"] = result.status
out["errors"] = {n: v["error"] for n, v in json.loads(result.run_json.read_text())["notebooks"].items()}
html = result.html.read_text()
out["in_report"] = "Problem 5: a toy" in html and "TOY MAX STEPS 4" in html
run_dir = Path(out["plan"][0][-1])
out["pool_log"] = (run_dir / "train.log").read_text()
with contextlib.redirect_stdout(io.StringIO()):
    after = build.print_plan(str(profile), data=str(data), out=TMP + "/report", device="cpu", only="p5")
out["after"] = list(after["status"])
help_text = io.StringIO()
with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
    main(["handin", "--help"])
out["handin_help"] = help_text.getvalue()
out["handin"] = main(["handin", "p5", TMP + "/faces.png", "--runs", TMP + "/runs", "--device", "cpu"])
print("RESULT" + json.dumps(out))
'''


@pytest.mark.slow  # a pool worker, a kernel and the hand-in: about 25 s alone, 52 s on a loaded machine
def test_a_problem_added_as_a_module_and_a_notebook_is_planned_trained_reported_and_handed_in(tmp_path):
    pkg = tmp_path / "site" / "hw3lib"
    shutil.copytree(ROOT / "hw3lib", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "problems" / "p5_toy.py").write_text(TOY)
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    cells = [nbformat.v4.new_code_cell(src) for src in TOY_CELLS]
    cells[0].metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Problem 5: a toy"), *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(nbs / "p5_toy.ipynb"))
    script = (f"TESTS = {str(ROOT / 'tests')!r}\nTMP = {str(tmp_path)!r}\n" + textwrap.dedent(CHECKS))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "HW3_PROGRESS": "0", "MPLBACKEND": "Agg",
           "HW3_NOTEBOOKS": str(nbs)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600,
                          cwd=tmp_path)  # not the checkout: its hw3lib/ would shadow the copy
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert out["package"].startswith(str(pkg)) and out["keys"][-1] == "p5_toy"
    # --plan: its run, at the profile entry's 4 steps, from its module
    assert [row[:4] for row in out["plan"]] == [["p5_toy", "vae", 4, "to train"]]
    assert out["plan"][0][-1] == str(tmp_path / "runs" / "p5_toy")
    # the pool trained it before the notebook, which loaded it; the report shows the notebook
    assert out["status"] == {"p5_toy": "ok"} and out["in_report"], out["errors"]
    assert "p5_toy vae" in out["pool_log"] and "finished in" in out["pool_log"]
    assert out["after"] == ["finished"]
    # hw3 handin p5: a sub-command of its own, writing the faces of its run
    assert "p5" in out["handin_help"] and out["handin"] == 0 and (tmp_path / "faces.png").is_file()
