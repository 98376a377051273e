"""Benchmarks; each writes its own section of a results file (:func:`write_section`)."""
from __future__ import annotations

import re
from pathlib import Path


def write_section(path: str | Path, name: str, text: str) -> None:
    """Put ``text`` between ``<!-- NAME -->`` and ``<!-- /NAME -->`` in ``path`` (replacing what was there, or
    appended), leaving the other benchmarks' sections as they are; written atomically."""
    from hw3lib.checkpoint import atomic_write_text

    path = Path(path)
    old = path.read_text() if path.is_file() else ""
    block = f"<!-- {name} -->\n{text.strip()}\n<!-- /{name} -->\n"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->\n.*?<!-- /{re.escape(name)} -->\n", re.S)
    new = pattern.sub(lambda _: block, old, count=1) if pattern.search(old) else (
        old + ("\n" if old and not old.endswith("\n\n") else "") + block)
    atomic_write_text(path, new)
