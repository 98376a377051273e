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


# How every digit image that is not 28x28 becomes 28x28 (course-layout PNGs, torchvision files, `hw3 predict`).
# Part of the data id (hw3lib.data.data_id) of resized data: a change here keys new runs apart.
RESAMPLING = "antialiased bilinear, torchvision resize"


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N,C,h,w] (C = 1 or 3) → uint8 [N,3,size,size]: :data:`RESAMPLING`, grey repeated to 3 channels.

    ``torchvision.transforms.v2.functional.resize(antialias=True)``: bilinear, with the kernel widened by the
    scale factor when shrinking (32→28 averages neighbours instead of skipping rows, as PIL does); growing
    (16→28) is plain bilinear. Already ``size``×``size`` input is returned as is.
    """
    from torchvision.transforms.v2 import functional as TF

    if x.shape[-2:] != (size, size):
        x = TF.resize(x, [size, size], antialias=True)
    return to_rgb(x).contiguous()


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of a float batch (e.g. 28→32 px for GTA)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def random_affine(x: torch.Tensor, *, degrees: float = 15.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1), shear: float = 10.0) -> torch.Tensor:
    """A random affine warp per image of a float batch [N,C,H,W] (border pixels repeat, so coloured backgrounds
    stay coloured); angles in degrees, ``translate`` as a fraction of the image size. Draws from torch's RNG."""
    n, dev = len(x), x.device
    u = lambda lo, hi: torch.empty(n, device=dev).uniform_(lo, hi)  # noqa: E731
    rot, sh = torch.deg2rad(u(-degrees, degrees)), torch.deg2rad(u(-shear, shear))
    s = u(*scale)
    cos, sin = torch.cos(rot), torch.sin(rot)
    theta = torch.stack([torch.stack([cos / s, (-sin + torch.tan(sh) * cos) / s, u(-translate, translate) * 2], 1),
                         torch.stack([sin / s, (cos + torch.tan(sh) * sin) / s, u(-translate, translate) * 2], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def weak_view(x: torch.Tensor) -> torch.Tensor:
    """FixMatch's weak augmentation for digits: a small random shift (±2 px of 28), [-1,1] floats in, out."""
    return random_affine(x, degrees=0.0, translate=2 / 28, scale=(1.0, 1.0), shear=0.0)


def strong_view(x: torch.Tensor, *, invert: float = 0.5, cutout: int = 8) -> torch.Tensor:
    """A strong augmentation for digits (RandAugment-like, applied on the device): random affine warp, per-image
    contrast and brightness, colour inversion with probability ``invert`` and one ``cutout``×``cutout`` hole.
    [-1,1] floats [N,C,H,W] in, out."""
    n, dev = len(x), x.device
    y = random_affine(x)
    contrast = torch.empty(n, 1, 1, 1, device=dev).uniform_(0.5, 1.5)
    bright = torch.empty(n, 1, 1, 1, device=dev).uniform_(-0.3, 0.3)
    mean = y.mean((1, 2, 3), keepdim=True)
    y = ((y - mean) * contrast + mean + bright).clamp(-1.0, 1.0)
    flip = (torch.rand(n, 1, 1, 1, device=dev) < invert).to(y.dtype)
    y = y * (1 - 2 * flip)
    if cutout:
        h, w = y.shape[-2:]
        cy = torch.randint(0, h, (n, 1, 1), device=dev)
        cx = torch.randint(0, w, (n, 1, 1), device=dev)
        rows = torch.arange(h, device=dev).view(1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, w)
        hole = ((rows - cy).abs() <= cutout // 2) & ((cols - cx).abs() <= cutout // 2)
        y = y.masked_fill(hole[:, None], 0.0)
    return y
