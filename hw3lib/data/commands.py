"""``hw3 data make`` and ``hw3 data check``."""
from __future__ import annotations

import argparse
import time

from hw3lib import settings
from hw3lib.data.layout import FACE_SIZES


def _progress() -> bool:
    return settings.PROGRESS.value


def _make(args: argparse.Namespace) -> int:
    from hw3lib.data.make import make_data

    t0 = time.perf_counter()
    m = make_data(args.out, args.size, seed=args.seed, figures_dir=args.figures, progress=_progress(),
                  only=args.only)
    counts = []
    if "face" in m["counts"]:
        c = m["counts"]["face"]
        counts.append(f"faces {c['train']}/{c['test']}")
    for d, c in m["counts"].get("digits", {}).items():
        counts.append(f"{d} {c['train']}/{c['test']}")
    what = f"{args.out} (size {m['size']}, seed {m['seed']}; train/test: {', '.join(counts)})"
    if not m["made"]:
        print(f"data already made: {what}")
        return 0
    print(f"made {', '.join(m['regenerated'])} in {time.perf_counter() - t0:.1f} s: {what}")
    if m["figures"]:
        print(f"contact sheets: {', '.join(m['figures'])}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from hw3lib.data.check import check_data, format_summary

    print(format_summary(check_data(args.data)))
    return 0


def register(groups: dict) -> None:
    p = groups["data"].add_parser(
        "make", help="generate the embedded data set in the course layout",
        description="Generate the embedded (synthetic) faces and digits in the course's hw3_data layout, with a "
                    "manifest (hw3_data.json, written last) and contact sheets. Re-running with the same "
                    "arguments does nothing.")
    p.add_argument("--out", default="data", help="data folder to write (default: data)")
    p.add_argument("--size", choices=tuple(FACE_SIZES), default="quick",
                   help="smoke (seconds), quick (default, about a minute) or full (course-sized)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p.add_argument("--only", choices=("faces", "digits"), default=None, help="make only this part")
    p.add_argument("--figures", default="figures", metavar="DIR",
                   help="where the contact sheets data_*.png go (default: figures)")
    p.set_defaults(func=_make)

    p = groups["data"].add_parser(
        "check", help="validate a data folder and summarise it",
        description="Load and validate every face split and digit domain found in a data folder (course layout "
                    "or torchvision formats); print counts, image sizes and modes, label balance and attribute "
                    "frequencies. Exit 2 with a one-line error on the first problem.")
    p.add_argument("--data", default="data", metavar="DIR", help="data folder (default: data)")
    p.set_defaults(func=_check)
