"""Device choice, seeding and deterministic mode: one place, so CPU and CUDA runs behave alike."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def get_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; anything else is passed to ``torch.device``.

    ``HW3_DEVICE`` overrides ``"auto"`` (handy for papermill and CI).
    """
    if isinstance(spec, torch.device):
        return spec
    if spec in (None, "", "auto"):
        spec = os.environ.get("HW3_DEVICE", "auto")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {spec!r} (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool = True) -> None:
    """Deterministic kernels (tests, resume checks). Costs speed on CUDA; a no-op cost on CPU."""
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def describe(device: torch.device) -> str:
    """A human line for reports: ``cuda (NVIDIA H200)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
