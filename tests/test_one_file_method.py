"""A method really is one file: a toy method dropped into a copy of the package's ``methods/`` folder trains,
resumes, and appears in the P4 comparison table, the details table, the run explorer's choices, Problem 4's default
method list and ``hw3 train uda --method`` — with no other file edited.

The package is copied to a temporary folder (the source tree is never touched) and the checks run in a fresh
interpreter that imports that copy.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TOY = '''\
"""Entropy minimisation (Grandvalet & Bengio, NeurIPS 2004): source NLL + weight × entropy of target predictions."""
from dataclasses import dataclass

from hw3lib.methods import Losses, Method, nll, register
from hw3lib.models.functional import entropy


@dataclass(frozen=True)
class Knobs:
    weight: float = 0.1


def losses(nets, batch, step):
    out_s, out_t = nets["dann"](batch.x), nets["dann"](batch.xt)
    h = entropy(out_t.class_logp.float().exp()).mean()
    label = nll(out_s.class_logp, batch.y)
    return Losses(label + step.knobs.weight * h, {"label_loss": label, "entropy": h})


register(Method("entmin", "Entropy minimisation", "Grandvalet & Bengio, NeurIPS 2004", "improved", 900,
                describe=lambda k: f"NLL(source) + {k.weight:g} × entropy of the target predictions", knobs=Knobs,
                losses=losses))
'''

CHECKS = '''
import contextlib, io, json, sys
import pytest
sys.path.insert(0, TESTS)
import synthetic
from conftest import write_tiny_course_data
from hw3lib import checkpoint, methods
from hw3lib.cli import main
from hw3lib.eval import improved
from hw3lib.eval.uda import summarize
from hw3lib.train.loop import Interrupted, TrainLoop
from hw3lib.train.uda import UDAConfig
from hw3lib.widgets import uda_explorer

out = {"package": methods.__file__, "p4_default": methods.improved(shared_recipe=True)}
help_text = io.StringIO()
with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
    main(["train", "uda", "--help"])
out["cli_help"] = help_text.getvalue()

src, tgt = synthetic.digits("usps", 48), synthetic.digits("mnistm", 48, seed=1)
cfg = UDAConfig(method="entmin", steps=8, batch_size=8, evals=2, log_every=2, ckpt_every=2, device="cpu",
                knobs={"weight": 0.5})
full = synthetic.fit(cfg, src, tgt, run_dir=RUNS + "/full")
original = TrainLoop.log
def stop_at_5(self, **values):
    original(self, **values)
    if self.step == 4:
        self._stop_signal = 2
TrainLoop.log = stop_at_5
try:
    synthetic.fit(cfg, src, tgt, run_dir=RUNS + "/cut")
    out["interrupted"] = False
except Interrupted:
    out["interrupted"] = True
TrainLoop.log = original
resumed = synthetic.fit(cfg, src, tgt, run_dir=RUNS + "/cut")
a, b = checkpoint.load(RUNS + "/full"), checkpoint.load(RUNS + "/cut")
out["resumed_at"] = b["extra"]["resumed_at"]
out["same_history"] = a["history"] == b["history"] and full.metrics == resumed.metrics
out["knobs"] = a["config"]["knobs"]

data = write_tiny_course_data(__import__("pathlib").Path(RUNS) / "data")
results = {("entmin", "usps", "mnistm", 0): full}
out["comparison_rows"] = list(improved.comparison_table(summarize(results)).index)
out["details"] = improved.details_table(improved.method_configs(results), 1)["value"].to_dict()
panel = uda_explorer(results, data, per_domain=10)
out["explorer"] = [list(o) for o in panel.controls["method"].options]
print("RESULT" + json.dumps(out))
'''


@pytest.mark.long
def test_a_method_added_as_one_file_is_everywhere(tmp_path):
    pkg = tmp_path / "site" / "hw3lib"
    shutil.copytree(ROOT / "hw3lib", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "methods" / "entmin.py").write_text(TOY)
    assert len(TOY.splitlines()) <= 25
    script = f"TESTS = {str(ROOT / 'tests')!r}\nRUNS = {str(tmp_path / 'runs')!r}\n" + textwrap.dedent(CHECKS)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "HW3_PROGRESS": "0", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600,
                          cwd=tmp_path)  # not the checkout: its hw3lib/ would shadow the copy
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert out["package"].startswith(str(pkg))                       # the copy, with the toy file, was imported
    assert "entmin" in out["p4_default"]                             # Problem 4 trains it by default
    assert "entmin" in out["cli_help"] and "weight=0.1" in out["cli_help"]  # --method choice, knob in --help
    assert out["interrupted"] and out["resumed_at"] == [5] and out["same_history"]  # trains, resumes exactly
    assert out["knobs"] == {"weight": 0.5}                           # its knob is a config field
    assert "Entropy minimisation" in out["comparison_rows"]         # P4's comparison table
    assert out["details"]["Entropy minimisation"] == "NLL(source) + 0.5 × entropy of the target predictions"
    assert ["Entropy minimisation", "entmin"] in out["explorer"]     # the explorer's method choices
