"""DistributedDataParallel plumbing for ``torchrun``. Single-process runs never touch a process group.

``torchrun --nproc_per_node=N -m hw3lib train ...`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
:func:`setup` reads them, starts the process group (``nccl`` on CUDA, ``gloo`` on CPU) and returns
:class:`DistInfo`. Checkpoints hold the unwrapped modules' state dicts, so a DDP checkpoint resumes
single-process and vice versa.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo()


def current() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return SINGLE


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Start the process group when launched by torchrun; return (info, this rank's device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return SINGLE, device
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    info = current()
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return info, device


def teardown(clean: bool = True) -> None:
    """Leave the process group together and before exit.

    After a clean run (``clean``) the ranks meet first (rank 0 may still be writing the checkpoint; after an error
    the others may never arrive, so they are not waited for), and reference cycles that still hold a DDP
    reducer (a training loop's closures) are collected while the interpreter is whole: a reducer that outlives
    ``destroy_process_group`` frees its gloo group during interpreter finalisation, where gloo's worker threads
    can abort the process ("terminate called without an active exception", seen once in CI on a 2-rank run).
    """
    if dist.is_available() and dist.is_initialized():
        import gc

        if clean:
            dist.barrier()
        gc.collect()
        dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo, device: torch.device, *, sync_bn: bool = False,
         find_unused: bool = False) -> nn.Module:
    """DDP-wrap ``model`` when distributed; identity otherwise.

    BatchNorm: per-rank statistics by default (what single-GPU training with the same per-GPU batch does,
    and it avoids a collective per BN layer); ``sync_bn=True`` converts to SyncBatchNorm, which matters when the
    per-rank batch gets small. ``find_unused``: parameters a step leaves without gradient (a head one method
    does not use) are found by DDP in every step instead of raising.
    """
    if not info.enabled:
        return model
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    # broadcast_buffers=False: BN running stats stay per rank (rank 0's are what gets checkpointed);
    # broadcasting them each forward would also break GAN steps that run a net several times per step.
    with warnings.catch_warnings():
        # Newer torch deprecates broadcast_buffers but says to keep it for rank-local buffers (our case).
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False,
                                                     find_unused_parameters=find_unused)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def all_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (for logging); identity single-process."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def max_param_divergence(models: dict[str, nn.Module]) -> float:
    """Largest |param − rank 0's param| over all trained parameters (0.0 single-process).

    DDP keeps replicas identical by construction; recording this at the end of a run makes that checkable.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return 0.0
    worst = torch.zeros(())
    for model in models.values():
        for p in unwrap(model).parameters():
            ref = p.detach().clone()
            dist.broadcast(ref, src=0)
            worst = torch.maximum(worst, (p.detach() - ref).abs().max().cpu())
    worst = worst.to(next(iter(models.values())).parameters().__next__().device)
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return float(worst)
