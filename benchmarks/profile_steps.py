"""Where a training step's time goes: per-operator time and arithmetic rate against the measured matmul rate.

    python -m benchmarks.profile_steps [--only vae,dann] [--steps 8] [--device cpu]

For each family, hw3lib's public training function runs on random images of the real shapes: a 1-step and a
3-step run under ``torch.utils.flop_counter`` (their difference: forward and backward FLOPs per step, per
operator), then several steps under ``torch.profiler`` (operator time; the step time from
``hw3lib.train.loop.step_clock``). The table groups the operators of the timed steps into convolutions,
matmuls, BatchNorm, pooling, the optimiser and the rest, and gives each group's share of the step and, where it
has FLOPs, its GFLOP/s as a share of a float32 matmul measured in the same run. A family below 70 % of the matmul
rate is then either slow in its arithmetic (convolutions under the matmul rate) or busy outside it (memory-bound
elementwise, BatchNorm, pooling and optimiser passes, which have almost no FLOPs).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.throughput import matmul_rate
from hw3lib.device import get_device
from hw3lib.report.plan import PlannedRun, step_runner
from hw3lib.train.loop import step_clock
from hw3lib.train.gan import GANConfig
from hw3lib.train.uda import UDAConfig
from hw3lib.train.vae import VAEConfig

GROUPS = (("conv", ("conv", "mkldnn_convolution", "convolution")), ("matmul", ("addmm", "mm", "linear", "bmm")),
          ("batchnorm", ("batch_norm",)), ("pool", ("pool",)), ("optimizer", ("adam", "_foreach", "lerp", "sqrt")))


def _group(name: str) -> str:
    low = name.lower()
    return next((g for g, keys in GROUPS if any(k in low for k in keys)), "other")


def _runs(device) -> dict[str, PlannedRun]:
    from pathlib import Path

    def run(method, cfg, batch):
        return PlannedRun("bench", method, "—", 0, 0, 0, batch, Path("."), cfg)

    return {
        "vae": run("vae", VAEConfig(batch_size=64, device=str(device)), 64),
        "gan": run("gan", GANConfig(batch_size=128, device=str(device)), 128),
        "source-only": run("source-only", UDAConfig(method="source-only", batch_size=128, device=str(device)), 128),
        "dann": run("dann", UDAConfig(method="dann", batch_size=128, device=str(device)), 128),
    }


def profile_family(run: PlannedRun, device, steps: int, peak: float) -> list[dict]:
    """Rows (family, group, share of the step's operator time, GFLOP/s, % of the matmul rate)."""
    from torch.utils.flop_counter import FlopCounterMode

    fn = step_runner(run, device)
    fn(2)  # warm-up: one-time costs
    def counted(n: int) -> dict[str, float]:
        out = defaultdict(float)
        with FlopCounterMode(display=False) as counter:
            fn(n)
        for op, f in counter.get_flop_counts().get("Global", {}).items():
            out[_group(str(op))] += f
        return out

    # Forward + backward FLOPs of one step: a 3-step run minus a 1-step run (set-up and final evaluation cancel).
    one, three = counted(1), counted(3)
    flops = {g: (three[g] - one[g]) / 2 for g in three}
    with profile(activities=[ProfilerActivity.CPU]) as prof, step_clock() as stamps:
        fn(steps + 1)
    step_s = (stamps[-1] - stamps[1]) / steps
    totals = defaultdict(float)
    for e in prof.key_averages():
        totals[_group(e.key)] += e.self_cpu_time_total / 1e6
    all_s = sum(totals.values())
    rows = []
    for g in [*dict(GROUPS), "other"]:
        if totals[g] == 0:
            continue
        per_step = step_s * totals[g] / all_s  # the group's seconds in one step
        rate = flops.get(g, 0) / per_step / 1e9 if flops.get(g) else float("nan")
        rows.append({"family": run.method, "group": g, "ms/step": 1e3 * per_step, "share %": 100 * totals[g] / all_s,
                     "GFLOP/s": rate, "% of matmul": 100 * rate / peak})
    total = sum(flops.values())
    rows.append({"family": run.method, "group": "step", "ms/step": 1e3 * step_s, "share %": 100.0,
                 "GFLOP/s": total / step_s / 1e9, "% of matmul": 100 * total / step_s / 1e9 / peak})
    return rows


def main(argv=None) -> int:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="vae,source-only,dann")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/PROFILE.md", help="markdown file ('' to only print)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HW3_PROGRESS", "0")
    device = get_device(args.device)
    peak = matmul_rate(device) / 1e9
    runs = _runs(device)
    rows = []
    for name in args.only.split(","):
        rows += profile_family(dataclasses.replace(runs[name]), device, args.steps, peak)
    import datetime
    import platform

    from hw3lib.checkpoint import atomic_write_text

    text = (f"# Where a training step's time goes\n\nGenerated by `python -m benchmarks.profile_steps --only {args.only} "
            f"--steps {args.steps}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.\n\n"
            f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, device {device} "
            f"({torch.get_num_threads()} threads); float32 matmul (2048²) measured in the same run: "
            f"{peak:.0f} GFLOP/s. "
            f"Batches: VAE 64, DCGAN 128, DANN network 128 per domain. Random images of the real shapes.\n\n```\n"
            + pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.1f}") + "\n```\n\n"
            "ms/step: the group's share of the operator time applied to the step time (timed inside the training "
            "loop, first step left out); GFLOP/s: the group's forward + backward FLOPs per step over that time. "
            "Groups without FLOPs (BatchNorm, pooling, the optimiser, elementwise 'other') are memory-bound passes.\n")
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
