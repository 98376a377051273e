"""Every ``HW3_*`` environment variable hw3lib reads, declared once: name, default and meaning (README.md's table
"Environment variables" lists the same). Execution only: none of them is part of a run's config.

Each is read when used (``settings.PROGRESS.value``), never frozen at import: tests and the report's worker pool
set them at run time (the pool sets ``HW3_PROGRESS=0`` in its workers). One parsing rule per type, applied to the
value, else to the default when the variable is unset or blank (surrounding spaces ignored):

* :class:`Flag` — off for ``0``, ``false``, ``no``, ``off`` (any case), on for anything else;
* :class:`Integer` — a whole number, else a ``ValueError`` naming the variable;
* :class:`Location` — a path, ``~`` expanded; relative ones are resolved by the reader (e.g. against the project);
* :class:`Text` — the string itself.

A default of ``""`` gives ``None``: the reader then decides (e.g. the project root is searched for).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FALSE: tuple[str, ...] = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    name: str       # HW3_...
    default: str    # as one would write it in the environment; "" → None
    meaning: str

    @property
    def value(self) -> Any:
        """The parsed value now: the variable's, else the default's; ``None`` when both are blank."""
        text = os.environ.get(self.name, "").strip() or self.default
        return self.parse(text) if text else None

    def parse(self, text: str) -> Any:
        raise NotImplementedError


class Flag(Setting):
    def parse(self, text: str) -> bool:
        return text.lower() not in FALSE


class Integer(Setting):
    def parse(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{self.name}={text!r} is not an integer") from None


class Location(Setting):
    def parse(self, text: str) -> Path:
        return Path(text).expanduser()


class Text(Setting):
    def parse(self, text: str) -> str:
        return text


ROOT = Location("HW3_ROOT", "", "the project folder; unset: the nearest folder up from the working directory that "
                                "holds notebooks/ and a pyproject.toml or .hw3-project, else the working directory")
RUNS = Location("HW3_RUNS", "runs/quick",
                "the runs the course scripts hand in and `hw3 results` lists (relative: to the project)")
NOTEBOOKS = Location("HW3_NOTEBOOKS", "", "the notebooks `hw3 report` runs; unset: the project's notebooks/, else "
                                          "the package's own")
TABLES_DIR = Location("HW3_TABLES_DIR", "", "where the notebooks write their tables (`hw3 report` sets it); "
                                            "unset: report/tables of the project")
CACHE = Flag("HW3_CACHE", "1", "cache decoded datasets (0: decode the images every time)")
CACHE_DIR = Location("HW3_CACHE_DIR", "~/.cache/hw3lib",
                     "the dataset cache when the data folder is not writable")
PROGRESS = Flag("HW3_PROGRESS", "1", "progress bars and run messages (0: none; the report's workers set it)")
CKPT_EVERY = Integer("HW3_CKPT_EVERY", "", "checkpoint every N steps, overriding each run's interval "
                                           "(unset: the run's ckpt_every, else 500)")
DEVICE = Text("HW3_DEVICE", "auto", "the device that `auto` means (auto: CUDA when available, else the CPU)")
DETERMINISTIC = Flag("HW3_DETERMINISTIC", "0", "deterministic kernels (slower)")
MALLOC = Text("HW3_MALLOC", "tuned", "glibc allocator tuning; system: leave the allocator as it is")
CHROMIUM = Text("HW3_CHROMIUM", "", "the Chromium that prints the PDF report (a path or a command); unset: the "
                                    "first Chromium/Chrome on PATH")
DEBUG = Flag("HW3_DEBUG", "0", "`hw3` shows the traceback of an error instead of one line")

ALL: tuple[Setting, ...] = (ROOT, RUNS, NOTEBOOKS, TABLES_DIR, CACHE, CACHE_DIR, PROGRESS, CKPT_EVERY, DEVICE,
                            DETERMINISTIC, MALLOC, CHROMIUM, DEBUG)
