"""What the report's body keeps and what it moves to the appendix, by name: one place, read by
:func:`hw3lib.report.html.split_appendix` when the report is built, so it holds for any notebook that shows its
figures with :func:`hw3lib.plots.show` (caption ``Figure (NAME). …``), its tables with
:func:`hw3lib.report.tables.show_table` (``NAME``) and its sections under Markdown headings.

The rule: the body holds what the course report hands in (each problem's model printouts, curves, reconstructions,
samples, t-SNE, accuracy tables, architecture and discussion) and the results that decide a question (P2's
metrics, P4's choice and the candidates near it); long material the course report does not have — per-seed and
full development tables, diagnostics, interactive explorers' static stand-ins, implementation-detail tables — goes
to the appendix, linked both ways. The quick report's body is then at most 22 PDF pages (issue #39).

Names are :mod:`fnmatch` patterns; a name that matches :data:`BODY` stays in the body whatever else it matches,
even a table its notebook marked with ``show_table(..., appendix=True)``.
"""
from __future__ import annotations

import re
from fnmatch import fnmatchcase

# Sections (a heading and everything under it up to the next heading of its level or above), by heading text
# without its number ("1.7 Exploring the latent space" → "Exploring the latent space"), case-insensitive:
# the widgets' static stand-ins.
SECTIONS = ("Explore the runs", "Exploring the latent space", "Exploring the generator")

# Figures (the NAME of "Figure (NAME)") and tables (show_table's NAME).
FIGURES = (
    "fig2_2_raw_vs_average",  # the moving average's effect: a diagnostic
    "fig2_3_progression",     # the fixed noise over training: a full-page grid
    "fig2_4_attributes",      # with its table p2_attribute_rates, already in the appendix
    "fig2_4_worst",           # diagnostics of the samples
    "fig4_1_selection",       # with the validators' table p4_selection
    "fig4_2_tsne_*",          # t-SNE of the best modern method: the course report shows GTA's (BODY)
)
TABLES = ("p2_attr_accuracy", "p2_attribute_rates", "p4_development", "p4_selection", "p4_methods_details")
# The course report describes its DCGAN's and DANN's training in the body: so do their implementation-details
# tables, even where a notebook marked them for the appendix.
BODY = ("fig4_2_tsne_gta_*", "p2_implementation", "p3_details")

_NUMBER = re.compile(r"^\s*(?:[A-Z]?\d+(?:\.\d+)*\.?\s+)?")


def _match(name: str, patterns) -> bool:
    return any(fnmatchcase(name, p) for p in patterns)


def in_appendix(kind: str, name: str, marked: bool = False) -> bool:
    """Whether the figure, table or section (``kind``) ``name`` goes to the appendix; ``marked``: its notebook
    asked for the appendix (``show_table(..., appendix=True)``), which :data:`BODY` overrides."""
    if kind == "section":
        text = _NUMBER.sub("", name).strip().lower()
        return any(text == s.lower() for s in SECTIONS)
    patterns = {"figure": FIGURES, "table": TABLES}[kind]
    return (marked or _match(name, patterns)) and not _match(name, BODY)
