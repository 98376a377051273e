"""The course's scripts (hw3_p1.sh ... hw3_p4.sh, hw3_eval.py) over ``hw3 handin``: the report's runs by default,
``$HW3_RUNS`` instead, P4's ``selected_runs``, and one clear error naming the command that trains a missing run."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from hw3lib import checkpoint
from hw3lib.cli import main

ROOT = Path(__file__).resolve().parents[1]


def fake_run(run_dir: Path, kind: str, config: dict, models: dict, *, finished: bool = True) -> Path:
    """A checkpoint as the training loops write it, with freshly initialised weights (no training: these tests are
    about finding and using runs, not about what the models learned)."""
    return checkpoint.save({"kind": kind, "step": 2, "total_steps": 2, "finished": finished, "config": config,
                            "models": {k: m.state_dict() for k, m in models.items()},
                            "history": {"step": [2]}, "extra": {}}, run_dir / checkpoint.CKPT_NAME)


def fake_uda_run(run_dir: Path, method: str, source: str = "usps", target: str = "mnistm") -> Path:
    from hw3lib.train.uda import UDAConfig

    cfg = UDAConfig(method=method, source=source, target=target)
    return fake_run(run_dir, cfg.kind, dataclasses.asdict(cfg), cfg.spec.nets(cfg))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder whose runs/quick holds a finished run of every problem (target mnistm for P3/P4)."""
    from hw3lib.models import build
    from hw3lib.train.gan import GANConfig

    torch.manual_seed(0)
    proj = tmp_path_factory.mktemp("handin")
    runs = proj / "runs" / "quick"
    fake_run(runs / "p1_vae", "vae", {"latent_dim": 16}, {"vae": build("vae", latent_dim=16)})
    gan = GANConfig(ngf=8, ndf=8)
    fake_run(runs / "p2_gan", "gan", dataclasses.asdict(gan),
             {"netG": build("dcgan-generator", nz=gan.nz, ngf=8), "netD": build("dcgan-discriminator", ndf=8)})
    fake_uda_run(runs / "p3_dann" / "dann_usps_mnistm_s0", "dann")
    fake_uda_run(runs / "p3_dann" / "source-only_usps_mnistm_s0", "source-only")
    fake_uda_run(runs / "p4_uda" / "gta_usps_mnistm_s0", "gta")
    # a DANN run under p4_uda too: `hw3 predict`'s search prefers it, so P4's choice must come from metrics.json
    fake_uda_run(runs / "p4_uda" / "dann_usps_mnistm_s0", "dann")
    return proj


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HW3_RUNS", "HW3_ROOT")}
    env.update(PYTHONPATH=str(ROOT), HW3_PYTHON=sys.executable, HW3_PROGRESS="0", **extra)
    return env


def _used(capsys) -> str:
    return re.search(r"using (\S+)", capsys.readouterr().err).group(1)


def test_missing_run_is_one_line_naming_the_command(tmp_path):
    got = subprocess.run(["bash", str(ROOT / "hw3_p1.sh"), "out.png"], cwd=tmp_path, env=_env(HW3_ROOT=str(tmp_path)),
                         capture_output=True, text=True)
    assert got.returncode == 2 and not (tmp_path / "out.png").exists()
    assert got.stderr.strip() == ("hw3: error: no trained VAE in runs/quick/p1_vae: "
                                  "run 'make report' or 'hw3 report --only p1'")


