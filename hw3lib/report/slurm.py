"""``hw3 runs train --launcher slurm``: every unfinished run of a profile's plan as one Slurm job, through
`submitit <https://github.com/facebookincubator/submitit>`_ (``pip install hw3lib[cluster]``).

    hw3 runs train --profile full --data ~/hw3_data --launcher slurm --partition gpu --time 240 --gpus 1

Each job runs :class:`RunJob` — the pool's :func:`hw3lib.report.pool.train_run` (the family's ``train_or_load`` on
the plan's config and folder) at ``--threads`` threads — with submitit's logs in ``RUN_DIR/slurm/``. The command
waits for the jobs with one progress bar (a failed job is one line naming its folder and log) and exits non-zero if
one failed; Ctrl-C cancels the jobs (each checkpoints on the SIGTERM Slurm sends) and the same command resumes.

Preemption and time limits: submitit asks Slurm for a signal (USR2) before the limit, and Slurm sends it on
preemption. :class:`RunJob` turns it into the training loop's own stop (a checkpoint at the next step boundary),
then lets submitit requeue the job with :meth:`RunJob.checkpoint` — the same call, which resumes from the run
folder's checkpoint like any other resume.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hw3lib.report.plan import PlannedRun
from hw3lib.report.pool import Outcome, PoolResult, _one_line, pending, train_run

try:
    import submitit
except ImportError:  # an optional extra: hw3lib[cluster]
    submitit = None

_Checkpointable: Any = submitit.helpers.Checkpointable if submitit is not None else object


def _preempt_signal() -> signal.Signals:
    """The signal submitit gets before a time limit or on preemption (``SUBMITIT_PREEMPT_SIGNAL``, default USR2)."""
    return signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]


class RunJob(_Checkpointable):
    """One planned run as a job. Its :meth:`checkpoint` (submitit's ``Checkpointable``) resubmits the same call,
    which resumes from the checkpoint in the run folder."""

    def __call__(self, run: PlannedRun, data_dir: str, device: str, threads: int) -> str:
        from hw3lib.train.loop import Interrupted, TrainLoop

        os.environ["HW3_PROGRESS"] = "0"
        torch.set_num_threads(threads)
        sig = _preempt_signal()
        submitit_handler = signal.getsignal(sig)  # checkpoint() + requeue + exit
        preempted: list[int] = []

        def on_preempt(signum, frame):
            preempted.append(signum)
            loop_handler = signal.getsignal(signal.SIGTERM)
            if isinstance(getattr(loop_handler, "__self__", None), TrainLoop):
                loop_handler(signal.SIGTERM, frame)  # the loop saves at its next step boundary, then stops
            elif callable(submitit_handler):
                submitit_handler(signum, frame)  # not in a training loop: nothing to save; requeue now

        signal.signal(sig, on_preempt)
        try:
            train_run(run, data_dir, device)
        except Interrupted:
            if preempted and callable(submitit_handler):
                submitit_handler(preempted[0], None)  # requeued: the resubmission resumes from the checkpoint
            raise
        finally:
            signal.signal(sig, submitit_handler)
        print(f"finished {run.run_dir}", flush=True)
        return "finished"


@dataclass
class SlurmOptions:
    partition: str | None = None
    time_min: int = 240                      # per job; at the limit the job checkpoints and is requeued
    gpus: int = 0                            # per job
    threads: int = 1                         # threads per run = CPUs per job
    extra: dict[str, Any] = field(default_factory=dict)   # other sbatch options (account, mem, qos...)
    cluster: str = "slurm"                   # "local": submitit's local executor (tests)
    poll_s: float = 30.0                     # how often the waiting command asks for the jobs' states


def _need_submitit() -> None:
    if submitit is None:
        raise ValueError("--launcher slurm needs submitit: pip install 'hw3lib[cluster]' (or pip install submitit)")


def submit(runs: list[PlannedRun], data_dir: str | Path, device: str, opts: SlurmOptions) -> list[tuple[PlannedRun, Any]]:
    """One job per unfinished run (:func:`hw3lib.report.pool.pending`), logs in ``RUN_DIR/slurm/``."""
    _need_submitit()
    jobs = []
    for run in pending(runs):
        executor = submitit.AutoExecutor(folder=run.run_dir / "slurm", cluster=opts.cluster)
        params: dict[str, Any] = {"name": f"hw3-{run.run_dir.name}", "timeout_min": opts.time_min,
                                  "gpus_per_node": opts.gpus, "tasks_per_node": 1}
        if opts.cluster == "slurm":
            params.update(cpus_per_task=opts.threads, nodes=1, slurm_additional_parameters=dict(opts.extra),
                          **({"slurm_partition": opts.partition} if opts.partition else {}))
        executor.update_parameters(**params)
        jobs.append((run, executor.submit(RunJob(), run, str(data_dir), device, opts.threads)))
    return jobs


def wait(jobs: list[tuple[PlannedRun, Any]], opts: SlurmOptions, *, already: int = 0,
         progress: bool = True) -> PoolResult:
    """Wait for ``jobs`` with one progress bar; a failed job is one line on stderr naming its folder and log.
    Ctrl-C cancels them (each checkpoints first) and re-raises."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    by_id = {id(job): run for run, job in jobs}
    outcomes: list[Outcome] = []
    bar = tqdm(total=len(jobs), desc="jobs", unit="run", dynamic_ncols=True, disable=not progress)
    try:
        for job in submitit.helpers.as_completed([j for _, j in jobs], poll_frequency=opts.poll_s):
            run = by_id[id(job)]
            try:
                job.result()
                outcome = Outcome(run.run_dir, "finished")
            except Exception as exc:  # noqa: BLE001 — submitit's FailedJobError, UncompletedJobError...
                outcome = Outcome(run.run_dir, "failed", _one_line(exc), log_file=Path(job.paths.stderr))
                tqdm.write(outcome.line(), file=sys.stderr)
            outcomes.append(outcome)
            bar.update(1)
    except KeyboardInterrupt:
        for _, job in jobs:
            job.cancel(check=False)
        raise
    finally:
        bar.close()
    return PoolResult(outcomes, already, time.perf_counter() - t0)


def train_on_slurm(runs: list[PlannedRun], data_dir: str | Path, device: str, opts: SlurmOptions, *,
                   progress: bool = True) -> PoolResult:
    """:func:`submit` then :func:`wait`, with one line saying what was submitted and a summary."""
    _need_submitit()
    todo = pending(runs)
    if not todo:
        return PoolResult([], len(runs), 0.0)
    jobs = submit(todo, data_dir, device, opts)
    print(f"hw3 runs: {len(jobs)} of {len(runs)} runs submitted to {opts.cluster} as one job each "
          f"({opts.threads} CPU(s), {opts.gpus} GPU(s), {opts.time_min} min"
          f"{', partition ' + opts.partition if opts.partition else ''}); logs in RUN_DIR/slurm/", file=sys.stderr,
          flush=True)
    result = wait(jobs, opts, already=len(runs) - len(todo), progress=progress)
    print(result.summary(), file=sys.stderr, flush=True)
    return result
