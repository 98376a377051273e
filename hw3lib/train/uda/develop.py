"""The development protocol of Problem 4: which method to hand in for a course pair, and its knobs, chosen on a
task whose labels may be used — never on that pair's target.

For a course pair S → T the development task is S → X, X the third domain (usps → mnistm develops on usps → svhn,
mnistm → svhn on mnistm → usps, svhn → usps on svhn → mnistm). Each candidate — DANN or a method on the shared
recipe, with its paper's knobs or one knob moved to another value of its declared grid (``Method.grid``: one knob at
a time, written in the method's file before any run) — trains on S → X with the pair's recipe, adapting to X's
train images less a held-out labelled development split (``UDAConfig.holdout``: 1000 images, at most half of X's
train images; :func:`hw3lib.train.uda.runs.development_split`). Its unsupervised validator picks the checkpoint
within the run as always; that checkpoint's accuracy on the development split is the candidate's score, averaged
over the development seeds (the notebook's ``dev_seeds``: two, since one seed's choice depended on the seed,
docs/NOTES.md). The best-scoring candidate of each pair is what Problem 4 hands in for S → T (ties: the
earlier candidate, DANN first). No label of T and no test split of any domain is read; the course data gives train
labels for every domain, so a student runs the same protocol on it.

Across methods nothing is chosen by an unsupervised score (they rank checkpoints of one objective, not objectives:
``hw3lib.eval.improved.label_free_choice`` shows what that would cost). GTA is not a candidate: it trains on a recipe
of its own (the public code's budget, batch and lr), which the development tasks would have to repeat.

The choices are a plain dict (``choices.json`` beside the runs): the protocol (holdout, seeds, recipe, candidates)
and per pair the development task, its data's id (of S and X only), every candidate's scores and the choice. Choices
recorded on the same data with the same protocol are loaded instead of run again (:func:`choose`), never those of
other data. Developing for S → T opens no file of T and no test split: ``tests/test_develop.py`` removes them.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from hw3lib import methods
from hw3lib.data import data_id, digits
from hw3lib.data.layout import DIGIT_DOMAINS, UDA_PAIRS
from hw3lib.train.uda.config import UDAConfig
from hw3lib.train.uda.runs import train_or_load

HOLDOUT = 1000   # labelled development images held out of X's train images (at most half of them)
VERSION = 1
# The recipe fields a recorded choice must share with this run's to be reused.
RECIPE_FIELDS = ("steps", "epochs", "batch_size", "lr", "optimizer", "bn", "bn_eval", "warmup_steps", "evals")


def development_task(source: str, target: str) -> tuple[str, str]:
    """``(source, X)``: the course pair's development task, X the domain that is neither ``source`` nor ``target``."""
    (third,) = [d for d in DIGIT_DOMAINS if d not in (source, target)]
    return source, third


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A method and the knobs that differ from its paper's values (none: its defaults)."""
    method: str
    knobs: tuple[tuple[str, Any], ...] = ()

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.knobs)

    @property
    def tag(self) -> str:
        """Run-folder suffix: ``""`` for the defaults, ``"-tau0.8"`` for a grid point."""
        return "".join(f"-{k}{v:g}" if isinstance(v, float) else f"-{k}{v}" for k, v in self.knobs)

    @property
    def label(self) -> str:
        spec = methods.get(self.method)
        return spec.label + "".join(f", {k} = {v}" for k, v in self.knobs)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "knobs": self.overrides, "label": self.label}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Candidate":
        return cls(str(d["method"]), tuple(sorted((d.get("knobs") or {}).items())))


def candidates(names: Iterable[str], grid: bool = True) -> list[Candidate]:
    """Each method with its paper's knobs, then (``grid``) each value of its grid that differs from them, one knob
    at a time."""
    out = []
    for name in names:
        spec = methods.get(name)
        defaults = dataclasses.asdict(spec.knobs())
        out.append(Candidate(name))
        for knob, values in (spec.grid.items() if grid else ()):
            out += [Candidate(name, ((knob, v),)) for v in values if v != defaults[knob]]
    return out