@pytest.mark.parametrize("args, runs, needle", [
    (["p2", "x.png"], None, "no trained DCGAN in runs/quick/p2_gan: run 'make report' or 'hw3 report --only p2'"),
    (["p3", "imgs", "svhn", "x.csv"], None, "no trained DANN for mnistm → svhn in runs/quick/p3_dann: run 'make "
                                             "report' or 'hw3 report --only p3'"),
    (["p4", "imgs", "usps", "x.csv"], "runs/full", "no trained improved-UDA model for svhn → usps in "
                                                  "runs/full/p4_uda: run 'hw3 report --profile full --only p4'"),
])
def test_missing_runs_per_problem(args, runs, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HW3_ROOT", raising=False)
    if runs:
        monkeypatch.setenv("HW3_RUNS", runs)
    else:
        monkeypatch.delenv("HW3_RUNS", raising=False)
    assert main(["handin", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


def test_p3_script_writes_a_csv_that_hw3_eval_scores(project, tiny_course_data, tmp_path, capsys):
    images = tiny_course_data / "digits" / "mnistm" / "test"
    out = tmp_path / "pred.csv"
    got = subprocess.run(["bash", str(ROOT / "hw3_p3.sh"), str(images), "mnistm", str(out)], cwd=tmp_path,
                         env=_env(HW3_ROOT=str(project)), capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    assert "p3_dann/dann_usps_mnistm_s0" in got.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "image_name,label" and len(lines) == 1 + len(list(images.glob("*.png")))
    # hw3_eval.py, run from another folder, scores it as `hw3 eval` does: against labels that agree with the
    # predictions on exactly 7 of the 10 images (the other 3 shifted by one), i.e. 70 % by construction
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 10
    gt = tmp_path / "gt.csv"
    gt.write_text("image_name,label\n" + "".join(f"{n},{(int(y) + (i < 3)) % 10}\n" for i, (n, y) in enumerate(rows)))
    score = subprocess.run([sys.executable, str(ROOT / "hw3_eval.py"), str(out), str(gt)], cwd=tmp_path,
                           env=_env(), capture_output=True, text=True)
    assert score.returncode == 0, score.stderr
    assert score.stdout == "accuracy 70.00% (10 images)\n"
    assert main(["eval", str(out), str(gt)]) == 0
    assert capsys.readouterr().out == score.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "hw3_eval.py"), str(out)], env=_env(), capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "usage" in bad.stderr


def test_p1_p2_write_face_grids(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HW3_ROOT", str(project))
    for problem in ("p1", "p2"):
        out = tmp_path / f"{problem}.png"
        assert main(["handin", problem, str(out), "--device", "cpu"]) == 0
        with Image.open(out) as im:
            assert im.width > im.height > 64  # a 4x8 grid of 64x64 faces
        assert _used(capsys).endswith(f"runs/quick/{'p1_vae' if problem == 'p1' else 'p2_gan'}")


def test_hw3_runs_replaces_the_default(project, tmp_path, monkeypatch, capsys):
    full = tmp_path / "runs" / "full"
    shutil.copytree(project / "runs" / "quick" / "p1_vae", full / "p1_vae")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HW3_ROOT", raising=False)
    monkeypatch.setenv("HW3_RUNS", "runs/full")
    assert main(["handin", "p1", "x.png", "--device", "cpu"]) == 0
    assert _used(capsys) == "runs/full/p1_vae"


def test_p4_uses_the_selected_run_else_the_predict_search(project, tiny_course_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HW3_ROOT", str(project))
    p4 = project / "runs" / "quick" / "p4_uda"
    images = str(tiny_course_data / "digits" / "mnistm" / "test")
    args = ["handin", "p4", images, "mnistm", str(tmp_path / "p.csv"), "--device", "cpu"]
    try:
        assert main(args) == 0  # no metrics.json: hw3 predict's search (DANN first)
        assert _used(capsys).endswith("p4_uda/dann_usps_mnistm_s0")
        (p4 / "metrics.json").write_text(json.dumps({"selected_runs": {"usps_mnistm": "gta_usps_mnistm_s0"}}))
        assert main(args) == 0
        assert _used(capsys).endswith("p4_uda/gta_usps_mnistm_s0")
        absolute = str(p4 / "gta_usps_mnistm_s0")
        (p4 / "metrics.json").write_text(json.dumps({"selected_runs": {"usps_mnistm": absolute}}))
        assert main(args) == 0
        assert _used(capsys).endswith("p4_uda/gta_usps_mnistm_s0")
        # an ensemble's members: its mean probabilities answer (hw3 predict with both runs)
        both = ["dann_usps_mnistm_s0", "gta_usps_mnistm_s0"]
        (p4 / "metrics.json").write_text(json.dumps({"selected_runs": {"usps_mnistm": both}}))
        assert main(args) == 0
        err = capsys.readouterr().err
        assert "a mean-probability ensemble of 2" in err and all(f"p4_uda/{b}" in err for b in both)
        ensemble = (tmp_path / "p.csv").read_text()
        assert main(["predict", "--ckpt", *(str(p4 / b) for b in both), "--images", images, "--target", "mnistm",
                     "--out", str(tmp_path / "q.csv"), "--device", "cpu"]) == 0
        assert (tmp_path / "q.csv").read_text() == ensemble
        (p4 / "metrics.json").write_text(json.dumps({"selected_runs": {"usps_mnistm": "gone_s0"}}))
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "metrics.json" in err and "gone_s0" in err and len(err.strip().splitlines()) == 1
    finally:
        (p4 / "metrics.json").unlink(missing_ok=True)


def test_unfinished_run_says_how_to_finish_it(project, tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(project / "runs" / "quick" / "p1_vae", runs / "p1_vae")
    payload = checkpoint.load(runs / "p1_vae")
    checkpoint.save({**payload, "finished": False}, runs / "p1_vae" / checkpoint.CKPT_NAME)
    assert main(["handin", "p1", str(tmp_path / "x.png"), "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "unfinished" in err and "hw3 report" in err and not (tmp_path / "x.png").exists()
