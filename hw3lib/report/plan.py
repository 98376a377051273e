"""``hw3 report --plan``: every run a profile will train, with a time estimate measured on this device.

    hw3 report --profile full --plan --data path/to/hw3_data

The runs are listed from the parameters ``hw3 report`` would pass to each notebook (profile → ``-p`` overrides →
the builder's paths; each notebook's own defaults for the rest), built into the same configs the notebooks build,
so the folders (``hw3lib.train.folders.config_folder``) and step counts are the ones training will use (the smoke
report test checks that every run it trained is listed, and finished). Step counts come from each config's
``total_steps`` on the data's image counts: the data folder's CSVs, else the profile's embedded size, else the
course's sizes.

The estimate times each distinct training step (family, method, batch, widths) with the real training code on
random images of the right shape, timed inside the training loop (``hw3lib.train.loop.step_clock``), the first
step left out. A run's estimate is its remaining steps times that; warm-start steps (source-only steps, a
small fraction of an adaptation step) are left out. Evaluation passes, t-SNE, notebook start-up and the PDF
are not in it either: the totals are a lower bound.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import torch

from hw3lib.data.layout import DIGIT_SIZES, FACE_ATTRIBUTES, FACE_SIZES, UDA_PAIRS
from hw3lib.results import fmt_seconds

P3_METHODS = ("source-only", "dann", "target-only")


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    problem: str            # p3_dann
    method: str             # vae, gan, face-attr, dann, gta, ...
    pair: str               # "usps → mnistm" or "—"
    seed: int
    steps: int              # the run's total optimisation steps
    done: int               # steps already in its checkpoint (== steps when finished)
    batch: int
    run_dir: Path | None
    config: Any             # the run's config (VAEConfig, GANConfig, AttrConfig, UDAConfig)
    until: int | None = None    # a development run trained to a rung of the halving and paused there
    note: str = ""              # "rung 1 of 2", "stopped at rung 1", "the best 6 go on" (a row of steps to come)
    later: bool = False         # steps the halving's later rungs will add (no folder yet: --plan counts them)

    @property
    def status(self) -> str:
        note = f" ({self.note})" if self.note else ""
        if self.later:
            return f"later{note}"
        if self.done >= self.steps:
            return "finished" + note
        return (f"resumes at {self.done}" if self.done else "to train") + note

    @property
    def bench_key(self) -> tuple:
        """Runs with equal keys take equally long steps."""
        c = self.config
        if self.method in ("vae", "face-attr"):
            return (self.method, c.batch_size)
        if self.method == "gan":
            return ("gan", c.batch_size, c.ngf, c.ndf)
        knobs = tuple(sorted(dataclasses.asdict(c.knobs).items()))  # widths and the like change a step's time
        return ("uda-bounds", c.batch_size) if not c.spec.adapts else (c.method, c.batch_size, knobs)


# ---------------------------------------------------------------- the runs

def _defaults(notebook: Path) -> dict[str, Any]:
    """A notebook's parameters cell as Python values (unparseable ones left out)."""
    from papermill import inspect_notebook

    out = {}
    for name, p in inspect_notebook(str(notebook)).items():
        with contextlib.suppress(ValueError, SyntaxError):
            out[name] = ast.literal_eval(str(p.get("default")))
    return out


def data_counts(sizes: dict | None, data_size: str | None) -> dict[str, dict[str, int]]:
    """``{"face": {"train": N, ...}, "usps": {...}, ...}``: the data folder's counts where known, else the
    embedded size's, else the course's."""
    size = data_size or "full"
    out = {"face": dict(zip(("train", "test"), FACE_SIZES[size]))}
    out.update({d: dict(zip(("train", "test"), n)) for d, n in DIGIT_SIZES[size].items()})
    for k, v in (sizes or {}).items():
        out[k] = {**out.get(k, {}), **v}
    return out


def _progress(run_dir: Path, kind: str, config: Any, steps: int) -> int:
    """Steps already done: ``steps`` for a finished run of this config, the step of an unfinished one, else 0."""
    from hw3lib.train.folders import matching_checkpoint

    payload = matching_checkpoint(run_dir, kind, config)
    if payload is None:
        return 0
    return steps if payload.get("finished") else int(payload.get("step") or 0)


def _on_data(cfg, data_dir, parts):
    """``cfg`` bound to the data it will train on (what training does first), when that folder holds it."""
    from hw3lib.train.configs import bind_data

    try:
        return bind_data(cfg, data_dir, parts)
    except (ValueError, OSError):  # no data (yet): every run is still to train
        return cfg


