"""The check a notebook makes before loading: is the data there, and if not, make it or say how.

>>> data_dir = require_data(project_path("data"), make=False, part="faces")   # FileNotFoundError naming the fix
"""
from __future__ import annotations

from pathlib import Path

from hw3lib.data.layout import DIGIT_DOMAINS

PARTS = ("faces", "digits")


def has_data(path: str | Path, part: str | None = None) -> bool:
    """Whether ``path`` (or its ``hw3_data/``) holds ``part``: "faces" (face folder or CelebA files), "digits"
    (all three domains), or None (both)."""
    from hw3lib.data.loaders import digits_layout, faces_layout, resolve_root

    if part not in (None, *PARTS):
        raise ValueError(f"unknown data part {part!r}; known: {', '.join(PARTS)}")
    try:
        root = resolve_root(path)
    except ValueError:  # missing, not a folder, or empty
        return False
    faces = part == "digits" or faces_layout(root) is not None
    digits = part == "faces" or all(digits_layout(root, d) is not None for d in DIGIT_DOMAINS)
    return faces and digits


def require_data(path: str | Path, make: bool = False, size: str = "quick", part: str | None = None) -> Path:
    """``path`` as a Path when it holds ``part`` (see :func:`has_data`). Otherwise, with ``make``, the embedded
    data of ``size`` is generated there (``hw3 data make``; seconds for smoke, about a minute for quick);
    without, a ``FileNotFoundError`` names the command that makes it."""
    path = Path(path)
    if has_data(path, part):
        return path
    what = "face and digit" if part is None else part[:-1]
    command = f"hw3 data make --out {path} --size {size}" + (f" --only {part}" if part else "")
    if not make:
        raise FileNotFoundError(f"no {what} data in {path}: make the embedded data with `{command}` (or set "
                                f"make_data = True in the notebook's parameters), or point data_dir at the course's "
                                "hw3_data folder")
    from hw3lib.data.make import make_data

    print(f"no {what} data in {path}: making the embedded {size} data ({command})")
    make_data(path, size, figures_dir=None, progress=False, only=part)
    return path
