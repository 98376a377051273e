"""Results tables for the notebook *and* for your own write-up: :func:`show_table`.

    from hw3lib.report.tables import show_table
    show_table(results_table(summary), "p3_accuracy", caption="Target-test accuracy (%), mean ± std over seeds")

displays the table (and its caption) in the notebook and writes ``NAME.csv``, ``NAME.md`` and ``NAME.tex`` to the
tables folder: ``$HW3_TABLES_DIR`` (``hw3 report`` sets it to ``REPORT_DIR/tables``), else
``<project>/report/tables``. Writes are atomic.
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


def show_table(table, name: str, caption: str | None = None, folder: str | Path | None = None) -> None:
    """Display ``table`` (with ``caption`` above it, bold) in the notebook, then :func:`write_table` it.

    Returns nothing, so it can end a cell without an ``Out[]`` line."""
    from IPython.display import Markdown, display

    write_table(table, name, caption, folder)
    if caption:
        display(Markdown(f"**{caption}**"))
    display(table)
