"""The development protocol of Problem 4: which method to hand in for a course pair, and its knobs, chosen on a
task whose labels may be used — never on that pair's target.

For a course pair S → T the development task is S → X, X the third domain (usps → mnistm develops on usps → svhn,
mnistm → svhn on mnistm → usps, svhn → usps on svhn → mnistm). With more domains registered
(:mod:`hw3lib.data.domains`) S → T develops on every S → X, X neither S nor T, and averages (:func:`averaged`).
Each candidate — DANN or a method on the shared
recipe, with its paper's knobs or one knob moved to another value of its declared grid (``Method.grid``: one knob at
a time, written in the method's file before any run) — trains on S → X with the pair's recipe, adapting to X's
train images less a held-out labelled development split (``UDAConfig.holdout``: 1000 images, at most half of X's
train images; :func:`hw3lib.train.uda.runs.development_split`). Its unsupervised validator picks the checkpoint
within the run as always; that checkpoint's accuracy on the development split is the candidate's score, averaged
over the development seeds (the notebook's ``dev_seeds``: two, since one seed's choice depended on the seed,
docs/NOTES.md). What Problem 4 hands in for S → T is built from these scores (below). No label of T and no test
split of any domain is read; the course data gives train labels for every domain, so a student runs the same
protocol on it.

**The hand-in is an ensemble of methods, not an arg-max** (Hu et al., "Towards Ensemble-based Model Selection for
UDA", NeurIPS 2024: no single arg-max over noisy scores avoids worst-case picks). On each task the methods are ranked
by their best candidate's score, and the hand-in is the mean-probability ensemble of the ``HANDIN_METHODS`` (4) best,
each at its best candidate's knobs (:func:`handin`). The rule was chosen among nine on the development tasks alone,
by how well a choice made on one task scores on another (docs/NOTES.md, ``benchmarks/handin_rules.py``): picking
the best candidate, or the best of it and the ensembles of the 2–3 best candidates (mostly knob variants of one
method, which fail together), transferred worst. The ensemble is scored on the task's held-out split as the mean of
its members' probabilities, each at its validator's pick among the checkpoints it reached (a member the halving
stopped: at its rung); its members are trained on the course pair (the comparison's and Problem 3's runs when they
are among them).

**Successive halving** (Jamieson & Talwalkar, AISTATS 2016; the rule and its simulation on the exhaustive runs:
docs/NOTES.md). The rungs are checkpoints the runs score anyway (``RUNGS``): at each, a candidate's score is the
held-out accuracy of the checkpoint its validator picks among those scored so far (mean over the seeds), and only the
best share goes on. A stopped run keeps an unfinished checkpoint at its rung (:func:`hw3lib.train.loop.pause_at`:
no config changes), so a promoted run ends bit-identical to one trained in one go, and the pool trains the rungs in
parallel (:func:`next_steps`).

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

import math

import numpy as np
import torch

from hw3lib import methods
from hw3lib.data import data_id, digits
from hw3lib.data.layout import DIGIT_DOMAINS, UDA_PAIRS
from hw3lib.models.validators import PRIMARY, pick
from hw3lib.train.uda.config import UDAConfig
from hw3lib.train.uda.runs import mean_probabilities, target_sets, train_or_load

HOLDOUT = 1000   # labelled development images held out of X's train images (at most half of them)
VERSION = 3      # 2: ensembles as candidates, successive halving (#38); 3: the hand-in is the 4 best methods' ensemble
# The hand-in: the ensemble of this many best methods of a task (rule "methods-4", chosen on the development tasks
# alone before any course pair's run was read for it: docs/NOTES.md)
HANDIN_METHODS = 4
MIN_KEPT = 3     # the successive halving never keeps fewer candidates than this at a rung (rule A: docs/NOTES.md)
# Successive halving: (scored checkpoint, share of the candidates that goes on) — 16 candidates: 6 after the first
# of 5 checkpoints, 3 after the second (38.75 % of the exhaustive steps; the rule and its simulation: docs/NOTES.md)
RUNGS = ((1, 3 / 8), (2, 3 / 16))
# The recipe fields a recorded choice must share with this run's to be reused.
RECIPE_FIELDS = ("steps", "epochs", "batch_size", "lr", "optimizer", "bn", "bn_eval", "warmup_steps", "evals")


def development_tasks(source: str, target: str) -> list[tuple[str, str]]:
    """``[(source, X), ...]``: the course pair's development tasks, X every registered domain that is neither
    ``source`` nor ``target`` (in the registry's order; one with the course's three domains)."""
    tasks = [(source, x) for x in DIGIT_DOMAINS if x not in (source, target)]
    if not tasks:
        raise ValueError(f"{source} → {target} has no development task: a third digit domain is needed")
    return tasks


def development_task(source: str, target: str) -> tuple[str, str]:
    """``(source, X)``: the course pair's development task with three domains, X the one that is neither
    ``source`` nor ``target``; with more domains a ``ValueError`` (use :func:`development_tasks`)."""
    tasks = development_tasks(source, target)
    if len(tasks) > 1:
        raise ValueError(f"{source} → {target} has {len(tasks)} development tasks "
                         f"({', '.join(f'{s} → {x}' for s, x in tasks)}): use development_tasks")
    return tasks[0]


def development_domains(source: str, target: str) -> tuple[str, ...]:
    """The domains a choice for ``source → target`` reads: ``source`` and every X (its data id's parts)."""
    return (source, *(x for _, x in development_tasks(source, target)))


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


@dataclasses.dataclass(frozen=True)
class Choice:
    """What a course pair hands in: one candidate, or the mean-probability ensemble of several."""
    members: tuple[Candidate, ...]

    @property
    def label(self) -> str:
        if len(self.members) == 1:
            return self.members[0].label
        # "; " between members: a method's own label may hold " + " (DANN + AdaMatch)
        return f"Ensemble of {len(self.members)}: " + "; ".join(m.label for m in self.members)

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "members": [m.as_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Choice":
        return cls(tuple(Candidate.from_dict(m) for m in d["members"]))


def kept(n: int, share: float) -> int:
    """Candidates that go on at a rung: ``ceil(n · share)``, never fewer than :data:`MIN_KEPT`."""
    return min(n, max(MIN_KEPT, math.ceil(n * share)))


def rung_steps(config: UDAConfig, total: int) -> list[int]:
    """The step counts at which ``config``'s run reaches each rung of :data:`RUNGS` (its scored checkpoints; a rung
    at or past the last checkpoint is left out)."""
    from hw3lib.train.uda.select import eval_points

    start = config.warmup_steps
    scored = [s + 1 for s in range(total) if eval_points(s, total, config.evals, start)]
    return [scored[i - 1] for i, _ in RUNGS if i < len(scored)]


def score_at(history: Mapping[str, list], step: int | None = None) -> float:
    """Held-out accuracy of the checkpoint the validator picks among those scored up to ``step`` (all: None)."""
    n = len(history[PRIMARY])
    steps, accs = history["eval_step"][-n:], history["target_acc"][-n:]
    upto = [i for i, s in enumerate(steps) if step is None or s <= step]
    return float(accs[upto[pick({PRIMARY: [history[PRIMARY][-n:][i] for i in upto]}, PRIMARY)]])


def promote(alive: list[Candidate], scores: Mapping[Candidate, float], n: int, rung: int) -> list[Candidate]:
    """The candidates of ``alive`` that go on after rung ``rung`` (0-based) of :data:`RUNGS`: the best
    :func:`kept` of ``n`` by their mean score there (ties: the earlier candidate), in candidate order."""
    best = sorted(range(len(alive)), key=lambda i: (-scores[alive[i]], i))[:kept(n, RUNGS[rung][1])]
    return [alive[i] for i in sorted(best)]


def best_methods(record: Mapping[str, Any], names: Iterable[str], k: int) -> list[str]:
    """The ``k`` methods of ``names`` whose best candidate (any knobs) scores highest on the development tasks,
    mean over the tasks, in ``names``' order (ties: the earlier method)."""
    names = list(names)
    score = {n: float(np.mean([max((sc["accuracy"] for sc in entry["scores"] if sc["method"] == n), default=0.0)
                               for entry in (record.get("pairs") or {}).values()] or [0.0])) for n in names}
    best = sorted(range(len(names)), key=lambda i: (-score[names[i]], i))[:k]
    return [names[i] for i in sorted(best)]


def compared(names: Iterable[str], compare: int | Iterable[str] | None = None,
             record: Mapping[str, Any] | None = None) -> list[str] | None:
    """Of the candidate methods ``names``, those Problem 4 also trains on the course pairs for its comparison table
    (its ``compare`` parameter: ``k`` > 0 the k best on the development tasks of ``record`` (:func:`best_methods`;
    None while no choices are known), a list of names, or empty / 0: all). The development protocol weighs every
    candidate either way; a hand-in member left out of the comparison is trained for the hand-in alone."""
    names = list(names)
    if isinstance(compare, int) and not isinstance(compare, bool) and compare > 0:
        return best_methods(record, names, compare) if record is not None else None
    keep = set(compare or ())
    return [n for n in names if n in keep] if keep else names


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
             knobs: Mapping[str, Mapping[str, Any]] | None = None, grid: bool = True,
             halve: bool = True) -> dict[str, Any]:
    """What a choice depends on besides the data: holdout, seeds, recipe, candidates (with the profile's knobs),
    the hand-in's number of methods and the halving rungs (none: exhaustive)."""
    return {"holdout": int(holdout), "seeds": [int(s) for s in seeds], "recipe": _recipe(base),
            "candidates": [c.as_dict() for c in candidates(names, grid)],
            "knobs": {m: dict(v) for m, v in (knobs or {}).items()},
            "handin_methods": HANDIN_METHODS, "rungs": [list(r) for r in RUNGS] if halve else []}


def handin(scores: list[Mapping[str, Any]]) -> Choice:
    """A task's hand-in from its candidates' score entries (``{"method", "knobs", "accuracy"}``, in candidate
    order): the :data:`HANDIN_METHODS` best methods, each at its best candidate (a method's score is its best
    candidate's; ties: the earlier candidate), best first. One method alone is a single run."""
    members, seen = [], set()
    for i in sorted(range(len(scores)), key=lambda i: (-float(scores[i]["accuracy"]), i)):
        cand = Candidate.from_dict(scores[i])
        if cand.method not in seen:
            seen.add(cand.method)
            members.append(cand)
    return Choice(tuple(members[:HANDIN_METHODS]))


def _scored(chosen: Choice, t: "Task", data_root: str | Path) -> dict[str, Any]:
    """``chosen``'s accuracy (%) on the task's held-out split per development seed and its mean: the mean of its
    members' probabilities, each at its validator's pick among the checkpoints it reached."""
    from hw3lib.train.uda.runs import selected_classifier

    values = []
    for i in range(len(t.configs[chosen.members[0]])):
        held = target_sets(t.configs[chosen.members[0]][i], data_root)[1]
        probs = mean_probabilities([selected_classifier(t.configs[c][i], data_root, t.folders[c][i])
                                    for c in chosen.members], held.images)
        values.append(round(float((probs.argmax(1) == held.labels.cpu()).double().mean()) * 100.0, 2))
    return {"values": values, "accuracy": round(float(np.mean(values)), 2)}


@dataclasses.dataclass
class Task:
    """One development task's runs: per candidate one config and folder per development seed, its rungs' steps and
    its runs' total steps."""
    source: str
    x: str
    configs: dict[Candidate, list[UDAConfig]]
    folders: dict[Candidate, list[Path]]
    rungs: list[int]
    total: int


def task(base: UDAConfig, run_root: str | Path, source: str, x: str, *, cands: list[Candidate], seeds: list[int],
         holdout: int, knobs: Mapping[str, Mapping[str, Any]], n_source: int, n_x: int, halve: bool = True) -> Task:
    """The runs of the development task ``source → x`` (``n_source``/``n_x``: its train images)."""
    configs = {c: [candidate_config(base, c, source, x, s, holdout=holdout, knobs=knobs.get(c.method)) for s in seeds]
               for c in cands}
    folders = {c: [run_folder(run_root, cfg, c) for cfg in cfgs] for c, cfgs in configs.items()}
    first = configs[cands[0]][0]
    total = first.total_steps(n_source, n_x - (min(holdout, n_x // 2) if holdout else 0))
    rungs = rung_steps(first, total) if halve and len(cands) > MIN_KEPT else []
    return Task(source, x, configs, folders, rungs, total)


@dataclasses.dataclass
class Stage:
    """Where a task's successive halving stands: ``train`` the runs to train now, each ``(candidate, seed index,
    step to reach or None for the end)``; ``stopped`` the candidates that stopped, with their rung's step; ``later``
    what later rungs will add, ``(runs, from step, to step)`` (for ``--plan``); ``scores`` each candidate's
    per-seed scores at the rungs it reached."""
    train: list[tuple[Candidate, int, int | None]]
    alive: list[Candidate]
    stopped: dict[Candidate, int]
    later: list[tuple[int, int, int]]
    scores: dict[Candidate, list[list[float]]]


def stage(t: Task, data_root: str | Path) -> Stage:
    """The task's halving state, read from its run folders: rung by rung, the candidates still in the race are
    scored once every run of theirs has reached the rung, and the best go on (:func:`promote`)."""
    from hw3lib.train.uda.runs import progress

    cands = list(t.configs)
    n_seeds = len(t.configs[cands[0]])
    alive, stopped, scores = list(cands), {}, {c: [] for c in cands}
    for r, step in enumerate(t.rungs):
        now = {c: [progress(cfg, data_root, f) for cfg, f in zip(t.configs[c], t.folders[c])] for c in alive}
        if not all(p is not None and (p.finished or p.step >= step) for c in alive for p in now[c]):
            return Stage([(c, i, step) for c in alive for i in range(n_seeds)], alive, stopped, stage_later(t, r),
                         scores)
        for c in alive:
            scores[c].append([round(score_at(p.history, step), 2) for p in now[c]])
        went_on = promote(alive, {c: float(np.mean(scores[c][r])) for c in alive}, len(cands), r)
        stopped.update({c: step for c in alive if c not in went_on})
        alive = went_on
    return Stage([(c, i, None) for c in alive for i in range(n_seeds)], alive, stopped, [], scores)


def stage_later(t: Task, rung: int) -> list[tuple[int, int, int]]:
    """What the rungs after ``rung`` (0-based) add: ``(runs, from step, to step)`` for each, the last to the end."""
    n, n_seeds = len(t.configs), len(next(iter(t.configs.values())))
    out, start = [], t.rungs[rung]
    for r in range(rung + 1, len(t.rungs) + 1):
        end = t.rungs[r] if r < len(t.rungs) else t.total
        out.append((kept(n, RUNGS[r - 1][1]) * n_seeds, start, end))
        start = end
    return out


def develop_task(base: UDAConfig, data_root: str | Path, run_root: str | Path, source: str, x: str, *,
                 cands: list[Candidate], seeds: list[int], holdout: int, knobs: Mapping[str, Mapping[str, Any]],
                 halve: bool = True) -> dict[str, Any]:
    """One development task ``source → x``: every candidate through the rungs (:func:`stage`), the survivors to
    the end, and the hand-in (:func:`handin`) with its score on the held-out split."""
    from hw3lib.train.uda.runs import advance

    t = task(base, run_root, source, x, cands=cands, seeds=seeds, holdout=holdout, knobs=knobs,
             n_source=len(digits(data_root, source, "train")), n_x=len(digits(data_root, x, "train")))
    if not halve:
        t.rungs = []
    while (st := stage(t, data_root)).later:  # a rung to train: every candidate still in the race up to it
        for c, i, step in st.train:
            advance(t.configs[c][i], data_root, t.folders[c][i], step)
    finals = {c: [round(float(train_or_load(cfg, data_root, f).metrics["target_acc"]), 2)
                  for cfg, f in zip(t.configs[c], t.folders[c])] for c in st.alive}
    scores = []
    for c in cands:
        values = finals.get(c) or st.scores[c][-1]
        entry = {**c.as_dict(), "values": values, "accuracy": round(float(np.mean(values)), 2)}
        if t.rungs:
            entry["rungs"] = [round(float(np.mean(v)), 2) for v in st.scores[c]]
            entry["stopped_at"] = st.stopped.get(c)
        scores.append(entry)
    chosen = handin(scores)
    if chosen.is_ensemble:
        score = _scored(chosen, t, data_root)
        ensembles = [{**chosen.as_dict(), **score}]
    else:  # one method: its candidate's own score
        score, ensembles = {k: scores[cands.index(chosen.members[0])][k] for k in ("values", "accuracy")}, []
    return {"development_task": f"{source}_{x}", "held_out": _held_out(data_root, x, holdout), "rung_steps": t.rungs,
            "data_id": data_id(data_root, (source, x)), "scores": scores, "ensembles": ensembles,
            "choice": {**chosen.as_dict(), **score}}


def _held_out(data_root: str | Path, x: str, holdout: int) -> int:
    return min(holdout, len(digits(data_root, x, "train")) // 2) if holdout else 0  # development_split's count


def develop(base: UDAConfig, data_root: str | Path, run_root: str | Path, *, names: Iterable[str],
            pairs: Iterable[tuple[str, str]] = UDA_PAIRS, seeds: Iterable[int] = (0,), holdout: int = HOLDOUT,
            knobs: Mapping[str, Mapping[str, Any]] | None = None, grid: bool = True,
            halve: bool = True) -> dict[str, Any]:
    """Train (or load) the candidates on every pair's development task (:func:`develop_task`) and choose; returns
    the choices dict."""
    names, seeds, knobs = list(names), [int(s) for s in seeds], dict(knobs or {})
    cands = candidates(names, grid)
    record = {"version": VERSION, "protocol": protocol(base, names, seeds, holdout, knobs, grid, halve), "pairs": {}}
    for src, tgt in pairs:
        entries = [develop_task(base, data_root, run_root, s, x, cands=cands, seeds=seeds, holdout=holdout,
                                knobs=knobs, halve=halve) for s, x in development_tasks(src, tgt)]
        record["pairs"][f"{src}_{tgt}"] = entries[0] if len(entries) == 1 else averaged(
            entries, base, data_root, run_root, cands=cands, seeds=seeds, holdout=holdout, knobs=knobs)
    return record


def averaged(entries: list[dict[str, Any]], base: UDAConfig, data_root: str | Path, run_root: str | Path, *,
             cands: list[Candidate], seeds: list[int], holdout: int,
             knobs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One course pair's choice from its development tasks S → X₁, S → X₂, ... (more than three domains;
    :func:`develop_task`'s entries, one per task): a candidate's score is its mean over the tasks (where the halving
    stopped it, its score at that rung), the hand-in is :func:`handin` of those means, and an ensemble hand-in's
    score is the mean over the tasks of its score on each task's held-out split (:func:`_scored`). The entry keeps
    each task's own under ``"tasks"``; ``"development_task"`` reads ``S_X1+X2`` and ``"development_tasks"`` lists
    the tasks."""
    tasks = [tuple(e["development_task"].split("_", 1)) for e in entries]
    keys = [e["development_task"] for e in entries]
    scores = []
    for i, c in enumerate(cands):  # develop_task lists its scores in candidate order
        per = [e["scores"][i] for e in entries]
        entry = {**c.as_dict(), "tasks": {k: sc["accuracy"] for k, sc in zip(keys, per)},
                 "accuracy": round(float(np.mean([sc["accuracy"] for sc in per])), 2)}
        stopped = {k: sc["stopped_at"] for k, sc in zip(keys, per) if sc.get("stopped_at")}
        if stopped:
            entry["stopped_at"] = stopped
        scores.append(entry)
    chosen = handin(scores)
    if chosen.is_ensemble:
        per_task = [_scored(chosen, task(base, run_root, s, x, cands=cands, seeds=seeds, holdout=holdout, knobs=knobs,
                                         n_source=len(digits(data_root, s, "train")),
                                         n_x=len(digits(data_root, x, "train"))), data_root)["accuracy"]
                    for s, x in tasks]
        score = {"tasks": dict(zip(keys, per_task)), "accuracy": round(float(np.mean(per_task)), 2)}
        ensembles = [{**chosen.as_dict(), **score}]
    else:  # one method: its candidate's own (averaged) score
        score, ensembles = {k: scores[cands.index(chosen.members[0])][k] for k in ("tasks", "accuracy")}, []
    source, xs = tasks[0][0], [x for _, x in tasks]
    return {"development_task": f"{source}_{'+'.join(xs)}", "development_tasks": keys,
            "held_out": sum(e["held_out"] for e in entries), "data_id": data_id(data_root, (source, *xs)),
            "scores": scores, "ensembles": ensembles, "choice": {**chosen.as_dict(), **score},
            "tasks": dict(zip(keys, entries))}


def matches(record: Mapping[str, Any], data_root: str | Path, proto: Mapping[str, Any],
            pairs: Iterable[tuple[str, str]]) -> bool:
    """Whether a recorded choice holds ``pairs``, each made on this data (its development task's data id) with
    this protocol."""
    if record.get("version") != VERSION or record.get("protocol") != json.loads(json.dumps(proto)):
        return False
    for src, tgt in pairs:
        entry = (record.get("pairs") or {}).get(f"{src}_{tgt}")
        if not entry or entry.get("data_id") != data_id(data_root, development_domains(src, tgt)):
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
           knobs: Mapping[str, Mapping[str, Any]] | None = None, grid: bool = True, halve: bool = True,
           recorded_files: Iterable[str | Path] = ()) -> tuple[dict[str, Any], str]:
    """The choices for ``pairs``: recorded ones made on this data with this protocol (``recorded_files``, e.g. the
    shipped quick-profile choices, then ``run_root/choices.json``), else :func:`develop` here. Returns the choices
    and where they come from (``"recorded in FILE"`` or ``"developed here"``); writes ``run_root/choices.json``."""
    from hw3lib.checkpoint import atomic_write_text

    names, pairs = list(names), [tuple(p) for p in pairs]
    proto = protocol(base, names, seeds, holdout, knobs, grid, halve)
    found = recorded([*recorded_files, Path(run_root) / "choices.json"], data_root, proto, pairs)
    if found is not None:
        record, where = found[0], f"recorded in {found[1]}"
    else:
        record = develop(base, data_root, run_root, names=names, pairs=pairs, seeds=seeds, holdout=holdout,
                         knobs=knobs, grid=grid, halve=halve)
        where = "developed here"
    atomic_write_text(Path(run_root) / "choices.json", json.dumps(record, indent=1))
    return record, where


def choice(record: Mapping[str, Any], source: str, target: str) -> Choice:
    """What ``record`` chose for ``source → target``; a pair it has no choice for is a ``ValueError``."""
    pair = (record.get("pairs") or {}).get(f"{source}_{target}")
    if not pair:
        raise ValueError(f"the choices hold no choice for {source} → {target} (pairs: "
                         f"{', '.join(record.get('pairs') or {}) or 'none'})")
    return Choice.from_dict(pair["choice"])


def member_folder(run_root: str | Path, cfg: UDAConfig, cand: Candidate) -> Path:
    """Where a hand-in member trains on the course pair when the comparison holds no run of it."""
    return Path(run_root) / f"{cfg.name}{cand.tag}"


def handin_runs(record: Mapping[str, Any], base: UDAConfig, data_root: str | Path, run_root: str | Path, *,
                seeds: Iterable[int] = (0,), knobs: Mapping[str, Mapping[str, Any]] | None = None,
                existing: Mapping[tuple[str, str, str, int], Any] | None = None) -> dict[tuple[str, str, str, int], Any]:
    """Per course pair of ``record`` and seed, its choice on that pair: one run, or a
    :class:`~hw3lib.train.uda.runs.EnsembleResult` of its members' runs. A member with its default knobs is the
    comparison's run (``existing``, keyed ``(method, src, tgt, seed)``) when there is one; otherwise it trains (or
    loads) under :func:`member_folder`. Keys ``("hand-in", src, tgt, seed)``."""
    from hw3lib.train.uda.runs import EnsembleResult

    knobs, existing, out = dict(knobs or {}), dict(existing or {}), {}
    for key in record.get("pairs") or {}:
        src, tgt = key.split("_", 1)
        chosen = choice(record, src, tgt)
        for seed in seeds:
            runs = []
            for cand in chosen.members:
                if not cand.knobs and (cand.method, src, tgt, int(seed)) in existing:
                    runs.append(existing[(cand.method, src, tgt, int(seed))])
                    continue
                cfg = candidate_config(base, cand, src, tgt, seed, knobs=knobs.get(cand.method))
                runs.append(train_or_load(cfg, data_root, member_folder(run_root, cfg, cand)))
            out[("hand-in", src, tgt, int(seed))] = (
                EnsembleResult(runs, chosen.label, data_root) if chosen.is_ensemble else runs[0])
    return out
