"""Run configs as data: the fields that change results, a config's hash and its differences to another, and
configs rebuilt from dicts (a checkpoint's, the command line's) or bound to the data they train on."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, TypeVar

C = TypeVar("C")

# Config fields that change how a run is executed or logged but not what it computes.
EXECUTION_FIELDS = frozenset({"device", "compile", "channels_last", "amp", "progress", "ckpt_every",
                              "sync_bn", "deterministic"})


def config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def config_from(cls: type[C], values: Mapping[str, Any], **fixed: Any) -> C:
    """``cls(**values)`` keeping only ``cls``'s fields (a checkpoint's config dict from an older or newer
    version still loads); ``fixed`` wins over ``values``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in {**values, **fixed}.items() if k in names})


def config_from_args(cls: type[C], args: Any, **fixed: Any) -> C:
    """A config from parsed CLI arguments: every ``cls`` field the command line set (not None), then ``fixed``;
    the rest keep their defaults."""
    return config_from(cls, {k: v for k, v in vars(args).items() if v is not None}, **fixed)


def config_hash(config: Any) -> str:
    """8 hex digits of the fields that change results (the same fields :func:`same_config` compares)."""
    fields = {k: v for k, v in config_dict(config).items() if k not in EXECUTION_FIELDS}
    return hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _flat(config: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting flattened: ``{"knobs": {"tau": 0.9}}`` → ``{"knobs.tau": 0.9}``."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, Mapping) and v:
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def differing_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The fields that change results and differ between two config dicts, sorted (a method's knobs by name:
    ``knobs.temperature``)."""
    a, b = _flat(a), _flat(b)
    return sorted(k for k in (set(a) | set(b)) if k not in EXECUTION_FIELDS and a.get(k) != b.get(k))


def same_config(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal on everything that changes results."""
    return not differing_fields(a, b)


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 4) -> str:
    """``"batch_size 128 → 64, knobs.tau 0.9 → 0.7"``: the fields that change results and differ."""
    keys = differing_fields(old, new)
    if "method" in keys:  # another method's knobs differ as a matter of course: the method says it
        keys = ["method"] + [k for k in keys if k != "method" and not k.startswith("knobs.")]
    old, new = _flat(old), _flat(new)
    parts = [f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in keys[:limit]]
    return ", ".join(parts + ([f"{len(keys) - limit} more"] if len(keys) > limit else []))


def bind_data(config: C, data_root: str | Path, parts: tuple[str, ...]) -> C:
    """``config`` with ``data_id`` naming ``parts`` ("face", digit domains) of ``data_root``
    (:func:`hw3lib.data.data_id`): a run is keyed by the data it trained on as by its knobs, so a finished run on
    other data (embedded vs real, an earlier generator) is never loaded as this data's run."""
    from hw3lib.data import data_id

    return dataclasses.replace(config, data_id=data_id(data_root, tuple(parts)))
