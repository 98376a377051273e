"""Problem 3: DANN (Ganin & Lempitsky, ICML 2015) on the course's digit pairs, between the two bounds.

Runs: per course pair and seed, the registry's bounds and baseline (:func:`methods_trained`: source-only, DANN,
target-only — their role in :mod:`hw3lib.methods`, not a list written here) on the shared recipe, under
``run_dir/{method}_{src}_{tgt}_s{seed}``; Problem 4 reads the same runs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

from hw3lib import methods
from hw3lib.problems import headline as hl
from hw3lib.problems.base import (Handin, Params as _Params, PlannedRun, Problem, Where, register, seeds_of,
                                  uda_run)

KEY = "p3_dann"


@dataclass
class Params(_Params):
    """The notebook's parameters cell (``notebooks/p3_dann.ipynb``): the same names and defaults."""
    DATA = "digits"
    run_dir: str = "runs/quick/p3_dann"
    seeds: list = field(default_factory=lambda: [0])
    steps: int = 400
    epochs: float = 0.0
    batch_size: int = 64
    lr: float = 0.001
    optimizer: str = "adam"
    bn: str = "separate"
    evals: int = 5
    tsne_per_domain: int = 300

    def ready(self):
        return dataclasses.replace(super().ready(), seeds=seeds_of(self))


def methods_trained() -> list[str]:
    """The methods Problem 3 trains: the registry's bounds and baseline, in table order."""
    return list(methods.bounds_and_baseline())


def base_config(p: Params):
    """The recipe every run of Problem 3 shares."""
    from hw3lib.train.uda import UDAConfig

    return UDAConfig(steps=p.steps, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, optimizer=p.optimizer, bn=p.bn,
                     evals=p.evals, device=p.device)


Key = tuple[str, str, str, int]  # (method, source, target, seed)


def course_configs(base, names: Iterable[str], seeds: Iterable[int], run_root: str | Path, *,
                   knobs: Mapping[str, Any] | None = None) -> list[tuple[Key, Any, Path]]:
    """``(key, config, folder)`` of each method on each course pair and seed, in that order, under
    ``run_root/{method}_{src}_{tgt}_s{seed}`` (``knobs``: per method, those that differ from its defaults)."""
    from hw3lib.data.layout import UDA_PAIRS

    out = []
    for src, tgt in UDA_PAIRS:
        for method in names:
            for seed in seeds:
                cfg = base.for_method(method, (knobs or {}).get(method), source=src, target=tgt, seed=int(seed))
                out.append(((method, src, tgt, int(seed)), cfg, Path(run_root) / cfg.name))
    return out


def configs(p: Params) -> list[tuple[Key, Any, Path]]:
    return course_configs(base_config(p), methods_trained(), seeds_of(p), p.run_dir)


def runs(p: Params, where: Where) -> list[PlannedRun]:
    return [uda_run(KEY, cfg, folder, where) for _, cfg, folder in configs(p)]


class Runs(NamedTuple):
    base: Any                 # the shared recipe (UDAConfig)
    methods: list[str]        # source-only, dann, target-only
    results: dict             # (method, source, target, seed) → UDAResult


def train_or_load(p: Params) -> Runs:
    """Problem 3's runs (those :func:`runs` plans), trained, or loaded when finished."""
    from hw3lib.train.uda.runs import train_or_load as uda_train_or_load

    results = {key: uda_train_or_load(cfg, p.data_dir, folder) for key, cfg, folder in configs(p)}
    return Runs(base_config(p), methods_trained(), results)


def headline(m: Mapping[str, Any]) -> hl.Lines:
    """The report's first-page lines for this problem's ``metrics.json`` (:mod:`hw3lib.problems.headline`)."""
    acc, ref = m["target_accuracy"], m.get("reference_course_report") or {}
    trained = methods_trained()  # source-only, DANN, target-only: the registry's bounds and baseline
    run, course = [], []
    for k in hl.pairs(acc):
        run.append(f"{hl.pair(k)}: " + " · ".join(hl.mean(acc.get(x, {}).get(k)) for x in trained))
        if all(k in ref.get(x, {}) for x in trained):
            course.append(f"{hl.pair(k)}: " + " · ".join(f"{ref[x][k]:.2f}" for x in trained))
    head = f"source-only · DANN · target-only, {hl.n_note(acc)}"
    return [head, *run], (["course report, real data:", *course] if course else ["no course-report figures"])


PROBLEM = register(Problem(KEY, "Problem 3: DANN", 3, Params, runs,
                           Handin("DANN", "digits", "DANN predictions for a folder of digits",
                                  method=methods.baseline()),
                           headline=headline))
