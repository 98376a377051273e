"""One checkpoint dict per run, written atomically and loaded with ``weights_only=True``.

Layout of the dict (all entries are tensors or plain Python values, so the safe unpickler accepts it)::

    {"format": 1, "version": "0.1.0", "kind": "vae", "step": 1200, "total_steps": 1500,
     "finished": False, "config": {...}, "models": {name: state_dict}, "optimizers": {name: state_dict},
     "schedulers": {name: state_dict}, "history": {key: [float, ...]}, "rng": {...}, "extra": {...}}
"""
from __future__ import annotations

import contextlib
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

import hw3lib

FORMAT = 1
CKPT_NAME = "checkpoint.pt"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create output folder {path.parent}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"output folder {path.parent} is not writable")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file + rename)."""
    payload = {"format": FORMAT, "version": hw3lib.__version__, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def resolve(path: str | Path) -> Path:
    """A run folder or a checkpoint file → the checkpoint file."""
    path = Path(path)
    return path / CKPT_NAME if path.is_dir() or path.suffix != ".pt" else path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely. Anything but tensors and plain containers is refused."""
    file = resolve(path)
    if not file.is_file():
        raise ValueError(f"checkpoint not found: {file}")
    try:
        payload = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the unpickler raises many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"refusing to load {file}: not a safe hw3lib checkpoint ({first[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "models" not in payload:
        raise ValueError(f"{file} is not an hw3lib checkpoint (format {FORMAT})")
    return migrate(payload)


# What the knobs of hw3lib < 0.3 were (module constants then, config fields since): the values every digit-adaptation
# run written before them trained with.
_V02_KNOBS = {"dann": {"gamma": 10.0}, "cdan": {"gamma": 10.0, "entropy": True},
              "mcc": {"temperature": 2.5, "weight": 1.0}, "adamatch": {"tau": 0.9, "ramp": 0.5}}


def migrate(payload: dict[str, Any]) -> dict[str, Any]:
    """An older checkpoint's dict in today's layout (the one place old layouts are known).

    Digit-adaptation runs of hw3lib < 0.3 kept GTA's knobs in ``config["gta"]`` (with its batch, learning rate and
    warm start) and ``gray`` beside it, DANN's and CDAN's λ steepness in ``config["gamma"]``, and the other methods'
    knobs as module constants: they become the shared fields and ``config["knobs"]``. GTA runs of hw3lib < 0.2 fed F
    images in [-1,1], not the public ``Normalize(0.44, 0.19)``."""
    config = payload.get("config")
    if payload.get("kind") not in ("uda", "gta") or not isinstance(config, dict) or "knobs" in config:
        return payload
    config = dict(config)
    gamma, gray, gta = config.pop("gamma", 10.0), config.pop("gray", False), dict(config.pop("gta", None) or {})
    if config.get("method") == "gta":
        gta.setdefault("in_mean", 0.5), gta.setdefault("in_std", 0.5)
        config["batch_size"] = gta.pop("batch_size", 100)
        config["lr"] = gta.pop("lr", 5e-4)
        config["warmup_steps"] = gta.pop("warmup_steps", 0)
        config["knobs"] = {**gta, "gray": bool(gray)}
    else:
        config.setdefault("warmup_steps", 0)
        knobs = _V02_KNOBS.get(config.get("method"), {})
        config["knobs"] = {k: (gamma if k == "gamma" else v) for k, v in knobs.items()}
    return {**payload, "config": config}


def capture_rng() -> dict[str, Any]:
    """RNG states of Python, NumPy and torch as tensors/plain values (safe to unpickle)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": list(random.getstate()[1]) + [random.getstate()[2]],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((3, tuple(int(v) for v in py[:-1]), py[-1]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
