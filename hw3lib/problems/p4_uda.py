"""Problem 4: improved unsupervised domain adaptation — Generate To Adapt (Sankaranarayanan et al., CVPR 2018) on a
recipe of its own, the registry's improved methods on the recipe DANN shares, and the hand-in chosen on development
tasks (:mod:`hw3lib.train.uda.develop`).

Runs, all built here (:func:`runs` for the plan, :func:`train_or_load` for the notebook):

* Problem 3's bounds and baseline (:func:`hw3lib.problems.p3_dann.methods_trained`) in ``p3_run_dir``, trained here
  when Problem 3 is not in the report (the notebook reuses whatever finished run is there);
* the development runs (``run_dir/dev/``) unless recorded choices fit this data and protocol, each at its stage of
  the successive halving;
* the compared methods (``compare``: the k best on the development tasks, or names) on the course pairs;
* the hand-in members the comparison does not hold;
* the registry's own-recipe methods (GTA: ``Method.own_recipe``) on the ``gta`` recipe, luminance on ``gray_pairs``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from hw3lib import methods
from hw3lib.problems import p3_dann
from hw3lib.problems import headline as hl
from hw3lib.problems.base import (Handin, Params as _Params, PlannedRun, Problem, Where, register, seeds_of,
                                  uda_run)

KEY = "p4_uda"


@dataclass
class Params(_Params):
    """The notebook's parameters cell (``notebooks/p4_uda.ipynb``): the same names and defaults."""
    DATA = "digits"
    run_dir: str = "runs/quick/p4_uda"
    seeds: list = field(default_factory=lambda: [0])
    methods: list = field(default_factory=list)
    compare: Any = 4
    knobs: dict = field(default_factory=dict)
    steps: int = 400
    epochs: float = 0.0
    batch_size: int = 64
    lr: float = 0.001
    evals: int = 5
    dev_seeds: list = field(default_factory=lambda: [0, 1])
    dev_holdout: int = 1000
    dev_grid: bool = True
    dev_halving: bool = True
    gta: dict = field(default_factory=lambda: {"steps": 250, "batch_size": 32, "lr": 0.0005, "warmup_steps": 400,
                                               "evals": 5, "knobs": {"ndf": 32, "ngf": 32}})
    gray_pairs: list = field(default_factory=lambda: [["mnistm", "svhn"]])
    compare_gray: bool = False
    p3_run_dir: str = ""
    tsne_per_domain: int = 300
    images_per_class: int = 2

    def ready(self):
        p = super().ready()
        return dataclasses.replace(p, seeds=seeds_of(p), gray_pairs=[tuple(g) for g in p.gray_pairs],
                                   p3_run_dir=p3_root(p), methods=shared_methods(p), knobs=dict(p.knobs or {}))


def p3_root(p: Params) -> str:
    """Problem 3's run folder: ``p3_run_dir``, else ``p3_dann`` beside ``run_dir``."""
    return p.p3_run_dir or str(Path(p.run_dir).parent / p3_dann.KEY)


def shared_methods(p: Params) -> list[str]:
    """The improved methods on the shared recipe: ``methods``, else every one of the registry."""
    return [str(m) for m in p.methods] or methods.improved(shared_recipe=True)


def own_recipe_method() -> str:
    """The improved method on a recipe of its own (the ``gta`` parameter): GTA, the public code's recipe."""
    return methods.own_recipe()


def candidates(p: Params) -> list[str]:
    """The development protocol's candidates: the registry's baseline (DANN) first, then the shared-recipe methods."""
    return [*methods.names("baseline"), *shared_methods(p)]


def base_config(p: Params):
    """The recipe DANN and the improved methods share (Problem 3's)."""
    from hw3lib.train.uda import UDAConfig

    return UDAConfig(steps=p.steps, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, evals=p.evals, device=p.device)


def own_recipe_config(p: Params):
    from hw3lib.train.uda import UDAConfig

    return UDAConfig(method=own_recipe_method(), device=p.device, **p.gta)


