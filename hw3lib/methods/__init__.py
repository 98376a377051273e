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


def label(name: str) -> str:
    """A method's table label (the name itself for a name the registry does not know)."""
    return REGISTRY[name].label if name in REGISTRY else name


__all__ = ["REGISTRY", "ROLES", "Batch", "Context", "Losses", "Method", "NoKnobs", "Step", "accuracy_of", "get",
           "improved", "label", "label_losses", "names", "nll", "ordered", "register"]
