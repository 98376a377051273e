"""Results tables for the notebook *and* for your own write-up: :func:`show_table`.

    from hw3lib.report.tables import show_table
    show_table(results_table(summary), "p3_accuracy", caption="Target-test accuracy (%), mean ± std over seeds")

displays the table (and its caption) in the notebook and writes ``NAME.csv``, ``NAME.md`` and ``NAME.tex`` to the
tables folder: ``$HW3_TABLES_DIR`` (``hw3 report`` sets it to ``REPORT_DIR/tables``), else
``<project>/report/tables``. Writes are atomic.

What is displayed is :func:`tidy`'s copy: missing values as ``—``, no index-name row, a ``(n = k)`` shared by every
cell said once in the caption. ``show_table(df, name, appendix=True)`` marks the table for the report's appendix:
``hw3 report`` moves it after the last problem and leaves a link where the notebook showed it (the notebook itself
still shows it in place); so it does with the tables :mod:`hw3lib.report.placement` names. :func:`near_best` keeps the rows within some points of the best of their group.
"""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Iterator

import pandas as pd

from hw3lib import settings
from hw3lib.checkpoint import atomic_write_text

ENV = "HW3_TABLES_DIR"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def tables_dir() -> Path:
    """``$HW3_TABLES_DIR``, else ``report/tables`` of the project (``hw3lib.project.project_root``)."""
    from hw3lib.project import project_root

    env = settings.TABLES_DIR.value
    return env if env else project_root() / "report" / "tables"


@contextlib.contextmanager
def tables_env(folder: str | Path) -> Iterator[Path]:
    """Set ``$HW3_TABLES_DIR`` to ``folder`` for the block (kernels started inside inherit it)."""
    old = os.environ.get(ENV)
    os.environ[ENV] = str(Path(folder).resolve())
    try:
        yield Path(os.environ[ENV])
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


def _cell(value) -> str:
    if isinstance(value, float):
        return "—" if value != value else f"{value:.6g}"
    return str(value)


def _frame(table) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a Series or a pandas Styler."""
    if isinstance(table, pd.Series):
        return table.to_frame()
    data = getattr(table, "data", table)  # Styler.data
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"show_table needs a pandas DataFrame, Series or Styler, not {type(table).__name__}")
    return data


def _keeps_index(df: pd.DataFrame) -> bool:
    """Write the index unless it is the default 0..n-1 without a name."""
    return not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
                and df.index.name is None)


def to_markdown(df: pd.DataFrame, caption: str | None = None) -> str:
    """A GitHub-flavoured pipe table (index as the first column when meaningful)."""
    index = _keeps_index(df)
    names = [str(n or "") for n in df.index.names] if index else []  # a MultiIndex: one column per level
    head = names + [str(c) for c in df.columns]
    keys = [i if isinstance(i, tuple) else (i,) for i in df.index]
    rows = [([_cell(k) for k in key] if index else []) + [_cell(v) for v in row]
            for key, row in zip(keys, df.itertuples(False))]

    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    out = [line(head), "|" + "|".join("---" for _ in head) + "|", *map(line, rows)]
    return (f"{caption}\n\n" if caption else "") + "\n".join(out) + "\n"


# Characters of the project's tables that pdflatex does not know without extra packages.
_TEX_UNICODE = {"→": r"$\rightarrow$", "±": r"$\pm$", "−": "$-$", "—": "---", "–": "--"}
_TEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                                                  "\\": r"\textbackslash{}"}


def _tex_text(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(c, c) for c in text)


def to_latex(df: pd.DataFrame, name: str, caption: str | None = None) -> str:
    """A ``table`` environment with ``\\caption`` and ``\\label{tab:NAME}``, text escaped, for pdflatex too."""
    tex = df.to_latex(index=_keeps_index(df), escape=True, float_format=lambda v: f"{v:.6g}", na_rep="—",
                      caption=_tex_text(caption) if caption else None, label=f"tab:{name}", position="ht")
    return "".join(_TEX_UNICODE.get(c, c) for c in tex)


def write_table(table, name: str, caption: str | None = None, folder: str | Path | None = None) -> dict[str, Path]:
    """Write ``folder/NAME.{csv,md,tex}`` (default folder: :func:`tables_dir`); returns the paths by suffix."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"table name {name!r}: use letters, digits, '_', '-', '.' (it becomes a file name)")
    df = _frame(table)
    folder = Path(folder) if folder is not None else tables_dir()
    texts = {"csv": df.to_csv(index=_keeps_index(df)), "md": to_markdown(df, caption),
             "tex": to_latex(df, name, caption)}
    paths = {}
    for suffix, text in texts.items():
        paths[suffix] = folder / f"{name}.{suffix}"
        atomic_write_text(paths[suffix], text)
    return paths


# "(n = 3)" after a cell's number: how many seeds (or values) it summarises.
_N = re.compile(r"\s*\(n\s*=\s*(\d+)\)")
NBSP = "\u00a0"
# Output metadata of the caption and the table show_table displays: {"name", "caption", "appendix"}; the report moves
# the table to its appendix when "appendix" is true (absent: true) or hw3lib.report.placement names it.
APPENDIX_KEY = "hw3_appendix"


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT


