"""The report's first page: each problem's results at a glance, read from the ``metrics.json`` its notebook wrote
(the keys of :func:`hw3lib.eval.vae.metrics`, :func:`hw3lib.eval.gan.metrics_record`,
:func:`hw3lib.eval.uda.metrics_dict` and :func:`hw3lib.eval.improved.metrics_dict`), beside the baseline or the
course report's figure the code has for it; and per problem its training time and runs, from the runs' own
checkpoints (:func:`training_record`).

>>> rows = glance_rows(["p3_dann"], {"p3_dann": "ok"}, Path("runs/quick"), "embedded")
>>> rows[2]["run"]     # ["usps → mnistm: source-only 29.10 · DANN 40.20 · target-only 90.00", ...]

A problem not in the report, failed, or without readable metrics gets a row that says so.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from hw3lib import problems
from hw3lib.report.profile import NOTEBOOKS

DATA_WORDS = {"embedded": "embedded synthetic", "real": "real course data"}

TITLES = {p.key: p.title for p in problems.ordered()}  # the registered problems' (hw3lib.problems)


def _mean(cell: Mapping[str, Any] | None) -> str:
    """``71.20`` or ``71.20 ± 1.05`` (more than one seed), from a target-accuracy cell of metrics.json."""
    if not cell:
        return "—"
    if cell.get("n", 1) > 1 and cell.get("std") is not None:
        return f"{cell['mean']:.2f} ± {cell['std']:.2f}"
    return f"{cell['mean']:.2f}"


def _n_note(acc: Mapping[str, Mapping[str, Any]]) -> str:
    ns = sorted({c.get("n", 1) for cells in acc.values() for c in cells.values()})
    return f"target-test accuracy (%), n = {'/'.join(map(str, ns))} seed(s) per value"


def _pairs(acc: Mapping[str, Mapping[str, Any]]) -> list[str]:
    from hw3lib.data import UDA_PAIRS
    from hw3lib.eval.uda import pair_key

    keys = {k for cells in acc.values() for k in cells}
    return [pair_key(*p) for p in UDA_PAIRS if pair_key(*p) in keys] + sorted(keys - {pair_key(*p) for p in UDA_PAIRS})


def _pair(key: str) -> str:
    return key.replace("_", " → ", 1)


def _p1(m: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    mse, base = m["test_mse_mean"], m["baseline_mse"]
    ratio = base / mse if mse > 0 else float("inf")
    return ([f"VAE test MSE {mse:.4f} (decode(μ), [0, 1] pixels)"],
            [f"every test face as the train mean image: {base:.4f} — the VAE's error is "
             + (f"{ratio:.1f}× lower" if ratio >= 1 else f"{1 / ratio:.1f}× higher")])


def _p2(m: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    from hw3lib.eval.gan import _fmt

    s = m["samples"]

    def line(name: str, key: str) -> str:
        x = s[key]
        return f"{name}: FD {_fmt(x['fd'])}, recall {x['recall']:.2f}, C2ST {x['c2st']:.2f}"
    ref = [line(name, key) for name, key in (("VAE (Problem 1)", "vae"), ("untrained G", "untrained")) if key in s]
    return ([line("DCGAN", "dcgan"), "FD ↓, recall ↑, C2ST 0.5 = indistinguishable"],
            ref or ["no VAE or untrained generator in this run"])


def _p3(m: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    acc, ref = m["target_accuracy"], m.get("reference_course_report") or {}
    from hw3lib.problems import p3_dann

    methods = p3_dann.methods_trained()  # source-only, DANN, target-only: the registry's bounds and baseline
    run, course = [], []
    for k in _pairs(acc):
        run.append(f"{_pair(k)}: " + " · ".join(_mean(acc.get(x, {}).get(k)) for x in methods))
        if all(k in ref.get(x, {}) for x in methods):
            course.append(f"{_pair(k)}: " + " · ".join(f"{ref[x][k]:.2f}" for x in methods))
    head = f"source-only · DANN · target-only, {_n_note(acc)}"
    return [head, *run], (["course report, real data:", *course] if course else ["no course-report figures"])


def _p4(m: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    from hw3lib import methods
    from hw3lib.eval.uda import HANDIN, gap_closed

    acc, ref = m["target_accuracy"], m.get("reference_course_report") or {}
    hand = acc.get(HANDIN) or {}
    if not hand:
        return ["no hand-in row in this run's metrics"], []
    closed = gap_closed(acc, HANDIN)
    choices = m.get("handin") or {}
    run, course = [f"the hand-in against DANN, {_n_note({HANDIN: hand})}"], ["course report's GTA against DANN, real data:"]
    lower, base, upper, own = methods.lower(), methods.baseline(), methods.upper(), methods.own_recipe()
    for k in _pairs({HANDIN: hand}):
        dann = (acc.get(base) or {}).get(k)
        label = (choices.get(k) or {}).get("label")
        line = f"{_pair(k)}: {_mean(hand[k])}" + (f" ({label})" if label else "")
        if dann:
            line += f" against DANN's {_mean(dann)}: {hand[k]['mean'] - dann['mean']:+.2f} points"
        if closed.get(k) is not None:
            line += f"; closes {closed[k]:.0f} % of the source-only → target-only gap"
        elif k in (acc.get(lower) or {}) and k in (acc.get(upper) or {}):
            line += "; no gap to close (target-only ≤ source-only)"
        run.append(line)
        if k in ref.get(own, {}) and k in ref.get(base, {}):
            course.append(f"{_pair(k)}: {ref[own][k]:.2f} against {ref[base][k]:.2f}")
    return run, course if len(course) > 1 else []


HEADLINES = {"p1_vae": _p1, "p2_gan": _p2, "p3_dann": _p3, "p4_uda": _p4}


def glance_rows(selected: Iterable[str], status: Mapping[str, str], runs_root: str | Path,
                data_kind: str) -> list[dict[str, Any]]:
    """One row per problem of the course, in order: ``{key, title, href, data, run, reference, note}`` (``run`` and
    ``reference``: lines of text; ``note``: why there are none)."""

    selected = list(selected)
    rows = []
    for key in NOTEBOOKS:
        row = {"key": key, "title": TITLES[key], "href": None, "data": "—", "run": [], "reference": [], "note": ""}
        rows.append(row)
        if key not in selected:
            row["note"] = "not in this report (hw3 report --only)"
            continue
        row["href"] = f"#section-{key}"
        if status.get(key) != "ok":
            row["note"] = f"{status.get(key, 'not run')}: no results (its section shows why)"
            continue
        path = Path(runs_root) / key / "metrics.json"
        try:
            metrics = json.loads(path.read_text())
            row["run"], row["reference"] = HEADLINES[key](metrics) if key in HEADLINES else (
                [f"metrics: {', '.join(sorted(metrics))}"], [])
        except (OSError, ValueError) as exc:
            row["note"] = f"no readable metrics.json ({type(exc).__name__}: {path})"
            continue
        except (KeyError, TypeError, IndexError) as exc:
            row["note"] = f"metrics.json lacks a number the summary reads ({type(exc).__name__}: {exc})"
            continue
        kind = (metrics.get("data") or {}).get("kind") if isinstance(metrics.get("data"), dict) else None
        row["data"] = DATA_WORDS.get(kind or data_kind, kind or data_kind)
    return rows


def training_record(planned: Iterable[Any], finished_before: set) -> dict[str, dict[str, Any]]:
    """Per problem, from its planned runs' checkpoints after the build: ``{"train_s", "trained", "loaded",
    "unfinished"}`` — ``train_s`` the sum of every finished run's ``extra["wall_s"]`` (as ``hw3 results`` shows it),
    ``trained`` the runs this build finished, ``loaded`` those finished before it (``finished_before``: their run
    folders). A folder two problems use (Problem 4 reads Problem 3's bounds) counts for the first."""
    from hw3lib.results import read_run

    seen: set = set()
    out: dict[str, dict[str, Any]] = {}
    for run in planned:
        if getattr(run, "later", False) or run.run_dir in seen:  # steps a later rung would add: not a run
            continue
        seen.add(run.run_dir)
        rec = out.setdefault(run.problem, {"train_s": 0.0, "trained": 0, "loaded": 0, "unfinished": 0})
        try:
            record = read_run(run.run_dir)
        except ValueError:
            record = None
        # a development run the successive halving stopped at its rung is done as planned
        stopped = getattr(run, "until", None) is not None and run.done >= run.steps
        if record is None or not (record.finished or stopped):
            rec["unfinished"] += 1
            continue
        rec["train_s"] += record.wall_s or 0.0
        rec["loaded" if run.run_dir in finished_before else "trained"] += 1
    return out
