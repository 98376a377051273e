"""The problems of the homework, one module each (``p1_vae``, ``p2_gan``, ``p3_dann``, ``p4_uda``); importing this
package registers every module in it. A problem's module is the one source of its runs: ``hw3 report --plan``, the
pool, Slurm, ``hw3 develop``, ``hw3 handin`` and its notebook all call it (:mod:`hw3lib.problems.base`).

>>> from hw3lib import problems
>>> [p.key for p in problems.ordered()]          # doctest: +SKIP
['p1_vae', 'p2_gan', 'p3_dann', 'p4_uda']

Adding a problem is adding a file to this folder and its notebook to ``notebooks/``.
"""
from __future__ import annotations

import importlib
import pkgutil

from hw3lib.problems.base import (REGISTRY, Handin, Params, PlannedRun, Problem, Where, ordered, register,
                                  seeds_of)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")


def get(key: str) -> Problem:
    """The registered problem ``key`` (``p4_uda``, or its short name ``p4``); an unknown key is a one-line
    ``ValueError`` listing the known ones."""
    for p in REGISTRY.values():
        if key in (p.key, p.short):
            return p
    raise ValueError(f"unknown problem {key!r}; known: {', '.join(keys())} (or {', '.join(p.short for p in ordered())})")


def keys() -> list[str]:
    """The problems' keys (notebook stems) in the report's order."""
    return [p.key for p in ordered()]


__all__ = ["REGISTRY", "Handin", "Params", "PlannedRun", "Problem", "Where", "get", "keys", "ordered", "register",
           "seeds_of"]
