"""The local pool behind ``hw3 runs train`` (:mod:`hw3lib.report.runs`) and ``hw3 report``: every run of a
profile's plan (:mod:`hw3lib.report.plan`) trained by worker processes before the notebooks execute; the notebooks
then load finished runs.

    hw3 runs train --profile quick [--data DIR] [--jobs N] [--threads T]
    hw3 runs train --profile full --data DIR --launcher slurm --partition gpu --time 240 --gpus 1  (hw3lib.report.slurm)

Each worker is a spawned process whose ``torch.set_num_threads(T)`` is set before any work. It trains one
:class:`~hw3lib.report.plan.PlannedRun` at a time with its family's ``train_or_load`` (:func:`train_run`: the run's
config and folder are the plan's, built from the notebooks' parameters), its output going to ``train.log`` in the
run folder; the workers' own progress bars are off, the parent shows one bar of runs done / total with an ETA.

Determinism: a run's numbers depend on its config and its threads per run (oneDNN's reduction order), never on
which worker trained it or what ran beside it; the threads are recorded in the checkpoint (``extra["threads"]``,
shown by ``hw3 results``), not in the config hash.

Layout (:func:`choose_layout`): on the CPU one thread per run and one worker per core (two runs at one thread each
do more work per second than one run at two threads on these small convolutions: benchmarks/RESULTS.md); on CUDA
the runs share the GPU, as many at once as its free memory holds at a per-run estimate (the measured peak of the
largest training step, :func:`gpu_run_bytes`, plus an allowance for each process's CUDA context and data), at most
one per core, the cores split between them. ``--jobs``/``--threads`` override.

Ctrl-C (or SIGTERM) stops every worker at its next step boundary after a checkpoint (``TrainLoop`` saves on
SIGINT/SIGTERM) and leaves the queued runs untouched; the same command resumes. A failed run is one line naming its
folder and log; the others finish; the exit status is non-zero at the end.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from hw3lib.report.plan import PlannedRun
from hw3lib.results import fmt_seconds

LOG_NAME = "train.log"
# Per process on a shared GPU, on top of the measured step peak: the CUDA context (~0.5 GiB) and the run's data
# on the device (the course's digits ~0.3 GiB, faces ~0.5 GiB as uint8).
CUDA_PROCESS_BYTES = 1 << 30


# ---------------------------------------------------------------- the layout

@dataclass(frozen=True)
class Layout:
    """How the pool runs: ``jobs`` workers of ``threads`` intra-op threads each on ``device``."""
    device: str
    jobs: int
    threads: int
    why: str                # "2 cores", "--jobs", "GPU memory: ..."

    def line(self, todo: int, total: int) -> str:
        """The one output line that states the layout."""
        from hw3lib.device import cpu_isa

        where = self.device if self.device.startswith("cuda") else f"cpu ({cpu_isa()})"
        return (f"hw3 runs: {todo} of {total} runs to train on {where}: {self.jobs} worker(s) × {self.threads} "
                f"thread(s) per run ({self.why})")


def cores() -> int:
    """CPU cores this process may use (its affinity mask, e.g. a Slurm allocation), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def choose_layout(device: str, *, jobs: int | None = None, threads: int | None = None, n_cores: int | None = None,
                  gpu_free: int | None = None, run_bytes: int | None = None) -> Layout:
    """Workers × threads for ``device``. CPU: ``threads`` (default 1) per run, ``cores // threads`` workers. CUDA:
    as many workers as ``gpu_free`` bytes hold at ``run_bytes`` + :data:`CUDA_PROCESS_BYTES` each (90 % of the
    free memory), at most one per core; the cores are split between them. ``jobs``/``threads`` override."""
    n_cores = n_cores or cores()
    if jobs is not None and jobs < 1 or threads is not None and threads < 1:
        raise ValueError(f"--jobs and --threads must be at least 1 (got {jobs}, {threads})")
    if device.startswith("cuda"):
        if jobs is None:
            fit = int(0.9 * (gpu_free or 0) // ((run_bytes or 0) + CUDA_PROCESS_BYTES))
            jobs = max(1, min(n_cores, fit))
            why = (f"GPU memory: {fit} runs of ~{((run_bytes or 0) + CUDA_PROCESS_BYTES) / 2**30:.1f} GiB fit in "
                   f"{(gpu_free or 0) / 2**30:.0f} GiB free; {n_cores} cores")
        else:
            why = "--jobs"
        return Layout(device, jobs, threads or max(1, n_cores // jobs), why)
    threads = threads or 1
    why = "--jobs" if jobs is not None else f"{n_cores} cores"
    return Layout(device, jobs or max(1, n_cores // threads), threads, why)


def gpu_run_bytes(runs: Iterable[PlannedRun], device) -> int:
    """Peak CUDA memory of three training steps of the largest kind of step among ``runs`` (each distinct step
    measured once, with the real training code on random images: :func:`hw3lib.report.plan.step_runner`)."""

    from hw3lib.report.plan import step_runner

    peak, seen = 0, set()
    with _env(HW3_PROGRESS="0"):
        for r in runs:
            if r.bench_key in seen:
                continue
            seen.add(r.bench_key)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            step_runner(r, device)(3)
            peak = max(peak, torch.cuda.max_memory_allocated(device))
    torch.cuda.empty_cache()
    return peak


def layout_for(runs: list[PlannedRun], device, *, jobs: int | None = None, threads: int | None = None) -> Layout:
    """:func:`choose_layout` for this machine; on CUDA from the GPU's free memory and the measured step peak."""
    device = torch.device(device)
    if device.type != "cuda":
        return choose_layout(str(device), jobs=jobs, threads=threads)
    run_bytes = gpu_run_bytes(runs, device) if jobs is None and runs else 0
    free, _ = torch.cuda.mem_get_info(device)
    return choose_layout(str(device), jobs=jobs, threads=threads, gpu_free=free, run_bytes=run_bytes)


def finished(run: PlannedRun) -> bool:
    """The plan found ``run`` finished, or its folder holds a finished checkpoint of its config now."""
    from hw3lib import checkpoint
    from hw3lib.train.configs import config_dict, same_config

    if run.done >= run.steps:
        return True
    file = checkpoint.resolve(run.run_dir)
    if not file.is_file():
        return False
    payload = checkpoint.load(file)
    reached = bool(payload.get("finished")) or (run.until is not None and int(payload.get("step") or 0) >= run.until)
    return reached and same_config(payload.get("config") or {}, config_dict(run.config))


def pending(runs: Iterable[PlannedRun]) -> list[PlannedRun]:
    """The unfinished runs (:func:`finished`), each folder once (P4 reuses P3's baseline runs; a folder is
    trained once), the heavy runs first (``PlannedRun.heavy``, set by the problem's module: the 64x64-image families and
GTA's generator take far longer per step than the 28x28 digit networks, benchmarks/RESULTS.md, GFLOP/img; started
first, they do not leave one worker busy at the end while the others idle), then the digit runs by the images they
    have left to process (steps × batch, twice that for a run that also reads a target batch per step): the last
    runs to start are the short ones, so the workers end close together. Rows of steps a later rung of the
    development protocol will add are not runs yet (:func:`train_in_stages`)."""
    seen, out = set(), []
    for r in runs:
        if r.later or r.run_dir in seen:
            continue
        seen.add(r.run_dir)
        if not finished(r):
            out.append(r)
    return sorted(out, key=lambda r: (not r.heavy, 0 if r.heavy else -_images_left(r)))  # stable among equals


def _images_left(run: PlannedRun) -> int:
    """Images a digit run still has to read: a cost proxy that needs no measurement (equal for equal recipes)."""
    spec = getattr(run.config, "spec", None)
    return (run.steps - run.done) * run.batch * (2 if spec is not None and spec.adapts else 1)


# ---------------------------------------------------------------- one run, in a worker

def train_run(run: PlannedRun, data_dir: str | Path, device: str | None = None) -> None:
    """Train ``run`` in this process (resume an unfinished one; load a finished one) with its family's
    ``train_or_load`` (``run.trainer``, set by the problem's module) and the plan's config and folder; ``device``
    overrides the config's."""
    from hw3lib.runtime import Runtime

    runtime = Runtime.for_config(run.config, device=device)
    if run.until is not None:  # a development run, to its rung of the halving (hw3lib.train.uda.develop)
        from hw3lib.train.uda.runs import advance

        advance(run.config, data_dir, run.run_dir, run.until, runtime=runtime)
        return
    if run.trainer is None:
        raise ValueError(f"planned run {run.run_dir} has no trainer (its problem's module sets PlannedRun.trainer)")
    run.trainer(run.config, data_dir, run.run_dir, runtime=runtime)


@dataclass(frozen=True)
class Outcome:
    run_dir: Path
    status: str             # finished | failed | interrupted | skipped
    error: str = ""         # "ValueError: ..." for a failed run
    wall_s: float = 0.0
    log_file: Path | None = None    # where its output went (default: RUN_DIR/train.log)

    @property
    def log(self) -> Path:
        return self.log_file or self.run_dir / LOG_NAME

    def line(self) -> str:
        why = self.error or "stopped by a signal (the same command resumes it)"
        return f"hw3 runs: {self.status.upper()} {self.run_dir}: {why} (log: {self.log})"


_STOP = None  # the pool's stop event, in a worker


def _init_worker(threads: int, stop) -> None:
    """A worker's set-up, before any work: its threads, quiet loops, and Ctrl-C left to the parent (which stops
    the workers itself, so an idle worker never dies on it)."""
    global _STOP
    _STOP = stop
    os.environ.update(HW3_PROGRESS="0", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """File descriptors 1 and 2 (Python's and the C libraries' output) appended to ``log`` for the block."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(log, "a", buffering=1) as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _train_logged(run: PlannedRun, data_dir: str, device: str) -> tuple[str, str]:
    """:func:`train_run` with a header, the outcome and any traceback in the log (stdout/stderr)."""
    from hw3lib.train.loop import Interrupted

    t0 = time.perf_counter()
    print(f"== {_dt.datetime.now().isoformat(timespec='seconds')} {run.problem} {run.method} {run.pair} "
          f"seed {run.seed}: {run.status}; {torch.get_num_threads()} thread(s) on {device}, pid {os.getpid()}")
    try:
        train_run(run, data_dir, device)
    except (Interrupted, KeyboardInterrupt):
        print("interrupted: the checkpoint keeps the last step; the same command resumes")
        return "interrupted", ""
    except Exception as exc:  # noqa: BLE001 — one run's failure is reported; the others go on
        traceback.print_exc()
        return "failed", _one_line(exc)
    print(f"finished in {fmt_seconds(time.perf_counter() - t0)}")
    return "finished", ""


def _work(run: PlannedRun, data_dir: str, device: str) -> Outcome:
    """A worker's task: ``run`` trained by :func:`train_run`, its output appended to ``run_dir/train.log``."""
    if _STOP is not None and _STOP.is_set():
        return Outcome(run.run_dir, "skipped")
    t0 = time.perf_counter()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # set-up is interruptible too
    try:
        with output_to(run.run_dir / LOG_NAME):
            status, error = _train_logged(run, data_dir, device)
    except KeyboardInterrupt:
        status, error = "interrupted", ""
    except Exception as exc:  # noqa: BLE001 — e.g. the log cannot be written
        status, error = "failed", _one_line(exc)
    finally:
        signal.signal(signal.SIGINT, previous)
    return Outcome(run.run_dir, status, error, time.perf_counter() - t0)


# ---------------------------------------------------------------- the pool

@dataclass
class PoolResult:
    outcomes: list[Outcome]
    already: int            # runs finished before (or listed twice)
    wall_s: float

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def exit_code(self) -> int:
        """1 when a run failed or was stopped, else 0."""
        return int(any(o.status != "finished" for o in self.outcomes))

    def summary(self) -> str:
        n = sum(o.status == "finished" for o in self.outcomes)
        rate = f", {3600 * n / self.wall_s:.0f} runs/h" if n and self.wall_s > 0 else ""
        return (f"hw3 runs: {n} trained, {len(self.failed)} failed, {self.already} already finished "
                f"({fmt_seconds(self.wall_s)}{rate})")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM to the parent (a scheduler, ``kill``) stops the pool like Ctrl-C."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_pool(runs: list[PlannedRun], data_dir: str | Path, layout: Layout, *, progress: bool = True) -> PoolResult:
    """Train every unfinished run of ``runs`` (:func:`pending`) in ``layout.jobs`` spawned workers. A failed run
    is one line on stderr; the others finish. Ctrl-C/SIGTERM: every worker checkpoints and stops, queued runs
    are left, and ``KeyboardInterrupt`` is raised once they have."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    todo = pending(runs)
    already = len(runs) - len(todo)
    if not todo:
        return PoolResult([], already, 0.0)
    ctx = mp.get_context("spawn")  # fresh interpreters: no state (threads, CUDA) inherited from the parent
    stop = ctx.Event()
    outcomes: list[Outcome] = []
    bar = tqdm(total=len(todo), desc="runs", unit="run", dynamic_ncols=True, disable=not progress)
    pool = ProcessPoolExecutor(layout.jobs, mp_context=ctx, initializer=_init_worker,
                               initargs=(layout.threads, stop))
    try:
        with _sigterm_as_interrupt():
            futures = {pool.submit(_work, r, str(data_dir), layout.device): r for r in todo}
            try:
                for fut in as_completed(futures):
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        outcome = Outcome(futures[fut].run_dir, "failed", "its worker process died (killed, or out "
                                                                          "of memory?)")
                    except Exception as exc:  # noqa: BLE001 — e.g. the run could not be sent to a worker
                        outcome = Outcome(futures[fut].run_dir, "failed", _one_line(exc))
                    outcomes.append(outcome)
                    if outcome.status != "finished":
                        tqdm.write(outcome.line(), file=sys.stderr)
                    bar.update(1)
            except KeyboardInterrupt:
                stop.set()
                for p in mp.active_children():  # the pool's workers: each saves at its next step boundary
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGINT)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
    return PoolResult(outcomes, already, time.perf_counter() - t0)


def train_in_stages(plan: Callable[[], list[PlannedRun]], train: Callable[[list[PlannedRun]], PoolResult]
                    ) -> PoolResult:
    """``train(plan())`` until the plan has nothing left to train: the development protocol's successive halving
    plans the runs of its next rung only once the last rung's runs have reached it (:func:`hw3lib.report.plan.
    _development_runs`), and its choices decide which hand-in runs there are. Stops at the first stage with a
    failed or interrupted run; the outcomes of every stage together."""
    outcomes, already, wall = [], None, 0.0
    while True:
        runs = plan()
        result = train(runs)
        outcomes += result.outcomes
        already = result.already if already is None else already
        wall += result.wall_s
        if not result.outcomes or result.exit_code:
            return PoolResult(outcomes, already, wall)


def train_planned(runs: list[PlannedRun], data_dir: str | Path, device, *, jobs: int | None = None,
                  threads: int | None = None, progress: bool = True) -> PoolResult:
    """The layout line (stderr), then :func:`run_pool`, then failures and a summary line (stderr)."""
    todo = pending(runs)
    if not todo:
        return PoolResult([], len(runs), 0.0)
    layout = layout_for(todo, device, jobs=jobs, threads=threads)
    print(layout.line(len(todo), len(runs)), file=sys.stderr, flush=True)
    result = run_pool(runs, data_dir, layout, progress=progress)
    print(result.summary(), file=sys.stderr, flush=True)
    return result
