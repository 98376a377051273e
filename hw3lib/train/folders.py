"""Run folders: which folder holds a run of a config, whether it holds a finished one, and train-or-load.

A folder holds one config. A changed notebook parameter trains beside the old run (``NAME-<config hash>``); the
command line's explicit ``--out`` refuses a folder that holds another config (:class:`hw3lib.train.loop.RunConflict`).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

from tqdm.auto import tqdm

from hw3lib import checkpoint
from hw3lib.train.configs import config_diff, config_dict, config_hash, same_config
from hw3lib.train.loop import progress_enabled

T = TypeVar("T")


def config_folder(run_dir: str | Path | None, kind: str, config: Any, *, say: bool = True) -> Path | None:
    """Where a run of ``config`` lives: ``run_dir`` when it is empty or holds this config's run (finished or
    not), else the sibling ``run_dir-<config_hash>`` (said once on stderr). A folder holds one config; a changed
    notebook parameter trains beside the old run instead of over it."""
    if run_dir is None:
        return None
    run_dir = Path(run_dir)
    file = checkpoint.resolve(run_dir)
    if not file.is_file() or matching_checkpoint(run_dir, kind, config) is not None:
        return run_dir
    other = run_dir.with_name(f"{run_dir.name}-{config_hash(config)}")
    if say and progress_enabled():
        diff = config_diff(checkpoint.load(file).get("config") or {}, config_dict(config))
        tqdm.write(f"{run_dir} holds a run of another config ({diff}); this one uses {other}", file=sys.stderr)
    return other


def train_or_load(kind: str, config: Any, run_dir: str | Path | None, *,
                  train: Callable[[], T], load: Callable[[dict[str, Any]], T]) -> T:
    """``load(payload)`` of the finished ``kind`` run with the same config in ``run_dir``, else ``train()``
    (which resumes an unfinished one). Every family's ``train_or_load`` is this with its own two callables."""
    payload = finished_checkpoint(run_dir, kind, config)
    if payload is None:
        return train()
    if progress_enabled():
        tqdm.write(f"using the finished {kind} run in {run_dir}", file=sys.stderr)
    return load(payload)


def matching_checkpoint(run_dir: str | Path | None, kind: str, config: Any) -> dict[str, Any] | None:
    """The checkpoint in ``run_dir`` if it is a ``kind`` run (finished or not) with the same config, else None."""
    if run_dir is None:
        return None
    file = checkpoint.resolve(run_dir)
    if not file.is_file():
        return None
    payload = checkpoint.load(file)
    if payload.get("kind") == kind and same_config(payload.get("config") or {}, config_dict(config)):
        return payload
    return None


def finished_checkpoint(run_dir: str | Path | None, kind: str, config: Any) -> dict[str, Any] | None:
    """The checkpoint in ``run_dir`` if it is a finished ``kind`` run with the same config, else None."""
    payload = matching_checkpoint(run_dir, kind, config)
    return payload if payload is not None and payload.get("finished") else None




def finished_config(run_dir: str | Path | None, kind: str) -> dict[str, Any] | None:
    """The config dict of the finished ``kind`` run in ``run_dir``, whatever its config, else None (for reusing
    another notebook's run as it is: Problem 2 compares with Problem 1's VAE, Problem 4 with Problem 3's runs)."""
    if run_dir is None:
        return None
    file = checkpoint.resolve(run_dir)
    if not file.is_file():
        return None
    try:
        payload = checkpoint.load(file)
    except ValueError:
        return None
    return dict(payload["config"]) if payload.get("kind") == kind and payload.get("finished") else None
