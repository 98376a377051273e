"""The DCGAN recipe's ablation on a validation split of the training faces (issue #31; table in docs/NOTES.md).

    python -m benchmarks.gan_recipe --data DIR --out runs/gan_recipe [--conditions a,b] [--seeds 0,1,2]
    python -m benchmarks.gan_recipe --data DIR --out runs/gan_recipe --table      # the table of what has run

Each condition trains the quick profile's DCGAN (625 steps at batch 32, ngf = ndf = 32: what Problem 2 trains on the
embedded quick data) on the training faces less a validation split of ``--val`` faces, and scores ``--n`` samples of
the raw G and of its weight average against the validation faces in the feature space of an attribute classifier
trained on the same reduced training set: FD, precision, recall, coverage, C2ST accuracy. The test faces are never
read. Runs live in ``OUT/<condition>-s<seed>`` and are loaded when finished; scores are appended to
``OUT/results.jsonl``; ``--table`` prints the means ± std over seeds (value and n = 1 for one seed).

``--reference test`` is the check after the choice, not part of it: the condition trained on all training faces and
scored against the test faces, as Problem 2's table scores it (runs in ``OUT/test-<condition>-s<seed>``).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

from hw3lib import checkpoint
from hw3lib.data import FaceSet, load_faces
from hw3lib.device import seed_everything
from hw3lib.eval.gan import compare
from hw3lib.models.attr import AttributeClassifier
from hw3lib.train import gan
from hw3lib.train.attr import AttrConfig, train_attr_classifier
from hw3lib.train.folders import finished_checkpoint

POLICY = "color,translation,cutout"
BASE = dict(epochs=10, max_steps=625, batch_size=32, ngf=32, ndf=32, device="cpu")
# Every condition keeps a weight average (it changes no training step), so each run scores both the raw G and the
# average. "baseline" is the recipe the report used before: no DiffAugment, no TTUR, no label smoothing.
CONDITIONS = {
    "baseline": dict(diffaugment=""),
    "diffaug": dict(diffaugment=POLICY),
    "diffaug_ttur": dict(diffaugment=POLICY, lr=1e-4, lr_d=4e-4),
    "diffaug_ls": dict(diffaugment=POLICY, real_label=0.9),
    "diffaug_ttur_ls": dict(diffaugment=POLICY, lr=1e-4, lr_d=4e-4, real_label=0.9),
    # added after seed 0 showed the full policy slowing the 625 steps down: the levers without it, and its parts
    "ttur": dict(diffaugment="", lr=1e-4, lr_d=4e-4),
    "ls": dict(diffaugment="", real_label=0.9),
    "diffaug_t": dict(diffaugment="translation"),
    "diffaug_tc": dict(diffaugment="translation,cutout"),
    # added for recall (2026-12-05, fourth session; the discriminator wins throughout, D(x) ~ 0.9, D(G(z)) ~ 0.08):
    # a slower D, a faster G, and twice the updates at the same images seen
    "d_slow": dict(lr_d=1e-4),
    "g_fast": dict(lr=4e-4, lr_d=2e-4),
    "b16": dict(batch_size=16, max_steps=1250),
    # round 2, after round 1 showed g_fast's FD gain: is it G's step size or both nets' ("lr4")?
    "g_fast_hi": dict(lr=8e-4, lr_d=2e-4),
    "lr4": dict(lr=4e-4, lr_d=4e-4),
    # round 3, after g_fast_hi (8e-4 / 2e-4) was adopted: does G gain further beyond 4x D's rate, or with both faster?
    "g_x8": dict(lr=1.6e-3, lr_d=2e-4),
    "lr8": dict(lr=8e-4, lr_d=4e-4),
}
METRICS = ("fd", "precision", "recall", "coverage", "c2st")
VAL_SEED = 12345  # the permutation that picks the validation faces


def split(train: FaceSet, n_val: int) -> tuple[FaceSet, FaceSet]:
    """(fit, validation): a fixed random ``n_val`` of the training faces held out."""
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(VAL_SEED))

    def take(idx):
        return FaceSet(train.images[idx], train.attrs[idx], tuple(train.names[i] for i in idx.tolist()),
                       train.attr_names, train.source)
    return take(perm[n_val:]), take(perm[:n_val])


def classifier(fit: FaceSet, run_dir: Path) -> AttributeClassifier:
    """The quick profile's attribute classifier (``AttrConfig(epochs=2)``), trained on ``fit``."""
    cfg = AttrConfig(epochs=2, seed=0, device="cpu")
    seed_everything(cfg.seed)
    model = AttributeClassifier(width=cfg.width)
    train_attr_classifier(model, fit, cfg, run_dir=run_dir)  # loads the finished run
    return model.eval()


def run(condition: str, seed: int, fit: FaceSet, run_dir: Path) -> tuple[dict, float]:
    cfg = gan.GANConfig(**{**BASE, **CONDITIONS[condition]}, seed=seed)
    if finished_checkpoint(run_dir, gan.KIND, cfg) is None:
        seed_everything(seed)
        netG, netD = gan.build_models(cfg)
        gan.train_gan(netG, netD, fit, cfg, run_dir=run_dir)
    payload = checkpoint.load(run_dir)
    return payload, float(payload["extra"]["wall_s"])


