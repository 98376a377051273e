"""The digit-adaptation methods, one module each; importing this package registers every module in it.

>>> from hw3lib.train.uda import methods
>>> methods.names()            # doctest: +SKIP
['cdan', 'dann', 'gta', 'mcc', 'source-only', 'target-only', ...]
"""
from __future__ import annotations

import importlib
import pkgutil

from hw3lib.train.uda.methods.base import (REGISTRY, Batch, Losses, Method, Step, accuracy_of, entropy, nll,
                                           register)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str) -> Method:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(names())}") from None


__all__ = ["REGISTRY", "Batch", "Losses", "Method", "Step", "accuracy_of", "entropy", "get", "names", "nll",
           "register"]
