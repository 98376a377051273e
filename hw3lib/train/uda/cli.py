"""``hw3 train uda``: one digit-adaptation run into a run folder (Problems 3-4)."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable

from hw3lib import checkpoint, methods
from hw3lib.data.layout import DIGIT_DOMAINS
from hw3lib.device import AMP_HELP, AMP_MODES
from hw3lib.runtime import launch
from hw3lib.train.configs import config_from
from hw3lib.train.uda.config import DEFAULT_BATCH, DEFAULT_LR, UDAConfig
from hw3lib.train.uda.runs import store_extra, train_or_load

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _parse(value: str, default: Any, where: str) -> Any:
    """``value`` as the type of the knob's ``default`` (bool, int, float or str)."""
    try:
        if isinstance(default, bool):
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError
            return value.lower() in _TRUE
        return type(default)(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a {type(default).__name__}") from None


def parse_sets(items: Iterable[str], method: str) -> dict[str, Any]:
    """``["mcc.temperature=2.0", ...]`` → ``{"temperature": 2.0}`` for ``method``: each knob named
    ``METHOD.KNOB=VALUE``, typed like its default; another method's or an unknown knob is a one-line error."""
    spec, out = methods.get(method), {}
    fields = {f.name: f for f in dataclasses.fields(spec.knobs)}
    for item in items:
        key, sep, value = item.partition("=")
        prefix, dot, name = key.partition(".")
        if not sep or not dot:
            raise ValueError(f"--set {item!r}: expected METHOD.KNOB=VALUE, e.g. mcc.temperature=2.0")
        if prefix != method:
            raise ValueError(f"--set {item!r}: a knob of {prefix!r}, but --method is {method!r}")
        if name not in fields:
            raise ValueError(f"--set {item!r}: {method} has no knob {name!r}; its knobs: "
                             + (", ".join(fields) or "none"))
        out[name] = _parse(value, getattr(spec.knobs(), name), f"--set {key}")
    return out


def applied_choice(args) -> dict[str, Any] | None:
    """``--choices FILE``: the development protocol's choice for this pair, checked against ``--data`` (a choice
    made on other data is refused) and ``--method``; what the run records."""
    if not args.choices:
        return None
    from hw3lib.data import data_id
    from hw3lib.train.uda import develop

    path = Path(args.choices)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--choices {path}: not a readable choices file ({exc})") from None
    chosen = develop.choice(record, args.source, args.target)
    member = getattr(args, "member", None)
    if chosen.is_ensemble and member is None:
        raise ValueError(f"--choices {path} chose an ensemble of {len(chosen.members)} for {args.source} → "
                         f"{args.target} ({chosen.label}): train each with --member 1..{len(chosen.members)} into "
                         f"its own --out, then hw3 predict --ckpt OUT1 OUT2 ...")
    if member is not None and not 1 <= member <= len(chosen.members):
        raise ValueError(f"--member {member}: the choice for {args.source} → {args.target} has "
                         f"{len(chosen.members)} member(s)")
    cand = chosen.members[(member or 1) - 1]
    made_on = record["pairs"][f"{args.source}_{args.target}"].get("data_id")
    here = data_id(args.data, develop.development_domains(args.source, args.target))
    if made_on != here:
        raise ValueError(f"--choices {path} was made on other data (data id {made_on}; --data {args.data} is "
                         f"{here}): run hw3 develop on this data")
    if args.method not in (None, cand.method):
        raise ValueError(f"--method {args.method} contradicts --choices, which chose {cand.method} for "
                         f"{args.source} → {args.target}")
    return {"file": str(path.resolve()), "pair": f"{args.source}_{args.target}", "method": cand.method,
            "knobs": cand.overrides, "label": cand.label, "choice": chosen.label}


def config_from_cli(args, choice: dict[str, Any] | None = None) -> UDAConfig:
    """The run's config from ``hw3 train uda`` arguments (unset options keep the config's and the method's
    defaults); ``choice``: :func:`applied_choice`, whose method and knobs come under ``--set``."""
    method = (choice or {}).get("method") or args.method or methods.baseline()
    values = {k: v for k, v in vars(args).items() if v is not None and k not in ("set", "choices", "method")}
    knobs = {**(choice or {}).get("knobs", {}), **parse_sets(args.set or (), method)}
    return config_from(UDAConfig, {**values, "method": method, "knobs": knobs})


def _cli_train(args) -> int:
    choice = applied_choice(args)
    config = config_from_cli(args, choice).validate()
    with launch(config) as rt:
        result = train_or_load(config, args.data, args.out, runtime=rt, keyed=False)
        if choice is not None:
            store_extra(args.out, rt, choices=choice)
    if rt.is_main:
        print(f"{config.name}: target ({config.target}) test accuracy {result.metrics['target_acc']:.2f}% "
              f"(reported model); checkpoint {checkpoint.resolve(args.out)}")
    return 0


def knobs_help() -> str:
    """Every method's knobs with their defaults (the papers' values), for ``--help``."""
    lines = ["method knobs (--set METHOD.KNOB=VALUE; defaults are the papers' values):"]
    for m in methods.ordered():
        knobs = ", ".join(f"{f.name}={getattr(m.knobs(), f.name)!r}" for f in dataclasses.fields(m.knobs))
        shared = ", ".join(f"{k} {v:g}" for k, v in m.defaults.items())
        lines.append(f"  {m.name}: {knobs or '(none)'}" + (f"; default {shared}" if shared else "")
                     + f" — {m.paper}")
    return "\n".join(lines)


def register(groups) -> None:
    p = groups["train"].add_parser(
        "uda", help="train a digit domain-adaptation run (" + ", ".join(methods.names()) + ")",
        description="Train one digit adaptation run into a run folder (Problems 3-4). Target labels are never "
                    "used for training or model selection.",
        epilog=knobs_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=methods.names(), default=None, help="default: dann, or --choices' choice")
    p.add_argument("--source", choices=DIGIT_DOMAINS, required=True)
    p.add_argument("--target", choices=DIGIT_DOMAINS, required=True)
    p.add_argument("--data", default="data", help="data folder in the course layout (default: data)")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt is written there)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=float, default=None,
                   help=f"budget in epochs over the larger training domain (default {UDAConfig.epochs:g}; "
                        "ignored when --steps is given)")
    p.add_argument("--steps", type=int, default=None, help="budget in optimisation steps instead of epochs")
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="steps on the source labels alone before adaptation (default 0)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"per-domain batch size (default {DEFAULT_BATCH}, or the method's own: see below)")
    p.add_argument("--evals", type=int, default=None,
                   help=f"checkpoints scored by the unsupervised validators; the best by information maximisation "
                        f"is reported (default {UDAConfig.evals}; 0: the last step)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (default {DEFAULT_LR:g}, constant Adam, or the method's own: see below)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=None)
    p.add_argument("--set", action="append", metavar="METHOD.KNOB=VALUE",
                   help="a knob of the method, e.g. --set mcc.temperature=2.0 (repeatable; see below)")
    p.add_argument("--choices", metavar="FILE", default=None,
                   help="apply the development protocol's choice for this pair (method and knobs) from a choices.json "
                        "(hw3 develop, RUNS/p4_uda/choices.json) made on the same --data; the run records it")
    p.add_argument("--member", type=int, default=None, metavar="I",
                   help="with --choices that chose an ensemble: train its I-th member (1-based)")
    p.add_argument("--max-steps", type=int, default=None, help="stop early (smoke runs)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=AMP_MODES, default=None, help=AMP_HELP)
    p.set_defaults(func=_cli_train)
