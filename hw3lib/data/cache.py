"""Decode once: decoded uint8 tensors saved beside the data, keyed by what they were decoded from.

A cache file ``FOLDER/.cache/NAME.pt`` holds ``{"format", "key", "tensors", "meta"}``. ``key`` is a
fingerprint of the index file's bytes (the CSV) and of every listed file's name, size and mtime, so editing,
adding, replacing or touching any of them rebuilds the entry. Files are written atomically
(:func:`hw3lib.checkpoint.atomic_path`) and read with ``torch.load(weights_only=True)``; an unreadable, corrupt
or foreign file is rebuilt silently. When ``FOLDER`` is not writable the cache goes to
``$HW3_CACHE_DIR`` (default ``~/.cache/hw3lib``) under a name derived from the folder's absolute path; when that
fails too, nothing is cached. ``HW3_CACHE=0`` turns caching off.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable

import torch

from hw3lib import settings
from hw3lib.checkpoint import atomic_path

FORMAT = 1
CACHE_DIRNAME = ".cache"

Payload = tuple[dict[str, torch.Tensor], dict]


def enabled() -> bool:
    return settings.CACHE.value


def fingerprint(index: bytes | Iterable[bytes], stats: Iterable[tuple[str, int, int]], extra: str = "") -> str:
    """SHA-256 over the ``index`` bytes (a CSV, a label file), ``extra`` and ``(name, size, mtime_ns)`` per file."""
    h = hashlib.sha256()
    h.update(f"hw3lib-cache-{FORMAT}|{extra}|".encode())
    for chunk in ([index] if isinstance(index, (bytes, bytearray)) else index):
        h.update(hashlib.sha256(chunk).digest())
    for name, size, mtime in stats:
        h.update(f"{name}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()


def file_stats(paths: Iterable[str | Path]) -> list[tuple[str, int, int]]:
    """``(name, size, mtime_ns)`` of each path; ``FileNotFoundError`` names the first missing one."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            raise FileNotFoundError(str(p)) from None
        out.append((os.path.basename(p), st.st_size, st.st_mtime_ns))
    return out


def _fallback_dir(folder: Path) -> Path:
    base = settings.CACHE_DIR.value
    tag = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return base / f"{folder.name}-{tag}"


def _candidates(folder: Path, name: str) -> list[Path]:
    return [folder / CACHE_DIRNAME / f"{name}.pt", _fallback_dir(folder) / f"{name}.pt"]


def _read(file: Path, key: str) -> Payload | None:
    if not file.is_file():
        return None
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file is simply rebuilt
        return None
    if (not isinstance(payload, dict) or payload.get("format") != FORMAT or payload.get("key") != key
            or not isinstance(payload.get("tensors"), dict)
            or not all(isinstance(t, torch.Tensor) for t in payload["tensors"].values())):
        return None
    return payload["tensors"], dict(payload.get("meta") or {})


def _write(file: Path, key: str, tensors: dict[str, torch.Tensor], meta: dict) -> bool:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(file) as tmp:
            torch.save({"format": FORMAT, "key": key, "tensors": tensors, "meta": meta}, tmp)
        return True
    except (OSError, ValueError, RuntimeError):  # read-only folder, full disk: caching is only an optimisation
        return False


def cached(folder: str | Path, name: str, key: str, build: Callable[[], Payload]) -> Payload:
    """``build()``'s ``(tensors, meta)``, from ``folder``'s cache when ``key`` matches, else built and stored."""
    folder = Path(folder)
    if not enabled():
        return build()
    files = _candidates(folder, name)
    for file in files:
        hit = _read(file, key)
        if hit is not None:
            return hit
    tensors, meta = build()
    for file in files:
        if _write(file, key, tensors, meta):
            break
    return tensors, meta


def location(folder: str | Path, name: str) -> Path | None:
    """Where the cache entry ``name`` of ``folder`` currently lives (``None`` when there is none)."""
    for file in _candidates(Path(folder), name):
        if file.is_file():
            return file
    return None