def compared(names: Iterable[str], compare: Iterable[str] | None = None) -> list[str]:
    """Of the candidate methods ``names``, those Problem 4 also trains on the course pairs for its comparison table
    (its ``compare`` parameter; empty: all). The development protocol weighs every candidate either way; a hand-in
    method left out of the comparison is trained for the hand-in alone."""
    keep = set(compare or ())
    return [n for n in names if n in keep] if keep else list(names)


def candidate_config(base: UDAConfig, cand: Candidate, source: str, target: str, seed: int, *,
                     holdout: int = 0, knobs: Mapping[str, Any] | None = None) -> UDAConfig:
    """``base``'s recipe for ``cand`` on ``source → target``; ``knobs``: the profile's knobs of that method, under
    the candidate's own."""
    return base.for_method(cand.method, {**(knobs or {}), **cand.overrides}, source=source, target=target,
                           seed=int(seed), holdout=holdout)


def run_folder(run_root: str | Path, cfg: UDAConfig, cand: Candidate) -> Path:
    """Where a development run lives: ``RUN_ROOT/dev/{method}_{S}_{X}_s{seed}{tag}``."""
    return Path(run_root) / "dev" / f"{cfg.name}{cand.tag}"


def _recipe(base: UDAConfig) -> dict[str, Any]:
    return {k: getattr(base, k) for k in RECIPE_FIELDS}


def protocol(base: UDAConfig, names: Iterable[str], seeds: Iterable[int], holdout: int = HOLDOUT,
             knobs: Mapping[str, Mapping[str, Any]] | None = None, grid: bool = True) -> dict[str, Any]:
    """What a choice depends on besides the data: holdout, seeds, recipe, candidates (with the profile's knobs)."""
    return {"holdout": int(holdout), "seeds": [int(s) for s in seeds], "recipe": _recipe(base),
            "candidates": [c.as_dict() for c in candidates(names, grid)],
            "knobs": {m: dict(v) for m, v in (knobs or {}).items()}}