def _uda_runs(problem: str, base, methods, pairs, seeds, run_root: Path, counts, data_dir,
              knobs: dict | None = None) -> list[PlannedRun]:
    out = []
    for src, tgt in pairs:
        for method in methods:
            for seed in seeds:
                cfg = base.for_method(method, (knobs or {}).get(method), source=src, target=tgt, seed=int(seed))
                out.append(_uda_run(problem, cfg, run_root / cfg.name, counts, data_dir))
    return out


def _uda_run(problem: str, cfg, run_dir: Path, counts, data_dir) -> PlannedRun:
    from hw3lib.train.folders import config_folder

    cfg = _on_data(cfg.validate(), data_dir, (cfg.source, cfg.target))
    run_dir = config_folder(run_dir, cfg.kind, cfg, say=False)
    n_target = counts[cfg.target]["train"]
    n_target -= min(cfg.holdout, n_target // 2) if cfg.holdout else 0  # a development run's pool
    steps = cfg.total_steps(counts[cfg.source]["train"], n_target)
    return PlannedRun(problem, cfg.method, f"{cfg.source} → {cfg.target}", cfg.seed, steps,
                      _progress(run_dir, cfg.kind, cfg, steps), cfg.batch_size, run_dir, cfg)


def _development_runs(problem: str, base, names: list[str], p: dict, counts) -> tuple[list[PlannedRun], dict | None]:
    """Problem 4's development runs unless choices shipped with the package fit this data and protocol
    (:func:`hw3lib.train.uda.develop.choose`) — each at its stage of the successive halving
    (:func:`hw3lib.train.uda.develop.stage`: the rung it trains to now, or where it stopped, and rows for the steps
    later rungs will add) — and the choices when they are known (recorded, or every development run is done)."""
    from hw3lib.project import recorded_choices
    from hw3lib.train.uda import develop

    run_root, knobs = Path(p["run_dir"]), p["knobs"] or {}
    dev_seeds = [int(s) for s in p["dev_seeds"]]
    halve = bool(p.get("dev_halving", True))
    proto = develop.protocol(base, names, dev_seeds, p["dev_holdout"], knobs, p["dev_grid"], halve)
    shipped = made_here = None
    with contextlib.suppress(ValueError, OSError):  # no data yet: nothing recorded can match it
        shipped = develop.recorded(recorded_choices(), p["data_dir"], proto)
        made_here = develop.recorded([run_root / "choices.json"], p["data_dir"], proto)
    found = (shipped or made_here or (None,))[0]
    if shipped is not None:
        return [], found
    out = []  # developed here (or to be): its runs are this report's
    for src, tgt in UDA_PAIRS:
        out += _task_runs(problem, develop, base, run_root, *develop.development_task(src, tgt),
                          develop.candidates(names, p["dev_grid"]), dev_seeds, p, knobs, counts, halve)
    if found is None and out and all(r.done >= r.steps and not r.later for r in out):
        # every development run is done: choose now (what the notebook would), so the pool trains the hand-in
        found = develop.choose(base, p["data_dir"], run_root, names=names, seeds=dev_seeds, holdout=p["dev_holdout"],
                               knobs=knobs, grid=p["dev_grid"], halve=halve)[0]
    return out, found


def _member_runs(problem: str, base, record: dict, p: dict, seeds, counts, compared: list[str]) -> list[PlannedRun]:
    """The hand-in members the comparison does not hold (chosen knobs other than the paper's, or a method it does
    not train; DANN's is Problem 3's run), per course pair and seed."""
    from hw3lib.train.uda import develop

    out, knobs = [], p["knobs"] or {}
    for src, tgt in UDA_PAIRS:
        for cand in develop.choice(record, src, tgt).members:
            if cand.knobs or cand.method not in ("dann", *compared):
                for seed in seeds:
                    cfg = develop.candidate_config(base, cand, src, tgt, seed, knobs=knobs.get(cand.method))
                    out.append(_uda_run(problem, cfg, develop.member_folder(p["run_dir"], cfg, cand), counts,
                                        p["data_dir"]))
    return out


def _task_runs(problem, develop, base, run_root, src, x, cands, dev_seeds, p, knobs, counts, halve):
    """One development task's rows: its runs at their halving stage, and the steps later rungs will add."""
    t = develop.task(base, run_root, src, x, cands=cands, seeds=dev_seeds, holdout=p["dev_holdout"], knobs=knobs,
                     n_source=counts[src]["train"], n_x=counts[x]["train"], halve=halve)
    try:
        st = develop.stage(t, p["data_dir"])
    except (ValueError, OSError):  # no data yet: every candidate is still to train to the first rung
        st = develop.Stage([(c, i, t.rungs[0] if t.rungs else None) for c in cands for i in range(len(dev_seeds))],
                           cands, {}, [], {})
        if t.rungs:
            st.later = develop.stage_later(t, 0)
    out = []
    n_rungs = len(t.rungs)
    for c, i, until in st.train:
        run = _uda_run(problem, t.configs[c][i], t.folders[c][i], counts, p["data_dir"])
        if until is not None:
            r = t.rungs.index(until) + 1
            run = dataclasses.replace(run, steps=until, done=min(run.done, until), until=until,
                                      note=f"rung {r} of {n_rungs}")
        out.append(run)
    for c, step in st.stopped.items():
        for i in range(len(dev_seeds)):
            run = _uda_run(problem, t.configs[c][i], t.folders[c][i], counts, p["data_dir"])
            out.append(dataclasses.replace(run, steps=step, done=step, until=step,
                                           note=f"stopped at rung {t.rungs.index(step) + 1}"))
    for n_runs, start, end in st.later:
        first = t.configs[cands[0]][0]
        out += [PlannedRun(problem, f"the best {n_runs // len(dev_seeds)}", f"{src} → {x}", int(dev_seeds[k % len(dev_seeds)]),
                           end - start, 0, first.batch_size, None, first, note=f"steps {start} → {end}", later=True)
                for k in range(n_runs)]
    return out


def planned_runs(notebooks: dict[str, Path], params: dict[str, dict], counts: dict) -> list[PlannedRun]:
    """Every run the selected notebooks train or load, in the report's order. ``notebooks``: name → .ipynb;
    ``params``: what ``hw3 report`` passes to each (``notebook_parameters``)."""
    from hw3lib.train.attr import KIND as ATTR_KIND
    from hw3lib.train.attr import AttrConfig
    from hw3lib.train.folders import config_folder, finished_config
    from hw3lib.train.gan import KIND as GAN_KIND
    from hw3lib.train.gan import GANConfig
    from hw3lib.methods import improved
    from hw3lib.train.uda import UDAConfig, develop
    from hw3lib.train.uda.runs import gta_configs
    from hw3lib.train.vae import KIND as VAE_KIND
    from hw3lib.train.vae import VAEConfig

    runs: list[PlannedRun] = []
    n_face = counts["face"]["train"]

    def add(problem, method, cfg, kind, steps, run_dir):
        cfg = _on_data(cfg, p["data_dir"], ("face",))
        run_dir = config_folder(run_dir, kind, cfg, say=False)
        if any(r.run_dir == run_dir for r in runs):  # a run two notebooks share (the attribute classifier): once
            return
        runs.append(PlannedRun(problem, method, "—", cfg.seed, steps, _progress(run_dir, kind, cfg, steps),
                               cfg.batch_size, run_dir, cfg))

    def add_attr(problem):
        cfg = AttrConfig(epochs=p["attr_epochs"], seed=p["seed"], max_steps=p["attr_max_steps"], device=p["device"])
        add(problem, "face-attr", cfg, ATTR_KIND, cfg.total_steps(n_face), p["attr_run_dir"])

    for name, notebook in notebooks.items():
        p = {**_defaults(notebook), **params.get(name, {})}
        seeds = [int(s) for s in p.get("seeds") or []] or [int(p.get("seed", 0))]
        if name == "p1_vae":
            cfg = VAEConfig(epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"], kld_weight=p["kld_weight"],
                            seed=p["seed"], max_steps=p["max_steps"], device=p["device"])
            add(name, "vae", cfg, VAE_KIND, cfg.total_steps(n_face), p["run_dir"])
            if "attr_run_dir" in p:  # Problem 1's sample metrics use the attribute classifier too
                add_attr(name)
        elif name == "p2_gan":
            cfg = GANConfig(epochs=p["epochs"], batch_size=p["batch_size"], ngf=p["ngf"], ndf=p["ndf"], lr=p["lr"],
                            lr_d=p["lr_d"], seed=p["seed"], max_steps=p["max_steps"], device=p["device"])
            add(name, "gan", cfg, GAN_KIND, cfg.total_steps(n_face), p["run_dir"])
            add_attr(name)
            # Problem 2 compares with Problem 1's VAE (any finished one): trained here when Problem 1 is not
            if "p1_vae" not in notebooks and finished_config(p["vae_run_dir"], VAE_KIND) is None:
                cfg = VAEConfig(seed=p["seed"], max_steps=p["vae_max_steps"], device=p["device"])
                add(name, "vae", cfg, VAE_KIND, cfg.total_steps(n_face), p["vae_run_dir"])
        elif name == "p3_dann":
            base = UDAConfig(steps=p["steps"], epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"],
                             optimizer=p["optimizer"], bn=p["bn"], evals=p["evals"], device=p["device"])
            runs += _uda_runs(name, base, P3_METHODS, UDA_PAIRS, seeds, Path(p["run_dir"]), counts,
                              p["data_dir"])
        elif name == "p4_uda":
            base = UDAConfig(steps=p["steps"], epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"],
                             evals=p["evals"], device=p["device"])
            if "p3_dann" not in notebooks:  # Problem 3's runs, trained here when Problem 3 is not in the report
                p3_root = Path(p["p3_run_dir"] or str(Path(p["run_dir"]).parent / "p3_dann"))
                runs += _uda_runs(name, base, P3_METHODS, UDA_PAIRS, seeds, p3_root, counts, p["data_dir"])
            shared = p["methods"] or improved(shared_recipe=True)
            dev_runs, record = _development_runs(name, base, ["dann", *shared], p, counts)
            # compare = k: the k best on the development tasks, planned once their choices are known
            compared = develop.compared(shared, p.get("compare"), record)
            runs += _uda_runs(name, base, compared or [], UDA_PAIRS, seeds, Path(p["run_dir"]), counts,
                              p["data_dir"], knobs=p["knobs"])
            if compared is None:  # the k best are known once the development runs are: counted, not yet runs
                k = int(p["compare"])
                runs += [dataclasses.replace(r, method=f"one of the {k} best", run_dir=None, later=True,
                                             note="compared once development is done")
                         for r in _uda_runs(name, base, ["dann"] * k, UDA_PAIRS, seeds, Path(p["run_dir"]) / "_",
                                            counts, p["data_dir"])]
            runs += dev_runs
            if record is not None:
                runs += _member_runs(name, base, record, p, seeds, counts, compared)
            gta = UDAConfig(method="gta", device=p["device"], **p["gta"])
            for cfg, _ in gta_configs(gta, pairs=UDA_PAIRS, seeds=seeds, gray_pairs=p["gray_pairs"],
                                      compare_gray=p["compare_gray"]):
                runs.append(_uda_run(name, cfg, Path(p["run_dir"]) / cfg.name, counts, p["data_dir"]))
    return runs


# ---------------------------------------------------------------- step timing

def _random_faces(n: int):
    from hw3lib.data.sets import FaceSet

    g = torch.Generator().manual_seed(0)
    return FaceSet(torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g),
                   torch.randint(0, 2, (n, len(FACE_ATTRIBUTES)), dtype=torch.uint8, generator=g),
                   tuple(f"{i}.png" for i in range(n)), FACE_ATTRIBUTES, "embedded")


