"""GTA at the public code's own budget and recipe on one pair (issue #28 item 3; result in docs/NOTES.md).

    python -m benchmarks.gta_public_budget --data data --out runs/gta_public [--source usps --target mnistm]

100 epochs of ``izip(source, target)`` as yogeshbalaji/Generate_To_Adapt's ``main.py`` runs them: min(#source
batches, #target batches) steps per epoch at batch 100 (7 on the embedded quick usps: 700 steps), lr 5e-4, widths
64, no warm start; 10 scored checkpoints. Prints the target accuracy at every checkpoint, each selection rule's pick
(the public code keeps the best source-validation one: ``acc@src_acc``) and D's last outputs, as JSON.
"""
from __future__ import annotations

import argparse
import json
import time

from hw3lib.data import digits
from hw3lib.train.uda import UDAConfig, train_or_load

EPOCHS, BATCH = 100, 100


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--source", default="usps")
    p.add_argument("--target", default="mnistm")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    per_epoch = min(len(digits(a.data, a.source, "train")), len(digits(a.data, a.target, "train"))) // BATCH
    cfg = UDAConfig(method="gta", source=a.source, target=a.target, steps=EPOCHS * per_epoch, batch_size=BATCH,
                    lr=5e-4, warmup_steps=0, evals=10, seed=a.seed)
    t = time.perf_counter()
    r = train_or_load(cfg, a.data, a.out)
    h = r.history
    print(json.dumps({"steps": cfg.steps, "metrics": r.metrics, "eval_step": h.get("eval_step"),
                      "target_acc": h.get("target_acc"), "src_acc": h.get("src_acc"),
                      **{k: h.get(k, [])[-5:] for k in ("d_real", "d_fake_src", "d_fake_tgt")},
                      "wall_s": round(time.perf_counter() - t, 1)}, default=float))


if __name__ == "__main__":
    main()