def develop(base: UDAConfig, data_root: str | Path, run_root: str | Path, *, names: Iterable[str],
            pairs: Iterable[tuple[str, str]] = UDA_PAIRS, seeds: Iterable[int] = (0,), holdout: int = HOLDOUT,
            knobs: Mapping[str, Mapping[str, Any]] | None = None, grid: bool = True) -> dict[str, Any]:
    """Train (or load) every candidate on every pair's development task and choose; returns the choices dict."""
    names, seeds, knobs = list(names), [int(s) for s in seeds], dict(knobs or {})
    cands = candidates(names, grid)
    record = {"version": VERSION, "protocol": protocol(base, names, seeds, holdout, knobs, grid), "pairs": {}}
    for src, tgt in pairs:
        dev_src, x = development_task(src, tgt)
        scores = []
        for cand in cands:
            values = []
            for seed in seeds:
                cfg = candidate_config(base, cand, dev_src, x, seed, holdout=holdout, knobs=knobs.get(cand.method))
                values.append(round(float(train_or_load(cfg, data_root, run_folder(run_root, cfg, cand))
                                         .metrics["target_acc"]), 2))
            scores.append({**cand.as_dict(), "values": values, "accuracy": round(float(np.mean(values)), 2)})
        best = max(range(len(scores)), key=lambda i: (scores[i]["accuracy"], -i))
        held_out = min(holdout, len(digits(data_root, x, "train")) // 2)  # development_split's count
        record["pairs"][f"{src}_{tgt}"] = {"development_task": f"{dev_src}_{x}", "held_out": held_out,
                                           "data_id": data_id(data_root, (dev_src, x)), "scores": scores,
                                           "choice": {k: scores[best][k] for k in ("method", "knobs", "label")}}
    return record


def matches(record: Mapping[str, Any], data_root: str | Path, proto: Mapping[str, Any],
            pairs: Iterable[tuple[str, str]]) -> bool:
    """Whether a recorded choice holds ``pairs``, each made on this data (its development task's data id) with
    this protocol."""
    if record.get("version") != VERSION or record.get("protocol") != json.loads(json.dumps(proto)):
        return False
    for src, tgt in pairs:
        entry = (record.get("pairs") or {}).get(f"{src}_{tgt}")
        if not entry or entry.get("data_id") != data_id(data_root, development_task(src, tgt)):
            return False
    return True


def recorded(files: Iterable[str | Path], data_root: str | Path, proto: Mapping[str, Any],
             pairs: Iterable[tuple[str, str]] = UDA_PAIRS) -> tuple[dict[str, Any], Path] | None:
    """The first of ``files`` whose choices for ``pairs`` were made on this data with this protocol, and its path."""
    pairs = [tuple(p) for p in pairs]
    for f in files:
        try:
            record = json.loads(Path(f).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and matches(record, data_root, proto, pairs):
            return record, Path(f)
    return None


def choose(base: UDAConfig, data_root: str | Path, run_root: str | Path, *, names: Iterable[str],
           pairs: Iterable[tuple[str, str]] = UDA_PAIRS, seeds: Iterable[int] = (0,), holdout: int = HOLDOUT,
           knobs: Mapping[str, Mapping[str, Any]] | None = None, grid: bool = True,
           recorded_files: Iterable[str | Path] = ()) -> tuple[dict[str, Any], str]:
    """The choices for ``pairs``: recorded ones made on this data with this protocol (``recorded_files``, e.g. the
    shipped quick-profile choices, then ``run_root/choices.json``), else :func:`develop` here. Returns the choices
    and where they come from (``"recorded in FILE"`` or ``"developed here"``); writes ``run_root/choices.json``."""
    from hw3lib.checkpoint import atomic_write_text

    names, pairs = list(names), [tuple(p) for p in pairs]
    proto = protocol(base, names, seeds, holdout, knobs, grid)
    found = recorded([*recorded_files, Path(run_root) / "choices.json"], data_root, proto, pairs)
    if found is not None:
        record, where = found[0], f"recorded in {found[1]}"
    else:
        record = develop(base, data_root, run_root, names=names, pairs=pairs, seeds=seeds, holdout=holdout,
                         knobs=knobs, grid=grid)
        where = "developed here"
    atomic_write_text(Path(run_root) / "choices.json", json.dumps(record, indent=1))
    return record, where


def choice(record: Mapping[str, Any], source: str, target: str) -> Candidate:
    """The candidate ``record`` chose for ``source → target``; a pair it has no choice for is a ``ValueError``."""
    pair = (record.get("pairs") or {}).get(f"{source}_{target}")
    if not pair:
        raise ValueError(f"the choices hold no choice for {source} → {target} (pairs: "
                         f"{', '.join(record.get('pairs') or {}) or 'none'})")
    return Candidate.from_dict(pair["choice"])


def handin_runs(record: Mapping[str, Any], base: UDAConfig, data_root: str | Path, run_root: str | Path, *,
                seeds: Iterable[int] = (0,), knobs: Mapping[str, Mapping[str, Any]] | None = None,
                existing: Mapping[tuple[str, str, str, int], Any] | None = None) -> dict[tuple[str, str, str, int], Any]:
    """Per course pair of ``record`` and seed, the run of its chosen candidate on that pair: the run of the
    comparison (``existing``, keyed ``(method, src, tgt, seed)``) when the choice is a method with its default
    knobs, else trained (or loaded) under ``run_root/{method}_{src}_{tgt}_s{seed}{tag}``. Keys
    ``("hand-in", src, tgt, seed)``."""
    knobs, existing, out = dict(knobs or {}), dict(existing or {}), {}
    for key in record.get("pairs") or {}:
        src, tgt = key.split("_", 1)
        cand = choice(record, src, tgt)
        for seed in seeds:
            if not cand.knobs and (cand.method, src, tgt, int(seed)) in existing:
                out[("hand-in", src, tgt, int(seed))] = existing[(cand.method, src, tgt, int(seed))]
                continue
            cfg = candidate_config(base, cand, src, tgt, seed, knobs=knobs.get(cand.method))
            out[("hand-in", src, tgt, int(seed))] = train_or_load(cfg, data_root,
                                                                 Path(run_root) / f"{cfg.name}{cand.tag}")
    return out
