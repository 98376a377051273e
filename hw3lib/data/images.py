"""Image batches to files: one grid saver for every figure and CLI that writes faces."""
from __future__ import annotations

from pathlib import Path

import torch

from hw3lib.checkpoint import atomic_path


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Write [N,3,H,W] images — uint8 0..255 or float in [0, 1] — as one PNG grid of ``nrow`` per row with
    torchvision's 2-px padding (``torchvision.utils.save_image``). The file appears atomically: a reader never
    sees a half-written PNG, and a failed write leaves the old one."""
    from torchvision.utils import save_image

    x = images.float().div(255) if images.dtype == torch.uint8 else images
    path = Path(path)
    with atomic_path(path) as tmp:
        save_image(x, tmp, nrow=nrow, padding=2, format="png")
    return path