def own_recipe_configs(p: Params):
    """``(config, main)`` of the own-recipe method's runs (:func:`hw3lib.train.uda.runs.gta_configs`)."""
    from hw3lib.train.uda.runs import gta_configs

    return gta_configs(own_recipe_config(p), pairs=_pairs(), seeds=seeds_of(p), gray_pairs=p.gray_pairs,
                       compare_gray=p.compare_gray)


def _pairs():
    from hw3lib.data.layout import UDA_PAIRS

    return UDA_PAIRS


def protocol_args(p: Params) -> dict[str, Any]:
    """The development protocol's arguments (:func:`hw3lib.train.uda.develop.choose` and ``protocol``)."""
    return dict(names=candidates(p), seeds=[int(s) for s in p.dev_seeds], holdout=p.dev_holdout,
                knobs=dict(p.knobs or {}), grid=p.dev_grid, halve=bool(p.dev_halving))


def choose(p: Params, recorded_files=()) -> tuple[dict, str]:
    """The hand-in choices (recorded on this data and protocol, else developed here): what the notebook and
    ``hw3 develop`` both call."""
    from hw3lib.train.uda import develop

    return develop.choose(base_config(p), p.data_dir, p.run_dir, pairs=_pairs(), recorded_files=recorded_files,
                          **protocol_args(p))


# ---------------------------------------------------------------- the plan

def _development_runs(p: Params, base, where: Where) -> tuple[list[PlannedRun], dict | None]:
    """The development runs unless choices shipped with the package fit this data and protocol
    (:func:`hw3lib.train.uda.develop.choose`) — each at its stage of the successive halving
    (:func:`hw3lib.train.uda.develop.stage`: the rung it trains to now, or where it stopped, and rows for the steps
    later rungs will add) — and the choices when they are known (recorded, or every development run is done)."""
    import contextlib

    from hw3lib.project import recorded_choices
    from hw3lib.train.uda import develop

    args = protocol_args(p)
    run_root = Path(p.run_dir)
    proto = develop.protocol(base, args["names"], args["seeds"], args["holdout"], args["knobs"], args["grid"],
                             args["halve"])
    shipped = made_here = None
    with contextlib.suppress(ValueError, OSError):  # no data yet: nothing recorded can match it
        shipped = develop.recorded(recorded_choices(), p.data_dir, proto)
        made_here = develop.recorded([run_root / "choices.json"], p.data_dir, proto)
    found = (shipped or made_here or (None,))[0]
    if shipped is not None:
        return [], found
    out = []  # developed here (or to be): its runs are this report's
    cands = develop.candidates(args["names"], args["grid"])
    for src, tgt in _pairs():
        for s, x in develop.development_tasks(src, tgt):  # one per third domain (more with a registered fourth)
            out += _task_runs(p, base, s, x, cands, where)
    if found is None and out and all(r.done >= r.steps and not r.later for r in out):
        # every development run is done: choose now (what the notebook would), so the pool trains the hand-in
        found = develop.choose(base, p.data_dir, run_root, **args)[0]
    return out, found


def _task_runs(p: Params, base, src: str, x: str, cands, where: Where) -> list[PlannedRun]:
    """One development task's rows: its runs at their halving stage, and the steps later rungs will add."""
    from hw3lib.train.uda import develop

    dev_seeds = [int(s) for s in p.dev_seeds]
    t = develop.task(base, p.run_dir, src, x, cands=cands, seeds=dev_seeds, holdout=p.dev_holdout,
                     knobs=dict(p.knobs or {}), n_source=where.counts[src]["train"], n_x=where.counts[x]["train"],
                     halve=bool(p.dev_halving))
    try:
        st = develop.stage(t, p.data_dir)
    except (ValueError, OSError):  # no data yet: every candidate is still to train to the first rung
        st = develop.Stage([(c, i, t.rungs[0] if t.rungs else None) for c in cands for i in range(len(dev_seeds))],
                           cands, {}, [], {})
        if t.rungs:
            st.later = develop.stage_later(t, 0)
    out = []
    n_rungs = len(t.rungs)
    for c, i, until in st.train:
        run = uda_run(KEY, t.configs[c][i], t.folders[c][i], where)
        if until is not None:
            r = t.rungs.index(until) + 1
            run = dataclasses.replace(run, steps=until, done=min(run.done, until), until=until,
                                      note=f"rung {r} of {n_rungs}")
        out.append(run)
    for c, step in st.stopped.items():
        for i in range(len(dev_seeds)):
            run = uda_run(KEY, t.configs[c][i], t.folders[c][i], where)
            out.append(dataclasses.replace(run, steps=step, done=step, until=step,
                                           note=f"stopped at rung {t.rungs.index(step) + 1}"))
    for n_runs, start, end in st.later:
        first = t.configs[cands[0]][0]
        out += [PlannedRun(KEY, f"the best {n_runs // len(dev_seeds)}", f"{src} → {x}",
                           dev_seeds[k % len(dev_seeds)], end - start, 0, first.batch_size, None, first,
                           note=f"steps {start} → {end}", later=True)
                for k in range(n_runs)]
    return out


