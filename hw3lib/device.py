"""Device choice, seeding and deterministic mode: one place, so CPU and CUDA runs behave alike."""
from __future__ import annotations

import ctypes
import os
import platform
import random

import numpy as np
import torch

from hw3lib import settings


def get_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; anything else is passed to ``torch.device``.

    ``HW3_DEVICE`` overrides ``"auto"`` (handy for papermill and CI). Also applies :func:`tune_allocator`.
    """
    tune_allocator()
    return _resolve(spec)


def _resolve(spec: str | torch.device | None) -> torch.device:
    if isinstance(spec, torch.device):
        return spec
    if spec in (None, "", "auto"):
        spec = settings.DEVICE.value
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {spec!r} (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available")
    return device


# glibc mallopt(3) parameters.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_TUNED: bool | None = None


def tune_allocator() -> bool:
    """Make glibc keep freed memory in the process, so activation tensors stop being page-faulted in every step.

    By default glibc hands every large block (≥ 128 KiB, adaptively up to 32 MiB) to ``mmap`` and gives freed
    heap tops back to the kernel; a training step then re-faults each activation tensor page by page, and each
    fault is expensive under a hypervisor (measurements: ``docs/NOTES.md``). This is what the jemalloc /
    tcmalloc advice in PyTorch's CPU tuning guide buys, without a preload: ``mallopt(M_MMAP_MAX, 0)`` (heap
    only) and ``M_TRIM_THRESHOLD`` at its maximum. The cost: memory freed by the process is reused by it rather
    than returned to the system.

    Idempotent; a no-op off glibc or when ``HW3_MALLOC=system``. Returns whether the tuning is in effect.
    Numerics are unaffected (only where memory comes from changes).
    """
    global _TUNED
    if _TUNED is not None:
        return _TUNED
    if settings.MALLOC.value == "system" or platform.libc_ver()[0] != "glibc":
        return False  # not cached: the benchmark measures the reference untuned, then tunes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc always has it
        _TUNED = False
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _TUNED = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _TUNED


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


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none: macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_isa(flags: frozenset[str] | None = None) -> str:
    """The widest vector instruction set of the CPU, with its bf16 support: ``AMX (amx_bf16)``,
    ``AVX-512 with avx512_bf16``, ``AVX-512``, ``AVX2``, else the machine name (``aarch64``...)."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "AMX (amx_bf16)"
    if "avx512f" in flags:
        return "AVX-512 with avx512_bf16" if "avx512_bf16" in flags else "AVX-512"
    return "AVX2" if "avx2" in flags else platform.machine() or "unknown"


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """Native bf16 arithmetic on the CPU (``avx512_bf16`` dot products or AMX tiles)."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def describe(device: torch.device) -> str:
    """A human line for reports: ``cuda (NVIDIA H200)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'s' if n != 1 else ''})"


AMP_MODES = ("auto", "bf16", "off")
AMP_HELP = "autocast of the forward passes: auto (bf16 on CUDA, float32 on CPU), bf16, off (default auto)"


def amp_dtype(amp: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of a training step: ``"auto"`` → bfloat16 on a CUDA device that supports it, none on
    the CPU (AVX2 cores have no bf16 arithmetic, so it would only add casts); ``"bf16"`` → bfloat16 anywhere
    (CPU autocast too: tests use it); ``"off"`` → none (plain float32).

    bf16 keeps float32's exponent range, so no loss scaling is needed (unlike fp16, not offered here).
    """
    if amp not in AMP_MODES:
        raise ValueError(f"unknown amp mode {amp!r}; known: {', '.join(AMP_MODES)}")
    device = torch.device(device)
    if amp == "off":
        return None
    if amp == "auto":
        ok = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if ok else None
    return torch.bfloat16


def autocast(device: torch.device | str, amp: str = "auto") -> torch.autocast:
    """``torch.autocast`` for a training step's forward passes on ``device`` (see :func:`amp_dtype`); disabled
    when the mode resolves to float32. Losses are computed in float32 outside it (the loss functions cast)."""
    device = torch.device(device)
    dtype = amp_dtype(amp, device)
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)
