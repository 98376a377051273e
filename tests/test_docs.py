"""Every duration README.md states is backed: the same figure (to the precision README gives it) appears in
docs/NOTES.md or a benchmarks/*.md result file, in a paragraph or table row that says what it was measured on; or
it is a limit the code sets, found in the file that sets it. A figure nobody measured, or one whose measurement was
dropped from the notes, fails here."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# "19 minutes", "21–24 minutes", "4 min 23 s", "15 min 02 s", "3600 s", "1800.0s", "6 hours"
_UNIT = r"(minutes?|min|hours?|h|seconds?|s)"
FIGURE = re.compile(rf"(?<![\w.:/-])(\d+(?:\.\d+)?)(?:\s?[–-]\s?(\d+(?:\.\d+)?))?\s?{_UNIT}\b(?:\s(\d+)\s?s\b)?")
_SECONDS = {"h": 3600, "m": 60, "s": 1}
# A bound or a goal ("≤ 10 min", "under 10 minutes") is not a measurement: it backs nothing.
BOUND = re.compile(r"(≤|<|≥|>|\bunder|\bat most|\bwithin|\basks for|\bmeeting)\s*$", re.I)
# A paragraph or table row that says where a figure was measured names the machine or the run.
CONDITIONS = re.compile(r"core|AVX|machine|CPU|GPU|VM|clean clone|\bCI\b|alone", re.I)
# Limits the code sets (not measurements): README's figure -> (the file that sets it, the setting's text there).
SETTINGS = {"3600 s": ("report/profiles/quick.yaml", "cell_timeout: 3600"),
            "6 hours": ("hw3lib/report/profile.py", "DEFAULT_CELL_TIMEOUT = 6 * 3600"),
            "1800 s": ("pyproject.toml", "timeout = 1800"),
            "1800.0s": ("pyproject.toml", "timeout = 1800")}


def figures(text: str, measured_only: bool = False) -> list[tuple[str, list[tuple[float, float]]]]:
    """Each duration in ``text``: (as written, [(seconds, precision in seconds)] — two for a range); with
    ``measured_only``, not the bounds."""
    out = []
    for m in FIGURE.finditer(text):
        if measured_only and BOUND.search(text[max(0, m.start() - 12):m.start()]):
            continue
        a, b, unit, extra_s = m.groups()
        scale = _SECONDS[unit[0]]
        values = [float(a)] + ([float(b)] if b else [])
        if extra_s is not None:  # "15 min 02 s": to the second
            out.append((m.group(0), [(values[0] * scale + int(extra_s), 1.0)]))
        else:
            step = scale * (0.1 if "." in a else 1)
            out.append((m.group(0), [(v * scale, step) for v in values]))
    return out


def _blocks(path: Path) -> list[str]:
    """Paragraphs, and each table row on its own."""
    blocks = []
    for para in re.split(r"\n\s*\n", path.read_text()):
        rows = [line for line in para.splitlines() if line.lstrip().startswith("|")]
        blocks += rows if rows else [para]
    return blocks


def _backing() -> list[tuple[str, list[tuple[float, float]]]]:
    """Every duration in the notes and benchmark results that stands next to its conditions."""
    files = [ROOT / "docs" / "NOTES.md", *sorted((ROOT / "benchmarks").glob("*.md"))]
    return [(f"{p.relative_to(ROOT)}: {fig}", vals) for p in files for block in _blocks(p) if CONDITIONS.search(block)
            for fig, vals in figures(block, measured_only=True)]


def _backed(value: float, precision: float, backing) -> bool:
    return any(len(vals) == 1 and round(vals[0][0] / precision) == round(value / precision) for _, vals in backing) \
        or any(round(v / precision) == round(value / precision) for _, vals in backing if len(vals) == 2
               for v, _ in vals)


def test_figure_parser_reads_the_forms_readme_uses():
    got = {fig: vals for fig, vals in figures("took 19 minutes, then 21–24 minutes; 4 min 23 s and 15 min 02 s; "
                                              "cell 3600 s, (>1800.0s), 6 hours; 29 runs, 0.82x, P4's 4 methods")}
    assert got == {"19 minutes": [(1140, 60)], "21–24 minutes": [(1260, 60), (1440, 60)], "4 min 23 s": [(263, 1)],
                   "15 min 02 s": [(902, 1)], "3600 s": [(3600, 1)], "1800.0s": [(1800, 0.1)], "6 hours": [(21600, 3600)]}
    backing = figures("19 min 06 s on 2 cores, #30 asks for ≤ 10 min, under 8 minutes", measured_only=True)
    assert [fig for fig, _ in backing] == ["19 min 06 s"]
    assert _backed(1140, 60, backing) and not _backed(1200, 60, backing) and not _backed(1146 + 1, 1, backing)


def test_every_duration_in_the_readme_is_backed():
    text = (ROOT / "README.md").read_text()
    found = figures(text)
    assert found, "no duration found in README.md: the pattern is broken"
    backing = _backing()
    unbacked = []
    for fig, vals in found:
        if fig in SETTINGS:
            path, setting = SETTINGS[fig]
            assert setting in (ROOT / path).read_text(), f"README.md's {fig!r}: {path} no longer says {setting!r}"
            continue
        if not all(_backed(v, p, backing) for v, p in vals):
            unbacked.append(fig)
    assert not unbacked, (f"README.md states {unbacked}, found in no paragraph of docs/NOTES.md or benchmarks/*.md "
                          "that says what it was measured on")
