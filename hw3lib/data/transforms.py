"""Batched, on-device image transforms. Data stays uint8 until it reaches the step."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def to_signed(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 [N,C,H,W] in 0..255 → float in [-1, 1] (matches a Tanh output)."""
    x = x.float().div_(127.5).sub_(1.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float → [0, 1] float (for MSE on pixel scale, saving and plotting)."""
    return x.add(1.0).div(2.0).clamp_(0.0, 1.0)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """[N,1,H,W] → [N,3,H,W] by repeating the channel; 3-channel input is returned unchanged."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def to_gray3(x: torch.Tensor) -> torch.Tensor:
    """RGB → luminance (ITU-R 601), repeated to 3 channels. Works on uint8 or float."""
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
    y = (x.float() * w).sum(1, keepdim=True).expand(-1, 3, -1, -1)
    return y.round().to(torch.uint8) if x.dtype == torch.uint8 else y


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of a float batch (e.g. 28→32 px for GTA)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
