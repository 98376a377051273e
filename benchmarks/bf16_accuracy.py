"""Accuracy in bf16 autocast against float32 on the CPU: UDA methods on the three pairs over three seeds, at the
quick budget, trained by the pool of ``hw3 runs train`` with the quick profile's recipe (400 steps at batch 64, 5
scored checkpoints: the same configs as the quick report's runs, so those can be copied in as the float32 runs).
``--handin CHOICES.json`` adds each pair's hand-in as that development protocol chose it.

    python -m benchmarks.bf16_accuracy --data DIR --methods dann,adamatch --amp off     # ~10 min on 2 cores
    python -m benchmarks.bf16_accuracy --data DIR --methods dann,adamatch --amp bf16
    python -m benchmarks.bf16_accuracy --data DIR --methods dann,adamatch              # both: the table

Finished runs are loaded (the runs live in ``--runs DIR/{off,bf16}/...``), so the last call only writes the
table: per method and pair, the target accuracy (the run's selected checkpoint, ``metrics["target_acc"]``) mean ±
std over the seeds in each precision, and the mean paired difference (same seed, bf16 − float32) against the
seed-to-seed std: bf16 "holds" where the difference is within that noise. Written to the ``bf16-accuracy`` section
of ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks import write_section

ROOT = Path(__file__).resolve().parents[1]


def planned(methods, seeds, amp: str, data: Path, runs: Path, steps: int, batch: int, evals: int,
            choices: Path | None = None) -> list:
    """The runs of ``methods`` (their papers' knobs) and, with ``choices`` (a development protocol's choices file),
    the hand-in of each pair: the method and knobs chosen for it, in ``runs/AMP/handin/``."""
    import json

    from hw3lib.data.layout import UDA_PAIRS
    from hw3lib.problems import Where
    from hw3lib.problems.base import uda_run
    from hw3lib.report import plan as planning
    from hw3lib.report.build import data_sizes
    from hw3lib.train.uda import UDAConfig, develop

    where = Where(data, planning.data_counts(data_sizes(data), None))
    base = UDAConfig(steps=steps, epochs=0.0, batch_size=batch, evals=evals, amp=amp, device="cpu")  # the quick recipe
    out = []
    for method in methods:
        for src, tgt in UDA_PAIRS:
            for seed in seeds:
                cfg = base.for_method(method, None, source=src, target=tgt, seed=seed)
                out.append(uda_run("bf16-check", cfg, runs / amp / cfg.name, where))
    record = json.loads(Path(choices).read_text()) if choices else None
    for src, tgt in (UDA_PAIRS if record else ()):
        cand = develop.choice(record, src, tgt)
        for seed in seeds:
            cfg = develop.candidate_config(base, cand, src, tgt, seed)
            out.append(uda_run(HANDIN, cfg, runs / amp / "handin" / f"{cfg.name}{cand.tag}", where))
    return out


HANDIN = "hand-in"   # the problem label of the hand-in's runs, and its row in the table


def table(runs_by_amp: dict[str, list]) -> tuple[str, list[dict]]:
    from hw3lib import checkpoint

    acc = {amp: {(HANDIN if r.problem == HANDIN else r.method, r.pair, r.seed):
                 float(checkpoint.load(r.run_dir)["extra"]["metrics"]["target_acc"]) for r in runs}
           for amp, runs in runs_by_amp.items()}
    keys = sorted({(m, p) for m, p, _ in acc["off"]}, key=lambda k: (k[0], k[1]))
    rows = []
    for method, pair in keys:
        seeds = sorted(s for m, p, s in acc["off"] if (m, p) == (method, pair))
        f32 = [acc["off"][method, pair, s] for s in seeds]
        bf = [acc["bf16"][method, pair, s] for s in seeds]
        diff = [b - f for b, f in zip(bf, f32)]
        noise = statistics.stdev(f32 + bf) if len(seeds) > 1 else float("nan")
        rows.append({"method": method, "pair": pair, "seeds": len(seeds),
                     "float32 %": f"{statistics.mean(f32):.2f} ± {statistics.stdev(f32) if len(f32) > 1 else 0:.2f}",
                     "bf16 %": f"{statistics.mean(bf):.2f} ± {statistics.stdev(bf) if len(bf) > 1 else 0:.2f}",
                     "bf16 − fp32 (paired mean)": f"{statistics.mean(diff):+.2f}",
                     "seed std (both)": f"{noise:.2f}",
                     "within noise": "yes" if abs(statistics.mean(diff)) <= noise else "no"})
    import pandas as pd

    return pd.DataFrame(rows).to_string(index=False), rows


def main(argv=None) -> int:
    from hw3lib import settings
    from hw3lib.device import cpu_isa
    from hw3lib.report.pool import choose_layout, run_pool

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="quick embedded data (or the course data)")
    ap.add_argument("--methods", default="dann,adamatch")
    ap.add_argument("--handin", default=None, metavar="CHOICES.json",
                    help="also each pair's hand-in as a development protocol chose it (hw3 develop's choices.json)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--amp", choices=("off", "bf16", "both"), default="both", help="which runs to train")
    ap.add_argument("--runs", default=str(ROOT / "runs" / "bf16-accuracy"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--evals", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args(argv)
    data, runs_root = Path(args.data).resolve(), Path(args.runs).resolve()
    methods = [m for m in args.methods.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",")]
    amps = ("off", "bf16") if args.amp == "both" else (args.amp,)
    by_amp = {amp: planned(methods, seeds, amp, data, runs_root, args.steps, args.batch_size, args.evals, args.handin)
              for amp in ("off", "bf16")}
    layout = choose_layout("cpu", jobs=args.jobs, threads=args.threads)
    t0 = time.perf_counter()
    for amp in amps:
        result = run_pool(by_amp[amp], data, layout, progress=settings.PROGRESS.value)
        print(f"{amp}: {result.summary()}", flush=True)
        if result.exit_code:
            return 1
    if args.amp != "both":
        return 0
    text, _ = table(by_amp)
    cmd = (f"python -m benchmarks.bf16_accuracy --data DATA --methods {args.methods} --seeds {args.seeds} "
           + (f"--handin {Path(args.handin).name} " if args.handin else "") +
           f"--steps {args.steps} --batch-size {args.batch_size} --evals {args.evals} --threads {args.threads}")
    section = (f"## bf16 accuracy on the CPU\n\nGenerated by `{cmd}` on "
               f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({cpu_isa()}; {layout.jobs} run(s) at once × "
               f"{layout.threads} thread(s); data {data.name}).\n\n```\n{text}\n```\n\n"
               "Target accuracy of each run's selected checkpoint (`metrics[\"target_acc\"]`), mean ± std over the "
               "seeds; 'bf16 − fp32' is the mean over seeds of the same seed's difference; 'within noise': its size "
               "is at most the seed-to-seed std of the six runs.\n")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return write_section(args.out, "bf16-accuracy", section, echo=text)


if __name__ == "__main__":
    raise SystemExit(main())
