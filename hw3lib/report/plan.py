"""``hw3 report --plan``: every run a profile will train, with a time estimate measured on this device.

    hw3 report --profile full --plan --data path/to/hw3_data

The runs are listed from the parameters ``hw3 report`` would pass to each notebook (profile → ``-p`` overrides →
the builder's paths; each problem's defaults for the rest) by each problem's module (:mod:`hw3lib.problems`), the
one its notebook calls too, so the configs, folders (``hw3lib.train.folders.config_folder``) and step counts are
the ones training will use (the smoke report test checks that every run it trained is listed, and finished). Step counts come from each config's
``total_steps`` on the data's image counts: the data folder's CSVs, else the profile's embedded size, else the
course's sizes.

The estimate times each distinct training step (family, method, batch, widths) with the real training code on
random images of the right shape, timed inside the training loop (``hw3lib.train.loop.step_clock``), the first
step left out. A run's estimate is its remaining steps times that; warm-start steps (source-only steps, a
small fraction of an adaptation step) are left out. Evaluation passes, t-SNE, notebook start-up and the PDF
are not in it either: the totals are a lower bound.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from unittest import mock

import torch

from hw3lib.data.layout import DIGIT_SIZES, FACE_ATTRIBUTES, FACE_SIZES
from hw3lib.problems import PlannedRun, Where
from hw3lib.results import fmt_seconds

__all__ = ["PlannedRun", "data_counts", "estimate", "format_plan", "plan_table", "planned_runs", "step_runner",
           "step_seconds"]


# ---------------------------------------------------------------- the runs

def data_counts(sizes: dict | None, data_size: str | None) -> dict[str, dict[str, int]]:
    """``{"face": {"train": N, ...}, "usps": {...}, ...}``: the data folder's counts where known, else the
    embedded size's, else the course's."""
    size = data_size or "full"
    out = {"face": dict(zip(("train", "test"), FACE_SIZES[size]))}
    out.update({d: dict(zip(("train", "test"), n)) for d, n in DIGIT_SIZES[size].items()})
    for k, v in (sizes or {}).items():
        out[k] = {**out.get(k, {}), **v}
    return out


def planned_runs(selected: Iterable[str], params: Mapping[str, dict], counts: dict) -> list[PlannedRun]:
    """Every run the selected problems train or load, in the report's order, each problem's from its module
    (:meth:`hw3lib.problems.Problem.planned`). ``selected``: problem keys (notebook stems); ``params``: what
    ``hw3 report`` passes to each notebook (``notebook_parameters``; the problem's defaults for the rest). A run
    two problems share (the attribute classifier) is listed once, for the first."""
    from hw3lib import problems

    chosen = [problems.get(k) for k in selected]
    keys = tuple(p.key for p in chosen)
    runs: list[PlannedRun] = []
    seen: set = set()
    for problem in chosen:
        values = params.get(problem.key, {})
        data_dir = problem.params.of(values).data_dir  # the problem's default when hw3 report passes none
        for run in problem.planned(values, Where(data_dir, counts, keys)):
            if run.run_dir is not None and run.run_dir in seen:
                continue
            seen.add(run.run_dir)
            runs.append(run)
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
