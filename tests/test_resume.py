"""Kill-and-resume on real training runs: a DANN CLI run stopped by Ctrl-C (exit 130, one line) and then by
SIGKILL resumes to exactly the parameters, history and accuracy of an uninterrupted run (CPU, deterministic
mode); the DCGAN resumes exactly too (in-process); a diverging CLI run exits 2 with one line and keeps its last
good checkpoint.

``HW3_CKPT_EVERY`` (checkpoint interval) and ``HW3_DETERMINISTIC`` are execution-only environment overrides read
by :class:`hw3lib.train.loop.TrainLoop`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hw3lib import checkpoint

TIMEOUT = 240
STEPS = 80


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HW3_PROGRESS": "0", "OMP_NUM_THREADS": "1", "HW3_DETERMINISTIC": "1",
            "HW3_CKPT_EVERY": "10", "PYTHONWARNINGS": "ignore", **extra}


def _cmd(data: Path, out: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "hw3lib", "train", "uda", "--method", "dann", "--source", "usps", "--target",
            "svhn", "--data", str(data), "--out", str(out), "--steps", str(STEPS), "--batch-size", "8",
            "--device", "cpu", *more]


def _stop_after_next_checkpoint(cmd: list[str], ckpt: Path, sig: int) -> tuple[int, str]:
    """Start ``cmd``, wait for a new checkpoint file, send ``sig``; return (exit code, stderr)."""
    before = ckpt.stat().st_mtime_ns if ckpt.is_file() else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            if ckpt.is_file() and ckpt.stat().st_mtime_ns != before:
                break
            time.sleep(0.01)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


@pytest.mark.slow  # 5 CLI launches: ~35 s idle 2-core, 5 min measured under load
def test_dann_cli_ctrl_c_and_sigkill_then_resume_match_uninterrupted(tmp_path, tiny_course_data):
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    ckpt = cut / checkpoint.CKPT_NAME

    # Ctrl-C: checkpoint at the step boundary, one-line message, exit 130.
    rc, err = _stop_after_next_checkpoint(_cmd(tiny_course_data, cut), ckpt, signal.SIGINT)
    first = checkpoint.load(cut)
    assert not first["finished"], "the run finished before Ctrl-C arrived"
    assert rc == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hw3: uda: interrupted at step") and "resume" in lines[0], err
    assert f"step {first['step']};" in lines[0]

    # SIGKILL (no chance to save) after the resumed run wrote a later checkpoint.
    rc, _ = _stop_after_next_checkpoint(_cmd(tiny_course_data, cut), ckpt, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    killed = checkpoint.load(cut)
    assert not killed["finished"] and killed["step"] > first["step"]

    for out in (cut, ref):
        proc = subprocess.run(_cmd(tiny_course_data, out), capture_output=True, text=True, timeout=TIMEOUT,
                              env=_env())
        assert proc.returncode == 0, proc.stderr
    a, b = checkpoint.load(ref), checkpoint.load(cut)
    assert b["finished"] and b["step"] == STEPS
    assert b["extra"]["resumed_at"] == [first["step"], killed["step"]]
    for k, v in a["models"]["dann"].items():
        assert torch.equal(v, b["models"]["dann"][k]), k
    assert a["history"] == b["history"]
    assert a["extra"]["metrics"] == b["extra"]["metrics"]
    assert not list(cut.glob(".*.tmp")), "a killed save must not leave temp files behind the next save"


def test_dann_cli_divergence_exits_2_and_keeps_last_good_checkpoint(tmp_path, tiny_course_data):
    out = tmp_path / "div"
    proc = subprocess.run(_cmd(tiny_course_data, out, "--lr", "1e30"), capture_output=True, text=True,
                          timeout=TIMEOUT, env=_env(HW3_CKPT_EVERY="1"))
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hw3: error: uda: loss") and "last good checkpoint" in lines[0]
    kept = checkpoint.load(out)
    assert not kept["finished"] and kept["step"] >= 1
    for v in kept["models"]["dann"].values():
        assert torch.isfinite(v.float()).all()


def _faces(n: int = 16):
    from hw3lib.data import FaceSet
    from hw3lib.data.layout import FACE_ATTRIBUTES
    g = torch.Generator().manual_seed(0)
    return FaceSet(images=torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g),
                   attrs=torch.zeros(n, len(FACE_ATTRIBUTES), dtype=torch.uint8),
                   names=[f"{i:05d}.png" for i in range(n)], attr_names=list(FACE_ATTRIBUTES), source="test")


def test_gan_interrupt_and_resume_is_exact(tmp_path, monkeypatch):
    from hw3lib.device import seed_everything
    from hw3lib.train import gan
    from hw3lib.train.loop import Interrupted, TrainLoop

    config = gan.GANConfig(seed=3, batch_size=4, ngf=8, ndf=8, nz=16, max_steps=6, log_every=2, device="cpu")
    faces = _faces()

    def run(out):
        seed_everything(config.seed)
        G, D = gan.build_models(config)
        gan.train_gan(G, D, faces, config, run_dir=out)
        return checkpoint.load(out)

    class StopAt(TrainLoop):  # Ctrl-C during step 3
        def log(self, **values):
            super().log(**values)
            if self.step + 1 == 3:
                os.kill(os.getpid(), signal.SIGINT)

    ref = run(tmp_path / "ref")
    with monkeypatch.context() as m:
        m.setattr(gan, "TrainLoop", StopAt)
        with pytest.raises(Interrupted):
            run(tmp_path / "cut")
    assert checkpoint.load(tmp_path / "cut")["step"] == 3
    res = run(tmp_path / "cut")
    assert res["extra"]["resumed_at"] == [3]
    for net in ("netG", "netD", "netG_ema"):  # the weight average resumes on its schedule too
        for k, v in ref["models"][net].items():
            assert torch.equal(v, res["models"][net][k]), (net, k)
    assert ref["history"] == res["history"]
    assert torch.equal(ref["extra"]["snapshots"]["images"], res["extra"]["snapshots"]["images"])
