"""Project-relative paths that work from anywhere: the repository root, ``notebooks/``, a JupyterLab kernel started
in any folder of the project, or ``hw3 report`` (which passes absolute paths, left unchanged).

>>> project_path("data")                    # /home/me/hw3/data, from /home/me/hw3 or /home/me/hw3/notebooks
>>> project_path("/scratch/hw3_data")       # absolute: unchanged

The project root is ``$HW3_ROOT`` when set, else the nearest ancestor of the working directory (itself included)
holding a ``notebooks/`` folder and a ``pyproject.toml`` or a ``.hw3-project`` marker file, else the working
directory.
"""
from __future__ import annotations

import os
from pathlib import Path

from hw3lib import settings

MARKER = ".hw3-project"  # what `hw3 init` writes (hw3lib.project)
MARKERS: tuple[str, ...] = ("pyproject.toml", MARKER)


def project_root(start: str | Path | None = None) -> Path:
    """The project root seen from ``start`` (default: the working directory); see the module docstring."""
    env = settings.ROOT.value
    if env:
        return env.resolve()
    here = Path(start if start is not None else os.getcwd()).expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and any((folder / m).is_file() for m in MARKERS):
            return folder
    return here


def project_path(p: str | Path, start: str | Path | None = None) -> Path:
    """``p`` itself when absolute (after ``~`` expansion), else ``project_root(start) / p``."""
    path = Path(p).expanduser()
    return path if path.is_absolute() else project_root(start) / path
