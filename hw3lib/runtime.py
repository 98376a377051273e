"""One object that owns where and how a run executes: device, process group, autocast and memory layout.

Training loops hold a :class:`Runtime` (through :class:`hw3lib.train.loop.TrainLoop`) instead of threading
``device=`` and ``dist=`` through every function — the shape of lucidrains' ``Trainer`` holding an
``Accelerator``::

    rt = Runtime.create(config.device, amp=config.amp, channels_last=config.channels_last)
    net = rt.prepare(model)                 # device, channels_last, DDP wrap (under torchrun)
    with rt.autocast():                     # bf16 on CUDA, float32 on CPU (see hw3lib.device.amp_dtype)
        out = net(rt.images(x_uint8))       # uint8 → [-1, 1] float in the run's memory layout
    rt.finish(model)                        # back to the default layout, eval mode (what a reload gives)

Process-wide set-up (allocator tuning, deterministic kernels from ``HW3_DETERMINISTIC``) happens once, in
:meth:`Runtime.create`, never in a loop's constructor. A command line gets its runtime from :func:`launch`
(torchrun's process group, torn down at the end); :func:`eval_mode` / :func:`train_mode` switch modules for a
block and restore their modes.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from hw3lib import settings
from hw3lib.device import autocast as _autocast
from hw3lib.device import get_device, set_deterministic, tune_allocator
from hw3lib.distributed import SINGLE, DistInfo, setup, teardown, unwrap, wrap


@dataclass(frozen=True)
class Runtime:
    """Where a run executes. ``dist`` is :data:`hw3lib.distributed.SINGLE` outside torchrun."""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dist: DistInfo = SINGLE
    amp: str = "auto"
    channels_last: bool = True
    sync_bn: bool = False

    @classmethod
    def create(cls, device: str | torch.device | None = "auto", *, dist: DistInfo = SINGLE, amp: str = "auto",
               channels_last: bool = True, sync_bn: bool = False) -> "Runtime":
        """Resolve ``device`` (``auto`` → CUDA when available; ``HW3_DEVICE`` overrides ``auto``) and apply the
        process-wide settings: the allocator tuning and, with ``HW3_DETERMINISTIC=1``, deterministic kernels."""
        dev = get_device(device)
        tune_allocator()
        if settings.DETERMINISTIC.value:
            set_deterministic(True)
        return cls(dev, dist, amp, channels_last, sync_bn)

    @classmethod
    def for_config(cls, config, *, device: str | torch.device | None = None, dist: DistInfo = SINGLE) -> "Runtime":
        """The runtime a config asks for (its ``device``, ``amp`` and ``channels_last`` fields); ``device``
        overrides the config's (the CLI's per-rank device under torchrun)."""
        return cls.create(device if device is not None else getattr(config, "device", "auto"), dist=dist,
                          amp=getattr(config, "amp", "auto"), channels_last=getattr(config, "channels_last", True))

    # -- processes ---------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    # -- models ------------------------------------------------------------------------------------
    def prepare(self, model: nn.Module, *, ddp: bool = True, find_unused: bool = False) -> nn.Module:
        """Move ``model`` to the device (in place), switch its convolutions to channels_last when asked, and
        wrap it in DDP under torchrun (unless ``ddp`` is False; ``find_unused``: some parameters may get no
        gradient in a step). Returns the module to call in the step (the DDP wrapper or ``model``); ``model``
        itself stays the one whose ``state_dict`` a checkpoint holds."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if not ddp:
            return model
        return wrap(model, self.dist, self.device, sync_bn=self.sync_bn, find_unused=find_unused)

    def finish(self, *models: nn.Module) -> None:
        """Back to the default layout and eval mode, so a trained model computes exactly what a reload of its
        checkpoint does."""
        for m in models:
            unwrap(m).eval().to(memory_format=torch.contiguous_format)

    # -- tensors -----------------------------------------------------------------------------------
    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the run's memory layout (NHWC for 4-d tensors when ``channels_last``)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [N,C,H,W] in 0..255 → float in [-1, 1] in the run's layout (matches a Tanh output)."""
        return self.layout(x.float().div_(127.5).sub_(1.0))

    def autocast(self) -> torch.autocast:
        """Autocast for a step's forward passes (:func:`hw3lib.device.autocast` with this run's ``amp``)."""
        return _autocast(self.device, self.amp)


def cpu() -> Runtime:
    """A plain single-process CPU runtime without process-wide changes (tests, evaluation helpers)."""
    return Runtime(torch.device("cpu"))


@contextlib.contextmanager
def _mode(training: bool, models: tuple[nn.Module, ...]) -> Iterator[None]:
    # Every submodule's own flag is restored: a wrapper (a classifier around a trained net) may disagree with
    # the modules inside it, and ``train(flag)`` on the wrapper would overwrite theirs.
    was = [(m, m.training) for root in models for m in root.modules()]
    try:
        for m in models:
            m.train(training)
        yield
    finally:
        for m, t in was:
            m.training = t


def eval_mode(*models: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Put ``models`` in eval mode for the block, then restore each one's previous mode (also on an exception)."""
    return _mode(False, models)


def train_mode(*models: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Put ``models`` in train mode for the block (BatchNorm on batch statistics), then restore each one's mode."""
    return _mode(True, models)


@contextlib.contextmanager
def channels_last_mode(*models: nn.Module, enabled: bool = True) -> Iterator[None]:
    """The 4-d parameters (convolution weights) of ``models`` in channels_last (NHWC) for the block, then the
    tensors they were before: for forward passes only (evaluation, BatchNorm re-estimation), whose NHWC
    convolutions are faster on oneDNN and give the NCHW numbers up to float rounding."""
    params = [p for m in models for p in m.parameters() if p.dim() == 4] if enabled else []
    was = [p.data for p in params]
    try:
        for p in params:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
        yield
    finally:
        for p, data in zip(params, was):
            p.data = data


@contextlib.contextmanager
def launch(config) -> Iterator[Runtime]:
    """The runtime of a command-line run of ``config``: under torchrun, this rank's process group and device
    (:func:`hw3lib.distributed.setup`), torn down when the block ends; a single process otherwise."""
    dist, device = setup(get_device(getattr(config, "device", "auto")))
    try:
        yield Runtime.for_config(config, device=device, dist=dist)
    except BaseException:
        teardown(clean=False)
        raise
    teardown()