def _random_digits(n: int, domain: str, device):
    from hw3lib.data.sets import DigitSet

    g = torch.Generator().manual_seed(hash(domain) % 1000)
    return DigitSet(torch.randint(0, 256, (n, 3, 28, 28), dtype=torch.uint8, generator=g).to(device),
                    (torch.arange(n) % 10).to(device), tuple(f"{i}.png" for i in range(n)), domain, "embedded")


def step_runner(run: PlannedRun, device: torch.device) -> Callable[[int], None]:
    """``n -> None``: ``n`` training steps of ``run``'s kind with the real training code, on random data."""
    from hw3lib.runtime import Runtime

    c = run.config
    if run.method == "vae":
        from hw3lib.models.vae import VAE
        from hw3lib.train.vae import train_vae

        faces = _random_faces(4 * c.batch_size)

        def steps(n):
            cfg = dataclasses.replace(c, max_steps=n, eval_every_epoch=False, epochs=10**6)
            train_vae(VAE(latent_dim=cfg.latent_dim), faces, None, cfg, runtime=Runtime.for_config(cfg, device=device))
        return steps
    if run.method == "gan":
        from hw3lib.train.gan import build_models, train_gan

        faces = _random_faces(4 * c.batch_size)

        def steps(n):
            cfg = dataclasses.replace(c, max_steps=n, snapshot_every=10**9, epochs=10**6)
            train_gan(*build_models(cfg, device), faces, cfg, runtime=Runtime.for_config(cfg, device=device))
        return steps
    if run.method == "face-attr":
        from hw3lib.models.attr import AttributeClassifier
        from hw3lib.train.attr import train_attr_classifier

        faces = _random_faces(4 * c.batch_size)

        def steps(n):
            cfg = dataclasses.replace(c, max_steps=n, epochs=10**6)
            train_attr_classifier(AttributeClassifier(width=cfg.width), faces, cfg,
                                  runtime=Runtime.for_config(cfg, device=device))
        return steps
    from hw3lib.train.uda.loop import Domains
    from hw3lib.train.uda.runs import train_on

    n = 4 * run.batch
    data = Domains(_random_digits(n, "source", device), _random_digits(n, "target", device),
                   _random_digits(40, "target-test", device), _random_digits(40, "source-val", device))

    def steps(k):
        cfg = dataclasses.replace(c, steps=k, evals=0, max_steps=None, warmup_steps=0)
        train_on(cfg, data, runtime=Runtime.for_config(cfg, device=device))
    return steps


