"""``hw3 train uda``: one digit-adaptation run into a run folder (Problems 3-4)."""
from __future__ import annotations

from hw3lib import checkpoint
from hw3lib.data.layout import DIGIT_DOMAINS
from hw3lib.device import AMP_HELP, AMP_MODES
from hw3lib.runtime import launch
from hw3lib.train.configs import config_from
from hw3lib.train.uda import methods
from hw3lib.train.uda.config import UDAConfig
from hw3lib.train.uda.runs import train_or_load


def config_from_cli(args) -> UDAConfig:
    """The run's config from ``hw3 train uda`` arguments. GTA keeps its own batch size and learning rate (the
    public code's 100 and 5e-4) among its knobs, so there ``--batch-size``/``--lr`` set those."""
    values = {k: v for k, v in vars(args).items() if v is not None}
    if args.method == "gta":
        values["gta"] = {k: values.pop(k) for k in ("batch_size", "lr") if k in values}
    return config_from(UDAConfig, values)


def _cli_train(args) -> int:
    config = config_from_cli(args).validate()
    with launch(config) as rt:
        result = train_or_load(config, args.data, args.out, runtime=rt, keyed=False)
    if rt.is_main:
        print(f"{config.name}: target ({config.target}) test accuracy {result.metrics['target_acc']:.2f}% "
              f"(reported model); checkpoint {checkpoint.resolve(args.out)}")
    return 0


def register(groups) -> None:
    p = groups["train"].add_parser(
        "uda", help="train a digit domain-adaptation run (" + ", ".join(methods.names()) + ")",
        description="Train one digit adaptation run into a run folder (Problems 3-4). Target labels are never "
                    "used for training or model selection.")
    p.add_argument("--method", choices=methods.names(), default="dann")
    p.add_argument("--source", choices=DIGIT_DOMAINS, required=True)
    p.add_argument("--target", choices=DIGIT_DOMAINS, required=True)
    p.add_argument("--data", default="data", help="data folder in the course layout (default: data)")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt is written there)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=float, default=None,
                   help=f"budget in epochs over the larger training domain (default {UDAConfig.epochs:g}; "
                        "ignored when --steps is given)")
    p.add_argument("--steps", type=int, default=None, help="budget in optimisation steps instead of epochs")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"per-domain batch size (default {UDAConfig.batch_size}; GTA: the public code's 100)")
    p.add_argument("--evals", type=int, default=None,
                   help=f"checkpoints scored by the unsupervised validators; the best by information maximisation "
                        f"is reported (default {UDAConfig.evals}; 0: the last step)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"Adam learning rate, constant (default {UDAConfig.lr:g}; GTA: the public code's 5e-4 "
                        "with its 1/(1+1e-4·step) decay)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=None)
    p.add_argument("--max-steps", type=int, default=None, help="stop early (smoke runs)")
    p.add_argument("--gray", action="store_true", default=None, help="luminance images (GTA option)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=AMP_MODES, default=None, help=AMP_HELP)
    p.set_defaults(func=_cli_train)
