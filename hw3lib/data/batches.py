"""Mini-batches over tensors already in memory (or on the GPU): no per-sample decoding, no workers.

Every epoch's order is a pure function of ``(seed, epoch)``, so a run resumed at step ``s`` sees exactly
the batches an uninterrupted run would, and DDP ranks agree on the global order without talking.
"""
from __future__ import annotations

from typing import Iterator

import torch


class Batches:
    """Shuffled batches of ``tensors`` (all indexed along dim 0).

    ``batch_size`` is the *global* batch: with ``world_size`` ranks each rank yields ``batch_size // world_size``
    rows, and the ranks' batches at step ``i`` together are exactly the single-process batch ``i``.

    >>> b = Batches(torch.arange(10), batch_size=4, seed=0)
    >>> len(b), [x.shape[0] for (x,) in b.epoch(0)]
    (2, [4, 4])
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True, drop_last: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if not tensors:
            raise ValueError("Batches needs at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError("Batches: tensors differ in length")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if batch_size % world_size:
            raise ValueError(f"global batch_size {batch_size} is not divisible by world size {world_size}")
        if n == 0:
            raise ValueError("Batches: no data")
        self.tensors = tensors
        self.n = n
        # A data set smaller than one batch (smoke runs) still yields one batch per epoch, not none.
        self.batch_size = max(world_size, min(batch_size, n - n % world_size))
        self.local_batch = self.batch_size // world_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest >= self.world_size and not self.drop_last else 0)

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """Batches of one epoch, from batch index ``start``."""
        order = self.order(epoch)
        device = self.tensors[0].device
        for i in range(start, len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            idx = idx[: len(idx) - len(idx) % self.world_size][self.rank::self.world_size]
            idx = idx.to(device, non_blocking=True)
            yield tuple(t[idx] for t in self.tensors)

    def forever(self, start_step: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
        """Endless batches, epoch after epoch, starting at global step ``start_step``."""
        epoch, start = divmod(start_step, len(self))
        while True:
            yield from self.epoch(epoch, start)
            epoch, start = epoch + 1, 0


def in_order(*tensors: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """Unshuffled batches covering every row once (evaluation)."""
    n = len(tensors[0])
    for i in range(0, n, batch_size):
        yield tuple(t[i:i + batch_size] for t in tensors)