def _column_n(values: pd.Series) -> str | None:
    """The ``k`` every present cell of a column shows as ``(n = k)``; None if one shows none or they differ;
    ``""`` if no cell shows one."""
    cells = [str(v) for v in values if not _missing(v) and str(v).strip() not in ("", "—")]
    ns = {m.group(1) if (m := _N.search(c)) else None for c in cells}
    if ns <= {None}:
        return ""
    return ns.pop() if len(ns) == 1 and None not in ns else None


def tidy(table, caption: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """The table as the report shows it, and its caption:

    - a ``(n = k)`` that every cell carrying one shares is dropped from the cells and said once in the caption; else
      a column whose cells all show the same one says it once in its header; any other ``(n = k)`` stays glued to
      its number (non-breaking spaces: it never wraps apart);
    - missing values (NaN, None) are ``—``; a pair ``usps → mnistm`` in a cell or row label never wraps apart;
    - no index-name row: a named index's name moves to the header row's corner (two levels: ``a / b``).
    """
    df = _frame(table).copy()
    if not df.columns.is_unique:  # df[col] would be a frame: shown as it is
        return df, caption
    per_column = {col: _column_n(df[col]) for col in df.columns}
    shown = {k for k in per_column.values() if k}
    common = shown.pop() if len(shown) == 1 and None not in per_column.values() else None
    renames = {}
    for col in df.columns:
        values = df[col]
        if values.map(_missing).any():
            df[col] = values.astype(object).where(~values.map(_missing), "—")
        if per_column[col] == "":
            continue
        if common is None and (per_column[col] is None or isinstance(col, tuple)):  # each n stays with its number
            df[col] = df[col].map(lambda v: _N.sub(lambda m: f"{NBSP}(n{NBSP}={NBSP}{m.group(1)})", v)
                                  if isinstance(v, str) else v)
            continue
        df[col] = df[col].map(lambda v: _N.sub("", v) if isinstance(v, str) else v)
        if common is None:
            renames[col] = f"{col} (n = {per_column[col]})"
    df = df.rename(columns=renames)
    glue = lambda v: v.replace(" → ", f"{NBSP}→{NBSP}") if isinstance(v, str) else v  # noqa: E731
    df = df.apply(lambda col: col.map(glue)).rename(index=glue)  # a pair ("usps → mnistm") never wraps apart
    if common is not None:
        caption = f"{caption} (n = {common} per cell)" if caption else f"n = {common} per cell"
    names = [str(x) for x in df.index.names if x is not None]
    if names and not isinstance(df.columns, pd.MultiIndex):
        df = df.rename_axis(index=[None] * df.index.nlevels, columns=" / ".join(names))
    return df, caption


def near_best(table, column: str, points: float, by: str | None = None, higher: bool = True,
              chosen: str | None = None) -> pd.DataFrame:
    """The rows whose ``column`` (a number, or text that starts with one: ``"37.65 (n = 2)"``) lies within
    ``points`` of their group's reference row: the best (``higher``: the largest), or with ``chosen`` (a column whose
    non-empty cell marks it, e.g. ``"✓"``) the marked row, always kept. ``by``: an index level or a column naming
    the groups (None: the whole table is one)."""
    df = _frame(table)
    value = pd.to_numeric(df[column].astype(str).str.extract(r"^\s*([-+−]?\d+(?:\.\d+)?)", expand=False)
                          .str.replace("−", "-"), errors="coerce").reset_index(drop=True)
    group = pd.Series(0, index=value.index) if by is None else pd.Series(
        list(df.index.get_level_values(by) if by in (df.index.names or []) else df[by]))
    marked = pd.Series([False] * len(df)) if chosen is None else pd.Series(
        [not _missing(v) and str(v).strip() not in ("", "—") for v in df[chosen]])
    if chosen is None:
        ref = value.groupby(group).transform("max" if higher else "min")
    else:
        ref = value.where(marked).groupby(group).transform("max" if higher else "min")
    keep = marked | ((value - ref).abs() <= points + 1e-9)
    return df[keep.to_numpy()]


def show_table(table, name: str, caption: str | None = None, folder: str | Path | None = None, *,
               appendix: bool = False) -> None:
    """Display ``table`` as :func:`tidy` shows it (with its caption above it, bold) in the notebook, then
    :func:`write_table` it. ``appendix``: the report shows it in its appendix, with a link from here.

    Returns nothing, so it can end a cell without an ``Out[]`` line."""
    from IPython.display import Markdown, display

    write_table(table, name, caption, folder)
    from pandas.io.formats.style import Styler

    given = caption
    shown, caption = (table, caption) if isinstance(table, Styler) else tidy(table, caption)  # a Styler: as styled
    # every table carries its name: the report places it by name too (hw3lib.report.placement)
    meta = {"metadata": {APPENDIX_KEY: {"name": name, "caption": caption or name, "appendix": bool(appendix)}}}
    if caption:
        display(Markdown(f"**{caption}**" if given else f"*{caption}*"), **meta)
    display(shown, **meta)
