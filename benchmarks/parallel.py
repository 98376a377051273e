"""Runs in parallel and bf16 on the CPU: per family, the training throughput of 1 run × 2 threads against
2 runs × 1 thread each, in float32 and in bf16 autocast, measured in one run of this script.

    python -m benchmarks.parallel [--seconds 6] [--only vae,gan,dann,gta] [--out benchmarks/RESULTS.md]

Each family's step is the quick profile's (VAE batch 32, DCGAN, the DANN network, GTA), run by the real training
code on random images of the right shape (:func:`hw3lib.report.plan.step_runner`) in spawned processes whose
``torch.set_num_threads`` is set before any work, as in the pool of ``hw3 runs train``. "2 × 1" starts two such
processes together (a barrier after their warm-up) and adds their rates. A process times its steps inside the
training loop (``hw3lib.train.loop.step_clock``: set-up and the warm-up steps left out) for about ``--seconds``.
The CPU's instruction set is read from ``/proc/cpuinfo`` (``hw3lib.device.cpu_isa``). Images/s count the images of
one domain per step (the batch). Results go to the ``parallel`` section of ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
import time
from pathlib import Path

import torch

from benchmarks import machine_line, write_section

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"vae": ("p1_vae", "vae"), "gan": ("p2_gan", "gan"), "dann": ("p3_dann", "dann"), "gta": ("p4_uda", "gta")}
LAYOUTS = ((1, 2), (2, 1))          # (runs at once, threads per run)
PRECISIONS = ("off", "bf16")        # amp: float32, bf16 autocast


def family_runs(families, runs_root: Path) -> dict:
    """One planned run per family from the quick profile's plan (its configs and batch sizes)."""
    from hw3lib.report import build

    plan = build.plan_report("quick", runs_root / "report", "cpu", runs_root=runs_root)
    runs = build.planned(plan, runs_root / "no-data", {})
    return {f: next(r for r in runs if r.problem == FAMILIES[f][0] and r.method == FAMILIES[f][1]) for f in families}


def _measure(run, amp: str, threads: int, seconds: float, barrier, results) -> None:
    """In a spawned process: warm up, wait for the others, then time about ``seconds`` of steps; images/s."""
    os.environ.update(HW3_PROGRESS="0", OMP_NUM_THREADS=str(threads))
    torch.set_num_threads(threads)
    from hw3lib.report.plan import step_runner
    from hw3lib.train.loop import step_clock

    run = dataclasses.replace(run, config=dataclasses.replace(run.config, amp=amp))
    steps = step_runner(run, torch.device("cpu"))
    with step_clock() as warm:
        steps(3)
    n = int(min(400, max(4, seconds / ((warm[3] - warm[1]) / 2))))
    barrier.wait()
    with step_clock() as stamps:
        steps(n + 1)
    results.put(run.batch * n / (stamps[n + 1] - stamps[1]))


def measure(run, amp: str, at_once: int, threads: int, seconds: float) -> float:
    """Total images/s of ``at_once`` processes training ``run``'s step side by side at ``threads`` each."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(at_once), ctx.Queue()
    procs = [ctx.Process(target=_measure, args=(run, amp, threads, seconds, barrier, results)) for _ in range(at_once)]
    for p in procs:
        p.start()
    rates = [results.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"a measuring process failed (exit {p.exitcode})")
    return sum(rates)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="timed seconds per measurement (default 6)")
    ap.add_argument("--only", default="vae,gan,dann,gta")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    ap.add_argument("--runs-root", default=str(ROOT / "runs" / "bench-parallel"), help="plan folder (nothing trained)")
    args = ap.parse_args(argv)
    families = [f for f in args.only.split(",") if f]
    runs = family_runs(families, Path(args.runs_root))
    load_before = os.getloadavg()[0]
    rows = []
    for f in families:
        rate = {}
        for amp in PRECISIONS:
            for at_once, threads in LAYOUTS:
                rate[amp, at_once] = measure(runs[f], amp, at_once, threads, args.seconds)
                print(f"{f}: {'bf16' if amp == 'bf16' else 'float32'} {at_once} run(s) × {threads} thread(s): "
                      f"{rate[amp, at_once]:.1f} img/s", flush=True)
        rows.append({"family": f, "batch": runs[f].batch,
                     "fp32 1×2 img/s": rate["off", 1], "fp32 2×1 img/s": rate["off", 2],
                     "2×1 / 1×2 fp32": rate["off", 2] / rate["off", 1],
                     "bf16 1×2 img/s": rate["bf16", 1], "bf16 2×1 img/s": rate["bf16", 2],
                     "2×1 / 1×2 bf16": rate["bf16", 2] / rate["bf16", 1],
                     "bf16 / fp32 at 1×2": rate["bf16", 1] / rate["off", 1],
                     "bf16 / fp32 at 2×1": rate["bf16", 2] / rate["off", 2]})
    import pandas as pd

    table = pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}")
    text = (f"## Runs in parallel and bf16 on the CPU\n\nGenerated by `python -m benchmarks.parallel"
            f"{'' if args.only == 'vae,gan,dann,gta' else ' --only ' + args.only}` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, ~{args.seconds:g} s timed per measurement.\n\n"
            f"{machine_line(load_before)}\n\n```\n{table}\n```\n\n"
            "1×2 = one run at 2 threads; 2×1 = two runs side by side at 1 thread each (two spawned processes, rates "
            "added); img/s = images of one domain per training step × steps/s, timed inside the training loop on "
            "the quick profile's steps with random images. bf16 = `amp=\"bf16\"` (torch.autocast bfloat16 around "
            "the forward passes, losses in float32); fp32 = `amp=\"off\"`.\n")
    return write_section(args.out, "parallel", text, echo=table)


if __name__ == "__main__":
    raise SystemExit(main())
