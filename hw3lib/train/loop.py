"""The step driver every training loop shares: progress bar, history, atomic periodic checkpoints,
resume, Ctrl-C/SIGTERM that saves first, and a divergence guard.

A method's loop reads like this (see ``hw3lib/train/vae.py``)::

    loop = TrainLoop("vae", config, runtime, models={"vae": model}, optimizers={"vae": opt},
                     total_steps=total, run_dir=run_dir)
    loop.resume()                                   # no-op without a matching unfinished checkpoint
    batches = Batches(images, batch_size=..., seed=config.seed).forever(loop.step)
    for step in loop:                               # checkpoints every ``ckpt_every`` steps and at the end
        (x,) = next(batches)
        ...
        loop.log(mse=mse, kld=kld)                  # tensors stay on the device until the next flush
        if loop.every(step, steps_per_epoch):
            loop.log_epoch((step + 1) / steps_per_epoch, test_mse=...)
    return loop.history

History is a flat dict of lists: ``step`` with the step-level series (means over ``log_every`` steps),
``epoch`` with the epoch-level series (keys passed to :meth:`TrainLoop.log_epoch`).

The loop holds the run's :class:`hw3lib.runtime.Runtime` (device, process group, autocast, layout).

Environment (execution only, never part of the config): ``HW3_CKPT_EVERY=N`` checkpoints every N steps. Under torchrun the
finished checkpoint's ``extra["ddp_max_param_diff"]`` records the largest parameter difference between ranks
(0.0 when DDP kept the replicas in sync).
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from hw3lib import checkpoint, settings
from hw3lib.data.batches import Batches
from hw3lib.device import describe
from hw3lib.distributed import SINGLE, DistInfo, all_mean, barrier, max_param_divergence, unwrap
from hw3lib.runtime import Runtime
from hw3lib.train.configs import config_diff, config_dict, same_config


class RunConflict(ValueError):
    """The run folder holds a run of another kind or config: it is never overwritten."""


def _threads_record(before: int | list[int] | None, now: int) -> int | list[int]:
    """``extra["threads"]``: the intra-op threads the run trained with (a CPU run's numbers depend on them,
    through the order of oneDNN's reductions), or the list of counts when resumed sessions used different ones."""
    if before is None or before == now:
        return now
    counts = before if isinstance(before, list) else [before]
    return counts if now in counts else [*counts, now]


class DivergenceError(RuntimeError):
    """A loss became NaN/inf. The last good checkpoint (if any) is kept untouched."""


class Paused(Exception):
    """The loop reached the step of a :func:`pause_at` block: the checkpoint holds that step, unfinished, and the
    same call without the block resumes it (successive halving's rungs, :mod:`hw3lib.train.uda.develop`)."""

    def __init__(self, step: int, history: dict[str, list]):
        super().__init__(f"paused at step {step}")
        self.step, self.history = step, history


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM arrived; a checkpoint was written at the last step boundary."""


# The timestamp lists of the ``step_clock`` blocks around this code (benchmarks, ``hw3 report --plan``).
_CLOCKS: contextvars.ContextVar[tuple[Callable[[], None], ...]] = contextvars.ContextVar("hw3_step_clocks", default=())


# The step at which the loops inside a ``pause_at`` block stop (None: run to the end).
_PAUSE_AT: contextvars.ContextVar[int | None] = contextvars.ContextVar("hw3_pause_at", default=None)


@contextlib.contextmanager
def pause_at(step: int | None) -> Iterator[None]:
    """Loops inside the block save an unfinished checkpoint once they reach ``step`` and raise :class:`Paused`.
    A pause is not part of the config: resuming the run later ends bit-identical to training it in one go."""
    token = _PAUSE_AT.set(step)
    try:
        yield
    finally:
        _PAUSE_AT.reset(token)


@contextlib.contextmanager
def step_clock(sync: Callable[[], None] | None = None) -> Iterator[list[float]]:
    """Timestamps (``time.perf_counter``) at the start of every :class:`TrainLoop` step inside the block, and one
    at the end of each loop, after ``sync()`` (e.g. ``torch.cuda.synchronize``): for measuring step times
    (``hw3 report --plan``, benchmarks) without counting set-up and evaluation outside the steps."""
    stamps: list[float] = []

    def tick() -> None:
        if sync is not None:
            sync()
        stamps.append(time.perf_counter())

    token = _CLOCKS.set((*_CLOCKS.get(), tick))
    try:
        yield stamps
    finally:
        _CLOCKS.reset(token)


def epoch_steps(epochs: float, n_train: int, batch_size: int, world_size: int = 1,
                max_steps: int | None = None) -> int:
    """Optimiser steps of ``epochs`` passes over ``n_train`` images (at least one; capped by ``max_steps``)."""
    per_epoch = len(Batches(torch.zeros(n_train), batch_size=batch_size, world_size=world_size))
    total = max(1, round(epochs * per_epoch))
    return min(total, max_steps) if max_steps is not None else total


def progress_enabled(info: DistInfo = SINGLE) -> bool:
    return info.is_main and settings.PROGRESS.value


class TrainLoop:
    """Iterate training steps with history, checkpoints, resume and interruption handling."""

    def __init__(self, kind: str, config: Any, runtime: Runtime, *, models: Mapping[str, nn.Module],
                 optimizers: Mapping[str, torch.optim.Optimizer], total_steps: int,
                 run_dir: str | Path | None = None, schedulers: Mapping[str, Any] | None = None,
                 desc: str | None = None):
        if total_steps < 0:
            raise ValueError(f"total steps must be >= 0, got {total_steps}")
        self.kind = kind
        self.config = config_dict(config)
        self.runtime = runtime
        self.dist: DistInfo = runtime.dist
        self.models, self.optimizers = dict(models), dict(optimizers)
        self.schedulers = dict(schedulers or {})
        self.total_steps = int(total_steps)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        # HW3_CKPT_EVERY overrides the checkpoint interval of any run (execution only, like ckpt_every).
        self.ckpt_every = max(1, settings.CKPT_EVERY.value or self.config.get("ckpt_every") or 500)
        self.log_every = max(1, self.config.get("log_every") or 10)
        self.desc = desc or kind
        self.extra: dict[str, Any] = {}
        self.step = 0
        self.history: dict[str, list] = {"step": [], "epoch": []}
        # Running sums of the current log window: tensors stay on the training device (no host sync per step);
        # Python numbers (e.g. DANN's λ) stay Python floats, so a CUDA run never stacks a CPU scalar with them.
        self._pending: dict[str, torch.Tensor | float] = {}
        self._pending_n = 0
        self._stop_signal: int | None = None
        self.resumed = False

    # -- state -------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / checkpoint.CKPT_NAME if self.run_dir else None

    def state(self, finished: bool = False) -> dict[str, Any]:
        return {
            "kind": self.kind, "step": self.step, "total_steps": self.total_steps, "finished": finished,
            "config": self.config,
            "models": {k: unwrap(m).state_dict() for k, m in self.models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "history": self.history, "rng": checkpoint.capture_rng(), "extra": self.extra,
            "world_size": self.dist.world_size,
            # Partial log window, so a resumed run logs exactly what an uninterrupted one would.
            "pending": {k: v.cpu() if isinstance(v, torch.Tensor) else float(v) for k, v in self._pending.items()},
            "pending_n": self._pending_n,
        }

    def save(self, finished: bool = False) -> None:
        """Check for divergence (a bad state is never saved), then write atomically (rank 0)."""
        if finished:
            self.flush()
        else:
            self._check_pending()
        if self.checkpoint_path is not None and self.dist.is_main:
            checkpoint.save(self.state(finished), self.checkpoint_path)
        barrier()

    def resume(self) -> bool:
        """Load an unfinished checkpoint of the same kind and config from ``run_dir``; True if resumed.

        A checkpoint of another kind or config is never replaced: :class:`RunConflict` names the folder and
        what differs (one folder, one config)."""
        path = self.checkpoint_path
        if path is None or not path.is_file():
            return False
        payload = checkpoint.load(path)
        if payload.get("kind") != self.kind:
            raise RunConflict(f"{path.parent} holds a {payload.get('kind')} run, not {self.kind}: nothing was "
                              f"overwritten; delete that folder or train into another one")
        if not same_config(payload["config"], self.config):
            raise RunConflict(f"{path.parent} holds a {self.kind} run with another config "
                              f"({config_diff(payload['config'], self.config)}): nothing was overwritten; delete "
                              f"that folder or train into another one")
        for k, m in self.models.items():
            unwrap(m).load_state_dict(payload["models"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(payload["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(payload["schedulers"][k])
        self.history = payload["history"]
        self.extra.update(payload.get("extra") or {})
        self.step = int(payload["step"])
        self._pending = {k: v.to(self.runtime.device) if isinstance(v, torch.Tensor) else float(v)
                         for k, v in (payload.get("pending") or {}).items()}
        self._pending_n = int(payload.get("pending_n") or 0)
        checkpoint.restore_rng(payload["rng"])
        self.resumed = True
        if progress_enabled(self.dist):
            tqdm.write(f"resuming {self.desc} from step {self.step} of {self.total_steps} ({path})", file=sys.stderr)
        self.extra["resumed_at"] = [*self.extra.get("resumed_at", []), self.step]
        return True

    # -- logging -----------------------------------------------------------------------------------
    def log(self, **values: torch.Tensor | float) -> None:
        """Accumulate step-level scalars; they reach ``history`` as means every ``log_every`` steps."""
        for k, v in values.items():
            if isinstance(v, torch.Tensor):
                v = v.detach().float().reshape(())
                self._pending[k] = self._pending[k] + v if k in self._pending else v.clone()
            else:
                self._pending[k] = self._pending.get(k, 0.0) + float(v)
        self._pending_n += 1 if values else 0

    def _pending_tensors(self) -> list[str]:
        return [k for k, v in self._pending.items() if isinstance(v, torch.Tensor)]

    def _check_pending(self) -> None:
        keys = self._pending_tensors()
        if not self._pending_n or not keys:
            return
        values = torch.stack([self._pending[k] for k in keys])
        if not bool(torch.isfinite(all_mean(values)).all()):
            self.flush()  # raises DivergenceError with the details

    def flush(self) -> None:
        if not self._pending_n:
            return
        keys = list(self._pending)
        means = {k: v / self._pending_n for k, v in self._pending.items() if not isinstance(v, torch.Tensor)}
        tensor_keys = self._pending_tensors()
        if tensor_keys:
            # One host sync per flush, not per step; every rank sees the same numbers, so all stop together.
            stacked = torch.stack([self._pending[k] for k in tensor_keys]) / self._pending_n
            means.update(zip(tensor_keys, all_mean(stacked).cpu().tolist()))
        values = [means[k] for k in keys]
        self._pending, self._pending_n = {}, 0
        # Inside a step's body the current step's logs are pending already: it counts as done.
        self.history["step"].append(self.step + (1 if self._in_body else 0))
        for k, v in zip(keys, values):
            self.history.setdefault(k, []).append(v)
        bad = [k for k, v in zip(keys, values) if not math.isfinite(v)]
        if bad:
            where = f"; last good checkpoint kept at {self.checkpoint_path}" if self.checkpoint_path else ""
            raise DivergenceError(f"{self.kind}: loss {bad[0]} became {values[keys.index(bad[0])]} "
                                  f"around step {self.step}{where}")
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in zip(keys[:4], values[:4])}, refresh=False)

    def log_epoch(self, epoch: float, **values: float) -> None:
        """Record epoch-level values (e.g. test metrics) now, against ``history["epoch"]``."""
        self.flush()
        self.history["epoch"].append(epoch)
        for k, v in values.items():
            self.history.setdefault(k, []).append(float(v))

    @staticmethod
    def every(step: int, n: int) -> bool:
        """True after steps n, 2n, ... (``step`` is the 0-based index of the step just taken)."""
        return n > 0 and (step + 1) % n == 0

    # -- iteration ---------------------------------------------------------------------------------
    _bar = None
    _in_body = False

    def _on_signal(self, signum, frame):  # noqa: ARG002
        self._stop_signal = signum

    def _should_stop(self) -> bool:
        """A signal arrived. Under DDP every rank must stop at the same step (the save ends in a barrier and
        the next step's all-reduce would hang), so ranks agree on it every ``log_every`` steps."""
        if not self.dist.enabled:
            return self._stop_signal is not None
        if self.step % self.log_every or self.step >= self.total_steps:
            return False
        import torch.distributed as tdist
        flag = torch.tensor([0.0 if self._stop_signal is None else 1.0], device=self.runtime.device)
        tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
        return bool(flag.item())

    def __iter__(self) -> Iterator[int]:
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._on_signal)
        self._bar = tqdm(total=self.total_steps, initial=self.step, desc=self.desc, dynamic_ncols=True,
                         disable=not progress_enabled(self.dist), leave=False)
        # Training wall time, summed over resumed sessions: extra["wall_s"] (hw3 results, the report's timings).
        t0 = time.perf_counter() - float(self.extra.get("wall_s", 0.0))
        self.extra["threads"] = _threads_record(self.extra.get("threads"), torch.get_num_threads())
        self.extra["device"] = describe(self.runtime.device)  # where it trained (a report's kernel may run elsewhere)
        try:
            for m in self.models.values():
                m.train()
            while self.step < self.total_steps:
                for tick in _CLOCKS.get():
                    tick()
                self._in_body = True
                yield self.step
                self._in_body = False
                self.step += 1
                self.extra["wall_s"] = time.perf_counter() - t0
                self._bar.update(1)
                if self.step % self.log_every == 0:
                    self.flush()
                if self.step == _PAUSE_AT.get() and self.step < self.total_steps:
                    self.save()
                    raise Paused(self.step, self.history)
                if self._should_stop():
                    self.save()
                    raise Interrupted(f"{self.kind}: interrupted at step {self.step}; checkpoint saved "
                                      f"to {self.checkpoint_path}; run the same command again to resume")
                if self.step % self.ckpt_every == 0 and self.step < self.total_steps:
                    self.save()
            for tick in _CLOCKS.get():
                tick()
            if self.dist.enabled:  # a collective: every rank calls it; rank 0 records it in the checkpoint
                self.extra["ddp_max_param_diff"] = max_param_divergence(self.models)
            self.save(finished=True)
        finally:
            self._bar.close()
            self._bar = None
            for sig, h in handlers.items():
                signal.signal(sig, h)