def _timed_steps(steps: Callable[[int], None], n: int, device: torch.device) -> float:
    """Mean seconds of steps 2..n of one ``n``-step run (the first pays one-time costs)."""
    from hw3lib.train.loop import step_clock

    with step_clock(torch.cuda.synchronize if device.type == "cuda" else None) as stamps:
        steps(n)
    return max(stamps[n] - stamps[1], 1e-9) / (n - 1)


def step_seconds(run: PlannedRun, device: torch.device, *, target_s: float = 1.5) -> float:
    """Seconds per training step of ``run``'s kind on ``device``, timed inside the training loop (set-up,
    evaluation and the first step left out): three steps, then, when they were quick, enough steps for about
    ``target_s`` seconds."""
    steps = step_runner(run, device)
    per = _timed_steps(steps, 3, device)
    k = int(min(60, target_s / per))
    return _timed_steps(steps, k + 1, device) if k > 4 else per


def estimate(runs: list[PlannedRun], device: torch.device) -> dict[tuple, float]:
    """Seconds per step for each distinct step among the runs still to train."""
    times: dict[tuple, float] = {}
    with mock.patch.dict(os.environ, {"HW3_PROGRESS": "0"}):  # no progress bars or run messages while timing
        for r in runs:
            if r.status != "finished" and r.bench_key not in times:
                times[r.bench_key] = step_seconds(r, device)
    return times


