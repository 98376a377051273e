"""Random in-memory data sets for step-level tests (no files): uint8 images with the real shapes and labels; and
:func:`plain_sgd`, which trains with plain SGD in place of Adam so that two runs' weight changes compare tightly."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from hw3lib.data.layout import FACE_ATTRIBUTES
from hw3lib.data.sets import DigitSet, FaceSet


def faces(n: int = 16, device: torch.device | str = "cpu") -> FaceSet:
    """``n`` random 64x64 faces with random attributes (images on ``device``)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g)
    attrs = torch.randint(0, 2, (n, len(FACE_ATTRIBUTES)), dtype=torch.uint8, generator=g)
    return FaceSet(images.to(device), attrs, tuple(f"{i:05d}.png" for i in range(n)), FACE_ATTRIBUTES, "embedded")


def digits(domain: str, n: int = 32, seed: int = 0, device: torch.device | str = "cpu") -> DigitSet:
    """``n`` random 28x28 digit images of ``domain`` with labels 0..9 in turn (on ``device``)."""
    g = torch.Generator().manual_seed(seed)
    return DigitSet(torch.randint(0, 256, (n, 3, 28, 28), dtype=torch.uint8, generator=g).to(device),
                    (torch.arange(n) % 10).to(device), tuple(f"{i}.png" for i in range(n)), domain, "embedded")


def fit(config, source: DigitSet, target: DigitSet, target_test: DigitSet | None = None, run_dir=None,
        runtime=None):
    """Train a UDA config on in-memory digit sets (:func:`hw3lib.train.uda.train_on`); returns the UDAResult."""
    from hw3lib.runtime import Runtime
    from hw3lib.train.uda import Domains, train_on

    runtime = runtime or Runtime.for_config(config)
    test = target_test if target_test is not None else digits(target.domain, 8, seed=99, device=runtime.device)
    source_val = digits(source.domain, 8, seed=98, device=runtime.device)
    return train_on(config, Domains(source, target, test, source_val), run_dir, runtime=runtime)


@contextlib.contextmanager
def plain_sgd() -> Iterator[Callable[[], list[list[torch.Tensor]]]]:
    """Every ``torch.optim.Adam`` built in the block is plain SGD at the same rate (no momentum, no
    normalisation), so a weight's change is -lr times its summed gradients and two runs' changes compare as tightly
    as their gradients (Adam turns rounding noise in a tiny gradient into a ±lr move). Yields a function that
    returns each such optimiser's parameter changes so far (one tensor per parameter), in the order the optimisers
    were built."""
    built = []

    class SGD(torch.optim.SGD):
        def __init__(self, params, lr=1e-3, **_adam_options):
            super().__init__(params, lr=lr)
            self.start = [p.detach().clone() for g in self.param_groups for p in g["params"]]
            built.append(self)

    def changes() -> list[list[torch.Tensor]]:
        return [[p.detach() - s for p, s in zip((p for g in o.param_groups for p in g["params"]), o.start)]
                for o in built]

    adam = torch.optim.Adam
    torch.optim.Adam = SGD
    try:
        yield changes
    finally:
        torch.optim.Adam = adam