def _member_runs(p: Params, base, record: dict, compared: list[str], where: Where) -> list[PlannedRun]:
    """The hand-in members the comparison does not hold (chosen knobs other than the paper's, or a method it does
    not train; the baseline's is Problem 3's run), per course pair and seed."""
    from hw3lib.train.uda import develop

    out, knobs = [], dict(p.knobs or {})
    held = (*methods.names("baseline"), *compared)
    for src, tgt in _pairs():
        for cand in develop.choice(record, src, tgt).members:
            if cand.knobs or cand.method not in held:
                for seed in seeds_of(p):
                    cfg = develop.candidate_config(base, cand, src, tgt, seed, knobs=knobs.get(cand.method))
                    out.append(uda_run(KEY, cfg, develop.member_folder(p.run_dir, cfg, cand), where))
    return out


def runs(p: Params, where: Where) -> list[PlannedRun]:
    from hw3lib.train.uda import develop

    base, seeds = base_config(p), seeds_of(p)
    out = []
    if p3_dann.KEY not in where.selected:  # Problem 3's runs, trained here when Problem 3 is not in the report
        out += [uda_run(KEY, cfg, folder, where)
                for _, cfg, folder in p3_dann.course_configs(base, p3_dann.methods_trained(), seeds, p3_root(p))]
    shared = shared_methods(p)
    dev_runs, record = _development_runs(p, base, where)
    # compare = k: the k best on the development tasks, planned once their choices are known
    compared = develop.compared(shared, p.compare, record)
    out += [uda_run(KEY, cfg, folder, where)
            for _, cfg, folder in p3_dann.course_configs(base, compared or [], seeds, p.run_dir, knobs=p.knobs)]
    if compared is None:  # the k best are known once the development runs are: counted, not yet runs
        k = int(p.compare)
        stand_in = methods.names("baseline")[0]  # the shared recipe's steps, under a folder that is never made
        out += [dataclasses.replace(uda_run(KEY, cfg, folder, where), method=f"one of the {k} best", run_dir=None,
                                    later=True, note="compared once development is done")
                for _, cfg, folder in p3_dann.course_configs(base, [stand_in] * k, seeds, Path(p.run_dir) / "_")]
    out += dev_runs
    if record is not None:
        out += _member_runs(p, base, record, compared, where)
    out += [uda_run(KEY, cfg, Path(p.run_dir) / cfg.name, where, heavy=True) for cfg, _ in own_recipe_configs(p)]
    return out


# ---------------------------------------------------------------- the notebook

class Runs(NamedTuple):
    base: Any                 # the shared recipe (UDAConfig)
    own_base: Any             # the own-recipe method's (GTA's)
    methods: list[str]        # the shared-recipe methods weighed on the development tasks
    compared: list[str]       # those also trained on the course pairs
    choices: dict             # the development protocol's record
    choices_source: str       # "recorded in FILE" | "developed here"
    baselines: dict           # Problem 3's runs: (method, src, tgt, seed) → UDAResult
    modern: dict              # the compared methods' runs
    gta: dict                 # the own-recipe method's main runs
    gta_variants: dict        # (src, tgt, gray, seed) → UDAResult: both image settings of a compared gray pair
    handin: dict              # ("hand-in", src, tgt, seed) → UDAResult or EnsembleResult

    @property
    def results(self) -> dict:
        return {**self.baselines, **self.gta, **self.modern}

    @property
    def shown(self) -> list[str]:
        """The methods of the comparison's rows: the baseline, the own-recipe method, the compared ones."""
        return [*methods.names("baseline"), own_recipe_method(), *self.compared]


