"""``hw3`` — one command line for data, training, generation, prediction, evaluation and the report.

Subcommands are registered by the modules that implement them (``register(groups)``), so this file only
wires groups together and turns library errors into one-line messages with a non-zero exit.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from hw3lib import settings

# Modules that add subcommands; each has ``register(groups: dict[str, argparse._SubParsersAction])``.
COMMAND_MODULES = (
    "hw3lib.data.commands",
    "hw3lib.train.vae",
    "hw3lib.train.gan",
    "hw3lib.train.uda",
    "hw3lib.predict",
    "hw3lib.report.build",
    "hw3lib.report.develop",
    "hw3lib.report.runs",
    "hw3lib.project",
    "hw3lib.handin",
    "hw3lib.results",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other hw3 error
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hw3", description=__doc__.splitlines()[0].split(" — ", 1)[-1])
    parser.add_argument("--version", action="version", version=f"hw3lib {_version()}")
    root = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    root.required = True
    groups = {"root": root}
    for name, help_ in (("data", "make or check a data folder"), ("train", "train a model into a run folder"),
                        ("generate", "write a grid of generated faces")):
        p = root.add_parser(name, help=help_, description=help_)
        sub = p.add_subparsers(dest=f"{name}_command", metavar="WHAT", parser_class=_Parser)
        sub.required = True
        groups[name] = sub
    for module in COMMAND_MODULES:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue  # not built yet
            raise
        mod.register(groups)
    return parser


def _version() -> str:
    from hw3lib import __version__
    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from hw3lib.train.loop import DivergenceError, Interrupted
    try:
        return int(args.func(args) or 0)
    except Interrupted as exc:
        print(f"hw3: {exc}", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, DivergenceError) as exc:
        if settings.DEBUG.value:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"hw3: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