def score(payload: dict, model: AttributeClassifier, ref: FaceSet, n: int, seed: int, noise: int,
          which: tuple[str, ...] = ("raw", "ema", "ema_bn")) -> dict[str, dict]:
    """Metrics of ``n`` samples (noise seed ``noise``) against ``ref`` of the raw G, the average as the checkpoint
    holds it (``ema``) and the average with its BatchNorm statistics recomputed from 512 z (``ema_bn``, what
    ``GANConfig.ema_bn_samples`` does at the end of a run; the same as ``ema`` for runs that did it)."""
    ema, _, cfg = gan.load_models(payload)
    nets = {"raw": gan.load_raw_generator(payload), "ema": ema, "ema_bn": copy.deepcopy(ema)}
    gan.refresh_bn(nets["ema_bn"], 512, cfg.seed)
    samples = {k: gan.generate(nets[k], n, noise) for k in which}
    return compare(model, ref, samples, seed=seed).metrics


def table(results: list[dict]) -> str:
    """Markdown: one row per (condition, generator), mean ± std over seeds of :data:`METRICS` and wall time."""
    import numpy as np

    rows = {}
    for r in results:
        rows.setdefault((r.get("reference", "validation"), r["condition"], r["generator"]), []).append(r)
    head = ["scored against", "condition", "G", "n"] + list(METRICS) + ["train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (ref, cond, which), rs in rows.items():
        def cell(values):
            v = np.asarray(values, dtype=float)
            return f"{v.mean():.3g}" if len(v) == 1 else f"{v.mean():.3g} ± {v.std(ddof=1):.2g}"
        cells = [cell([r["metrics"][m] for r in rs]) for m in METRICS] + [cell([r["wall_s"] for r in rs])]
        lines.append(f"| {ref} | {cond} | {which} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _append(log: Path, record: dict) -> None:
    with log.open("a") as f:
        f.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--val", type=int, default=500, help="validation faces held out of the training faces")
    ap.add_argument("--n", type=int, default=500, help="samples scored per generator")
    ap.add_argument("--reference", choices=("validation", "test"), default="validation",
                    help="score against the held-out training faces (the choice) or the test faces (the check after)")
    ap.add_argument("--table", action="store_true", help="print the table of OUT/results.jsonl and exit")
    ap.add_argument("--rescore", action="store_true",
                    help="score the recomputed-statistics average (ema_bn) of every finished run that lacks it")
    args = ap.parse_args(argv)
    out = Path(args.out)
    log = out / "results.jsonl"
    if args.table:
        print(table([json.loads(line) for line in log.read_text().splitlines() if line.strip()]))
        return 0
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        print(f"gan_recipe: unknown condition {unknown[0]!r} (known: {', '.join(CONDITIONS)})", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    if args.reference == "test":
        fit, ref = load_faces(args.data, "train"), load_faces(args.data, "test")
        model, prefix = classifier(fit, out / "attr-test"), "test-"
    else:
        fit, ref = split(load_faces(args.data, "train"), args.val)
        model, prefix = classifier(fit, out / "attr"), ""
    records = [json.loads(line) for line in (log.read_text().splitlines() if log.is_file() else []) if line.strip()]
    done = {(r.get("reference", "validation"), r["condition"], r["seed"], r["generator"]) for r in records}
    if args.rescore:  # weights trained before ema_bn_samples existed: the statistics are recomputed here
        for r in records:
            key = (r.get("reference", "validation"), r["condition"], r["seed"])
            if r["generator"] != "ema" or key[0] != args.reference or (*key, "ema_bn") in done:
                continue
            payload = checkpoint.load(out / f"{prefix}{r['condition']}-s{r['seed']}")
            noise = r["seed"] + 1 if args.reference == "test" else 1000 + r["seed"]
            m = score(payload, model, ref, args.n, r["seed"], noise, which=("ema_bn",))["ema_bn"]
            _append(log, {**r, "generator": "ema_bn", "metrics": m})
            done.add((*key, "ema_bn"))
            print(r["condition"], r["seed"], "ema_bn", {k: round(m[k], 3) for k in METRICS}, flush=True)
        return 0
    for cond in conditions:
        for seed in (int(s) for s in args.seeds.split(",")):
            if (args.reference, cond, seed, "ema") in done:
                continue
            payload, wall = run(cond, seed, fit, out / f"{prefix}{cond}-s{seed}")
            # the test check draws the noise Problem 2's table draws (seed + 1); the validation runs other noise
            noise = seed + 1 if args.reference == "test" else 1000 + seed
            for which, m in score(payload, model, ref, args.n, seed, noise).items():
                _append(log, {"reference": args.reference, "condition": cond, "seed": seed, "generator": which,
                              "wall_s": wall, "config": payload["config"], "metrics": m})
                print(cond, seed, which, {k: round(m[k], 3) for k in METRICS}, f"{wall:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