def train_or_load(p: Params) -> Runs:
    """Problem 4's runs (those :func:`runs` plans), trained, or loaded when finished: the choices first (recorded,
    else developed here), then Problem 3's runs (any finished one there is reused as it is), the compared methods,
    the own-recipe method's runs and the hand-in."""
    from hw3lib.project import recorded_choices
    from hw3lib.train.uda import develop
    from hw3lib.train.uda.runs import baseline_run, gta_runs
    from hw3lib.train.uda.runs import train_or_load as uda_train_or_load

    base, seeds, shared = base_config(p), seeds_of(p), shared_methods(p)
    choices, source = choose(p, recorded_choices())
    compared = develop.compared(shared, p.compare, choices)
    baselines = {key: baseline_run(cfg, p.data_dir, folder)
                 for key, cfg, folder in p3_dann.course_configs(base, p3_dann.methods_trained(), seeds, p3_root(p))}
    modern = {key: uda_train_or_load(cfg, p.data_dir, folder)
              for key, cfg, folder in p3_dann.course_configs(base, compared, seeds, p.run_dir, knobs=p.knobs)}
    gta, variants = gta_runs(own_recipe_config(p), p.data_dir, p.run_dir, pairs=_pairs(), seeds=seeds,
                             gray_pairs=p.gray_pairs, compare_gray=p.compare_gray)
    handin = develop.handin_runs(choices, base, p.data_dir, p.run_dir, seeds=seeds, knobs=p.knobs,
                                 existing={**baselines, **gta, **modern})
    return Runs(base, own_recipe_config(p), shared, compared, choices, source, baselines, modern, gta, variants,
                handin)


def _what(choice: Mapping[str, Any]) -> str | None:
    """The hand-in in a few words: an ensemble's methods (their knobs are in 4.1's table), else the choice's label."""
    members = choice.get("members") or []
    if len(members) > 1:
        return f"ensemble of {len(members)}: " + ", ".join(dict.fromkeys(methods.label(m["method"]) for m in members))
    return choice.get("label")


def headline(m: Mapping[str, Any]) -> hl.Lines:
    """The report's first-page lines for this problem's ``metrics.json`` (:mod:`hw3lib.problems.headline`)."""
    from hw3lib.eval.uda import HANDIN, gap_closed

    acc, ref = m["target_accuracy"], m.get("reference_course_report") or {}
    hand = acc.get(HANDIN) or {}
    if not hand:
        return ["no hand-in row in this run's metrics"], []
    closed = gap_closed(acc, HANDIN)
    choices = m.get("handin") or {}
    run = [f"the hand-in against DANN, {hl.n_note({HANDIN: hand})}"]
    course = ["course report's GTA against DANN, real data:"]
    lower, base, upper, own = methods.lower(), methods.baseline(), methods.upper(), methods.own_recipe()
    for k in hl.pairs({HANDIN: hand}):
        dann = (acc.get(base) or {}).get(k)
        label = _what(choices.get(k) or {})
        line = f"{hl.pair(k)}: {hl.mean(hand[k])}" + (f" ({label})" if label else "")
        if dann:
            line += f" against DANN's {hl.mean(dann)}: {hand[k]['mean'] - dann['mean']:+.2f} points"
        if closed.get(k) is not None:
            line += f"; closes {closed[k]:.0f} % of the source-only → target-only gap"
        elif k in (acc.get(lower) or {}) and k in (acc.get(upper) or {}):
            line += "; no gap to close (target-only ≤ source-only)"
        run.append(line)
        if k in ref.get(own, {}) and k in ref.get(base, {}):
            course.append(f"{hl.pair(k)}: {ref[own][k]:.2f} against {ref[base][k]:.2f}")
    return run, course if len(course) > 1 else []


PROBLEM = register(Problem(KEY, "Problem 4: Improved UDA", 4, Params, runs,
                           Handin("improved-UDA model", "digits", "predictions of Problem 4's selected run",
                                  selected=True),
                           headline=headline))
