"""Distributed training under ``torchrun`` on CPU (gloo, 2 processes): a 2-process run ends with the weights of a
single-process run at the same global batch (so the ranks' gradients are averaged and each rank trains on its own
share of the batch), DANN and DCGAN train, the ranks' replicas stay identical (``extra["ddp_max_param_diff"] ==
0.0``), the checkpoint is the single-process format, and a run moves between world sizes (single-process →
2 processes → single-process) by resuming.

Each launch starts three Python processes that import torch (the agent and two workers): ~10 s on an idle
2-core machine, so the launches use tiny data and a handful of steps.
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
import torch.distributed as tdist

import ddp_replica
from hw3lib import checkpoint, methods

pytestmark = pytest.mark.skipif(not (tdist.is_available() and tdist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available in this build")

LAUNCH_TIMEOUT = 240


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HW3_PROGRESS": "0", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **extra}


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "hw3lib", *args]


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT, env=_env(**env))
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.long
def test_two_processes_train_the_single_process_weights(tmp_path):
    """3 SGD steps of DANN's network (without BatchNorm and dropout, tests/ddp_replica.py) at a global batch of 16:
    two ranks of 8 rows each end where one process with all 16 does, up to float rounding. Rank 0 alone on its
    half of the batch (gradients not averaged), or both ranks on the same half (the batch not sharded), moves
    the weights by a sizeable fraction of the whole update away from it."""
    root = Path(__file__).resolve().parents[1]
    script = Path(ddp_replica.__file__).resolve()
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
          str(tmp_path / "ddp")], PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    ddp_replica.train(tmp_path / "single")
    init = torch.load(tmp_path / "ddp" / "init.pt", weights_only=True)
    single = torch.load(tmp_path / "single" / "rank0.pt", weights_only=True)
    assert init.keys() == single.keys()
    for rank in (0, 1):
        ddp = torch.load(tmp_path / "ddp" / f"rank{rank}.pt", weights_only=True)
        for k in init:
            moved = (single[k] - init[k]).abs().max().item()
            diff = (ddp[k] - single[k]).abs().max().item()
            assert moved > 1e-4, f"{k}: the single-process run hardly moved it ({moved:.2e})"
            assert diff <= 1e-3 * moved + 1e-7, f"rank {rank}, {k}: {diff:.2e} from the single-process run " \
                                                f"(which moved it by {moved:.2e})"


def _dann_args(data, out, *more: str, method: str = "dann") -> list[str]:
    return ["train", "uda", "--method", method, "--source", "usps", "--target", "svhn", "--data", str(data),
            "--out", str(out), "--batch-size", "8", "--device", "cpu", *more]


@pytest.mark.slow  # one torchrun launch per method; the fast suite keeps a torchrun launch of the CLI (Ctrl-C test)
@pytest.mark.parametrize("method", [m for m in methods.names() if methods.get(m).adapts])  # and DDP vs one process
def test_torchrun_uda_method_trains_and_replicas_agree(method, tmp_path, tiny_course_data):
    """Every adaptation method of the registry under DDP through the CLI: rank 0 alone reports, replicas agree, and
    the checkpoint is a single-process one."""
    out = tmp_path / method
    proc = _run(_torchrun(*_dann_args(tiny_course_data, out, "--max-steps", "3", "--evals", "2", method=method)))
    assert proc.stdout.count("test accuracy") == 1, "only rank 0 prints the result"
    payload = checkpoint.load(out)  # weights_only=True
    assert payload["finished"] and payload["step"] == 3 and payload["world_size"] == 2
    assert payload["extra"]["ddp_max_param_diff"] == 0.0
    assert "target_acc" in payload["extra"]["metrics"]
    # Same format as single-process: unwrapped keys (no "module." prefix), loadable without a process group.
    assert not any(k.startswith("module.") for state in payload["models"].values() for k in state)
    from hw3lib.train.uda import load_models
    models, config = load_models(payload)
    assert set(models) == set(payload["models"]) and config.method == method


@pytest.mark.slow  # 15 s: a torchrun launch (CI runs the slow tests too)
def test_gan_resumes_single_process_checkpoint_under_torchrun(tmp_path, tiny_course_data, monkeypatch):
    """Single-process DCGAN interrupted at step 2 (Ctrl-C path) → resumed by a 2-process run to step 4."""
    from hw3lib.data import load_faces
    from hw3lib.train import gan
    from hw3lib.train.configs import bind_data
    from hw3lib.train.loop import Interrupted, TrainLoop

    class StopAt(TrainLoop):  # Ctrl-C arriving during step 2
        def log(self, **values):
            super().log(**values)
            if self.step + 1 == 2:
                os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "gan"
    # bound to the data folder as train_or_load binds it, so the CLI resumes this run
    config = bind_data(gan.GANConfig(seed=0, batch_size=8, max_steps=4, device="cpu"), tiny_course_data, ("face",))
    monkeypatch.setattr(gan, "TrainLoop", StopAt)
    netG, netD = gan.build_models(config)
    with pytest.raises(Interrupted):
        gan.train_gan(netG, netD, load_faces(tiny_course_data, "train"), config, run_dir=out)
    first = checkpoint.load(out)
    assert not first["finished"] and first["step"] == 2 and first["world_size"] == 1

    proc = _run(_torchrun("train", "gan", "--data", str(tiny_course_data), "--out", str(out), "--batch-size", "8",
                          "--max-steps", "4", "--device", "cpu"))
    assert proc.stdout.count("dcgan:") == 1
    payload = checkpoint.load(out)
    assert payload["finished"] and payload["step"] == 4 and payload["world_size"] == 2
    assert payload["extra"]["resumed_at"] == [2]
    # D runs three times a step (real, fake.detach(), fake for G): no unused-parameter error, replicas agree.
    assert payload["extra"]["ddp_max_param_diff"] == 0.0
    G, D, cfg = gan.load_models(payload)
    assert cfg.max_steps == 4
    assert torch.isfinite(G(torch.zeros(1, cfg.nz, 1, 1))).all()


@pytest.mark.long
def test_torchrun_ctrl_c_then_single_process_resume(tmp_path, tiny_course_data):
    """Ctrl-C (SIGINT to the whole process group) stops both ranks at the same step with one checkpoint; a
    single-process run of the same command then finishes it."""
    out = tmp_path / "cut"
    args = _dann_args(tiny_course_data, out, "--steps", "300")
    proc = subprocess.Popen(_torchrun(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(HW3_CKPT_EVERY="10"), start_new_session=True)
    ckpt = out / checkpoint.CKPT_NAME
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=LAUNCH_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    cut = checkpoint.load(out)
    if cut["finished"]:
        pytest.fail("the 300-step run finished before Ctrl-C arrived")
    assert 0 < cut["step"] < 300 and cut["step"] % 10 == 0 and cut["world_size"] == 2
    assert "interrupted at step" in err

    _run([sys.executable, "-m", "hw3lib", *args])
    done = checkpoint.load(out)
    assert done["finished"] and done["step"] == 300 and done["world_size"] == 1
    assert done["extra"]["resumed_at"] == [cut["step"]]
