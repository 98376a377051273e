"""In-memory data sets: decoded once into uint8 tensors, shared by every loop, notebook and metric."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FaceSet:
    """Faces of one split. ``images``: uint8 [N,3,64,64]; ``attrs``: uint8 [N,A] in {0,1}."""
    images: torch.Tensor
    attrs: torch.Tensor
    names: tuple[str, ...]
    attr_names: tuple[str, ...]
    source: str = "course"          # "embedded" (hw3 data make), "course" (hw3_data layout) or "celeba"

    def __len__(self) -> int:
        return len(self.images)

    def attr(self, name: str) -> torch.Tensor:
        """One attribute column as uint8 [N]."""
        if name not in self.attr_names:
            raise ValueError(f"unknown face attribute {name!r}; known: {', '.join(self.attr_names)}")
        return self.attrs[:, self.attr_names.index(name)]


@dataclass(frozen=True)
class DigitSet:
    """Digits of one domain and split. ``images``: uint8 [N,3,28,28] (grayscale repeated); ``labels``: int64 [N]."""
    images: torch.Tensor
    labels: torch.Tensor
    names: tuple[str, ...]
    domain: str
    source: str = "course"

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: torch.Tensor) -> "DigitSet":
        """The rows ``index`` (int64 [M]) of this set, in that order."""
        idx = index.to(self.images.device)
        return DigitSet(self.images[idx], self.labels[idx.to(self.labels.device)],
                        tuple(self.names[i] for i in index.tolist()), self.domain, self.source)
