"""The digit-adaptation methods of Problems 3-4, one module each; importing this package registers every module in
it, and the registry is the one source of truth for what a method is (:class:`Method`): its name, label, paper,
role, place in the tables, hyperparameters and training hooks.

>>> from hw3lib import methods
>>> [m.name for m in methods.ordered()]          # doctest: +SKIP
['source-only', 'dann', 'gta', 'cdan', 'mcc', 'adamatch', ..., 'target-only']

Adding a method is adding a file to this folder (see :mod:`hw3lib.methods.base`).
"""
from __future__ import annotations

import importlib
import pkgutil

from hw3lib.methods.base import (REGISTRY, ROLES, Batch, Context, Losses, Method, NoKnobs, Step, accuracy_of,
                                 label_losses, nll, register)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")


def get(name: str) -> Method:
    """The registered method ``name``; an unknown name is a one-line ``ValueError`` listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(names())}") from None


def ordered(*roles: str) -> list[Method]:
    """The registered methods in table order, only those of ``roles`` when given."""
    return sorted((m for m in REGISTRY.values() if not roles or m.role in roles), key=lambda m: (m.order, m.name))


def names(*roles: str) -> list[str]:
    """Method names in table order (``--method`` choices), only those of ``roles`` when given."""
    return [m.name for m in ordered(*roles)]


def improved(*, shared_recipe: bool = False) -> list[str]:
    """The improved methods (Problem 4's candidates), in table order; with ``shared_recipe`` only those trained on
    the recipe the methods share (not GTA, which keeps the public code's)."""
    return [m.name for m in ordered("improved") if not (shared_recipe and m.own_recipe)]


def _one(found: list[Method], what: str) -> str:
    if len(found) != 1:
        raise ValueError(f"the registry has {len(found)} {what} method(s) ({', '.join(m.name for m in found)}); "
                         "expected exactly one")
    return found[0].name


def lower() -> str:
    """The lower bound: the bound trained on source labels (source-only)."""
    return _one([m for m in ordered("bound") if m.labelled == "source"], "lower-bound")


def upper() -> str:
    """The upper bound: the bound trained on target labels (target-only)."""
    return _one([m for m in ordered("bound") if m.labelled == "target"], "upper-bound")


def baseline() -> str:
    """The baseline every improved method is weighed against (DANN)."""
    return _one(ordered("baseline"), "baseline")


def bounds_and_baseline() -> tuple[str, ...]:
    """Problem 3's rows in table order: the lower bound, the baseline, the upper bound."""
    return tuple(names("bound", "baseline"))


def own_recipe() -> str:
    """The improved method trained on a recipe of its own (GTA, the public code's), with its own runs, tables and
    figures in Problem 4 (``Method.own_recipe``)."""
    return _one([m for m in ordered("improved") if m.own_recipe], "own-recipe")


def label(name: str) -> str:
    """A method's table label (the name itself for a name the registry does not know)."""
    return REGISTRY[name].label if name in REGISTRY else name


__all__ = ["REGISTRY", "ROLES", "Batch", "Context", "Losses", "Method", "NoKnobs", "Step", "accuracy_of", "baseline",
           "bounds_and_baseline", "get", "improved", "label", "label_losses", "lower", "names", "nll", "ordered",
           "own_recipe", "register", "upper"]