def plan_table(runs: list[PlannedRun], times: dict[tuple, float]):
    """One row per run: problem, method, pair, seed, steps, batch, status, s/step, estimate_s, run_dir."""
    import pandas as pd

    rows = []
    for r in runs:
        s = times.get(r.bench_key)
        warm = getattr(r.config, "warmup_steps", 0)
        left = r.steps - max(min(r.done, r.steps), warm)
        rows.append({"problem": r.problem, "method": r.method, "pair": r.pair, "seed": r.seed, "steps": r.steps,
                     "batch": r.batch, "status": r.status, "s/step": s,
                     "estimate_s": left * s if s is not None else 0.0,
                     "run_dir": str(r.run_dir) if r.run_dir is not None else "—"})
    return pd.DataFrame(rows)


def format_plan(table, header: str) -> str:
    """The printed plan: a header line, the run table, and totals per problem."""
    if table.empty:
        return f"{header}\nno runs"
    shown = table.assign(**{"s/step": table["s/step"].map(lambda v: "—" if v != v or v is None else f"{v:.3f}"),
                            "estimate": table["estimate_s"].map(lambda v: fmt_seconds(v) if v else "—")})
    shown = shown.assign(run_dir=table["run_dir"].map(lambda d: Path(d).name))
    lines = [header, shown.drop(columns=["estimate_s"]).rename(columns={"run_dir": "run"}).to_string(index=False), ""]
    for problem, g in table.groupby("problem", sort=False):
        todo = int((g["status"] != "finished").sum())
        lines.append(f"{problem}: {len(g)} runs, {len(g) - todo} finished, {todo} to train: "
                     f"~{fmt_seconds(float(g['estimate_s'].sum()))}")
    total = float(table["estimate_s"].sum())
    lines.append(f"total training: ~{fmt_seconds(total)} ({total / 3600:.1f} h) — training steps only "
                 f"(evaluation, t-SNE, notebooks and the PDF come on top)")
    return "\n".join(lines)
