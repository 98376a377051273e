"""Differentiable augmentation of the discriminator's inputs (DiffAugment: Zhao, Liu, Lin, Zhu & Han, "Differentiable
Augmentation for Data-Efficient GAN Training", NeurIPS 2020; the authors' ``DiffAugment_pytorch.py``).

The same random transform family is applied to real and to generated images every time D sees them, and it is
differentiable, so G's gradient passes through it: D cannot memorise the few training images, and G is not pushed to
reproduce the augmentations. Images are [N, C, H, W] in [-1, 1] (the generator's Tanh range), any memory layout.

Policies (comma-separated names, applied in this order): ``color`` (brightness, saturation, contrast),
``translation`` (shift by up to 1/8 of the size, zero padding), ``cutout`` (a square of half the size set to zero).
Every draw comes from ``generator``, so a run that is resumed draws what an uninterrupted one would.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One U[0, 1) number per image, shaped [N, 1, 1, 1]."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Brightness + U[-0.5, 0.5), saturation × U[0, 2), contrast × U[0.5, 1.5), per image."""
    x = x + (_uniform(x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x, generator) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def translation(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by integers in [-ratio·H, ratio·H] × [-ratio·W, ratio·W] pixels; uncovered pixels are 0."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=generator, device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=generator, device=x.device)
    # Index into the image padded by one zero pixel: a source index past the border reads the padding.
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx + 1).clamp(0, w + 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)          # [N, H+2, W+2, C]
    return padded[batch, rows, cols].permute(0, 3, 1, 2)          # [N, C, H, W]


def cutout(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero one (ratio·H × ratio·W) square per image, centred anywhere in the image (clipped at the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=generator, device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=generator, device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys >= cy - ch // 2) & (ys < cy - ch // 2 + ch) & (xs >= cx - cw // 2) & (xs < cx - cw // 2 + cw))
    return x * (~inside).unsqueeze(1).to(x.dtype)


_FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` → the names, in :data:`POLICIES` order; ``""`` → none. Unknown names raise."""
    names = {p.strip() for p in policy.split(",") if p.strip()}
    unknown = sorted(names - set(POLICIES))
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown[0]!r} (choose from {', '.join(POLICIES)})")
    return tuple(p for p in POLICIES if p in names)


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` [N, C, H, W] in [-1, 1] through the ``policy``'s transforms (identity for ``""``), differentiably."""
    for name in parse_policy(policy):
        x = _FUNCTIONS[name](x, generator)
    return x
