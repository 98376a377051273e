"""``hw3 runs train --launcher slurm``, driven with submitit's local executor on the smoke profile's runs: one job
preempted (the signal Slurm sends) is requeued and resumes by itself; one job killed outright fails with one line,
and the same call resumes it. Both runs then equal each other bit for bit (same config and threads, interrupted
at different steps)."""
from __future__ import annotations

import signal
import time

import psutil
import pytest
import torch

from hw3lib import checkpoint
from hw3lib.report import slurm
from tests.test_pool import moved, smoke_runs


def _step(run) -> int:
    try:
        return int(checkpoint.load(run.run_dir)["step"])
    except (OSError, ValueError, KeyError):
        return 0


def _task(job) -> psutil.Process:
    """The process that runs the job (a child of the local executor's controller)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = psutil.Process(int(job.job_id)).children()
        if children:
            return children[0]
        time.sleep(0.1)
    raise AssertionError("the job never started")


def _when_training(run, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while _step(run) == 0:
        assert time.monotonic() < deadline, f"{run.run_dir} never checkpointed"
        time.sleep(0.05)


@pytest.mark.slow  # 30 s: two real submitit jobs (CI runs the slow tests too)
def test_local_executor_preempted_job_requeues_and_killed_job_resumes(tmp_path, tiny_embedded_data, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("HW3_CKPT_EVERY", "5")  # the jobs inherit it: a killed job keeps its last 5-step checkpoint
    dann = next(r for r in smoke_runs(tmp_path, tiny_embedded_data) if r.method == "dann")
    preempted = moved(dann, dann.run_dir, steps=150)
    killed = moved(dann, tmp_path / "runs" / "twin", steps=150)
    opts = slurm.SlurmOptions(cluster="local", time_min=10, threads=1, poll_s=0.2)
    jobs = dict((r.run_dir, j) for r, j in slurm.submit([preempted, killed], tiny_embedded_data, "cpu", opts))
    assert set(jobs) == {preempted.run_dir, killed.run_dir}

    _when_training(preempted)
    _task(jobs[preempted.run_dir]).send_signal(signal.SIGUSR2)  # what Slurm sends on preemption / near the limit
    _when_training(killed)
    _task(jobs[killed.run_dir]).send_signal(signal.SIGKILL)
    result = slurm.wait(list(zip((preempted, killed), (jobs[preempted.run_dir], jobs[killed.run_dir]))), opts,
                        progress=False)
    status = {o.run_dir: o.status for o in result.outcomes}
    assert status == {preempted.run_dir: "finished", killed.run_dir: "failed"} and result.exit_code == 1
    line = next(ln for ln in capsys.readouterr().err.splitlines() if "FAILED" in ln)
    assert str(killed.run_dir) in line and str(killed.run_dir / "slurm") in line  # its folder and its log

    first = checkpoint.load(preempted.run_dir)
    assert first["finished"] and len(first["extra"]["resumed_at"]) == 1  # checkpointed, requeued, resumed
    logs = "".join(p.read_text() for p in (preempted.run_dir / "slurm").glob("*_log.*"))
    assert "SIGUSR2" in logs and "Requeued" in logs
    stopped_at = _step(killed)
    assert 0 < stopped_at < 150

    again = slurm.train_on_slurm([preempted, killed], tiny_embedded_data, "cpu", opts, progress=False)
    assert [o.status for o in again.outcomes] == ["finished"]  # only the killed one was resubmitted
    second = checkpoint.load(killed.run_dir)
    assert second["finished"] and second["extra"]["resumed_at"] == [stopped_at]
    assert first["extra"]["metrics"] == second["extra"]["metrics"]
    for name, state in first["models"].items():
        assert all(torch.equal(v, second["models"][name][k]) for k, v in state.items()), name
    assert first["extra"]["threads"] == second["extra"]["threads"] == 1
