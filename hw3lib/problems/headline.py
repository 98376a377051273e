"""What the report's first page says of a problem's results (``hw3lib.report.glance``): the shared formatting of the
lines each problem's module writes from its ``metrics.json`` (``Problem.headline``)."""
from __future__ import annotations

from typing import Any, Mapping

Lines = tuple[list[str], list[str]]  # (this run's lines, the reference lines: a baseline or the course report's)


def mean(cell: Mapping[str, Any] | None) -> str:
    """``71.20`` or ``71.20 ± 1.05`` (more than one seed), from a target-accuracy cell of metrics.json."""
    if not cell:
        return "—"
    if cell.get("n", 1) > 1 and cell.get("std") is not None:
        return f"{cell['mean']:.2f} ± {cell['std']:.2f}"
    return f"{cell['mean']:.2f}"


def n_note(acc: Mapping[str, Mapping[str, Any]]) -> str:
    ns = sorted({c.get("n", 1) for cells in acc.values() for c in cells.values()})
    return f"target-test accuracy (%), n = {'/'.join(map(str, ns))} seed(s) per value"


def pairs(acc: Mapping[str, Mapping[str, Any]]) -> list[str]:
    from hw3lib.data import UDA_PAIRS
    from hw3lib.eval.uda import pair_key

    keys = {k for cells in acc.values() for k in cells}
    return [pair_key(*p) for p in UDA_PAIRS if pair_key(*p) in keys] + sorted(keys - {pair_key(*p) for p in UDA_PAIRS})


def pair(key: str) -> str:
    """``usps_mnistm`` → ``usps → mnistm`` (:func:`hw3lib.eval.uda.pair_label`, the tables' spelling)."""
    from hw3lib.eval.uda import pair_label

    return pair_label(*key.split("_", 1))
