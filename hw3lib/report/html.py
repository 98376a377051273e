"""Executed notebooks → one self-contained, print-friendly HTML report.

Each notebook is cleaned (code, parameters, stderr, warnings, tqdm widgets and object reprs dropped; math
rendered to inline SVG with matplotlib's mathtext, so no MathJax and no network), rendered body-only with
nbconvert's ``HTMLExporter`` (``exclude_input``, no prompts), and placed in ``template.html`` with
``style.css`` inlined, a header (data, the results at a glance, profile, device, commit, times) and a table of
contents. The tables, figures and sections :mod:`hw3lib.report.placement` names (and the tables a notebook showed
with ``show_table(..., appendix=True)``) move to an appendix after the last problem, a link left where they were
(:func:`split_appendix`).
A notebook that failed is shown up to its failing cell, then an error box (exception, message, the cell's
first lines, the executed notebook's path) and the headings that did not run.
"""
from __future__ import annotations

import base64
import copy
import html as html_lib
import io
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import nbformat

_HERE = Path(__file__).parent
_DROP_MIME = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")
# text/plain-only results that are object reprs (``show`` returns a Path; ``plt.plot`` returns Line2Ds).
_REPR = re.compile(r"^(<.*>|\[<.*>\]|(Posix|Windows)?Path\(.*\)|Text\(.*\))$", re.S)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class ProblemError:
    ename: str
    evalue: str
    cell_source: str  # the failing cell's first lines
    cell_index: int | None = None


@dataclass
class Problem:
    """One problem's section: ``key`` (``p1_vae``), its title and its rendered HTML."""
    key: str
    title: str
    body: str
    headings: list[tuple[int, str, str]] = field(default_factory=list)  # (level, id, text)
    error: ProblemError | None = None
    notebook: str | None = None  # path of the executed notebook
    appendix: list[tuple] = field(default_factory=list)  # (moved item, its HTML): what split_appendix moved


# ---------------------------------------------------------------- math (offline)

_FENCE = r"(?P<fence>```.*?```|~~~.*?~~~)"
_CODE = r"(?P<code>`[^`\n]+`)"
_ESC = r"(?P<esc>\\\$)"
_BLOCK = r"\$\$(?P<block>.+?)\$\$|\\\[(?P<block2>.+?)\\\]"
_INLINE = r"\\\((?P<inline2>.+?)\\\)|(?<![\\$\w])\$(?P<inline>[^\s$](?:[^$\n]*?[^\s$\\])?)\$(?![\w$])"
_MATH = re.compile("|".join((_FENCE, _CODE, _ESC, _BLOCK, _INLINE)), re.S)


@lru_cache(maxsize=512)
def math_html(tex: str, display: bool = False) -> str:
    """``tex`` rendered by matplotlib's mathtext as an inline SVG ``<img>`` (baseline-aligned, scales with
    the text); TeX mathtext can't parse is shown verbatim in a ``<code class="math">``."""
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import math_to_image

    size = 12.0
    buf = io.BytesIO()
    try:
        with matplotlib.rc_context({"mathtext.fontset": "cm", "svg.fonttype": "path", "svg.hashsalt": "hw3"}):
            depth = math_to_image(f"${tex.strip()}$", buf, prop=FontProperties(size=size), format="svg")
    except (ValueError, RuntimeError):
        return f'<code class="math">{html_lib.escape(tex)}</code>'
    svg = buf.getvalue()
    m = re.search(rb'height="([0-9.]+)pt"', svg)
    height = float(m.group(1)) if m else size
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
    alt = html_lib.escape(tex, quote=True)
    style = f"height:{height / size:.3f}em;vertical-align:{-(depth or 0) / size:.3f}em"
    cls = "math math-display" if display else "math"
    if display:
        style = f"height:{height / size:.3f}em"
    return f'<img class="{cls}" alt="{alt}" style="{style}" src="{uri}">'


def render_math(markdown: str) -> str:
    """Replace ``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]`` in Markdown with inline SVG; code is left alone."""
    def sub(m: re.Match) -> str:
        if m.group("fence") or m.group("code"):
            return m.group(0)
        if m.group("esc"):
            return "&#36;"
        block = m.group("block") or m.group("block2")
        if block is not None:
            return math_html(" ".join(block.split()), True)
        return math_html(m.group("inline") or m.group("inline2"))
    return _MATH.sub(sub, markdown)


# ---------------------------------------------------------------- notebook cleaning

def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _keep_output(out) -> bool:
    kind = out.get("output_type")
    if kind == "stream":
        return out.get("name") == "stdout" and bool(_text(out.get("text", "")).strip())
    if kind == "error":
        return False  # shown as the problem's error box instead
    data = out.get("data", {})
    if any(m in data for m in _DROP_MIME):
        return False
    if set(data) <= {"text/plain"}:
        text = _text(data.get("text/plain", "")).strip()
        return bool(text) and not _REPR.match(text)
    return True


def _clean_outputs(cell) -> None:
    outputs = []
    for out in cell.get("outputs", []):
        if not _keep_output(out):
            continue
        data = out.get("data")
        if data and "text/markdown" in data:
            data["text/markdown"] = render_math(_text(data["text/markdown"]))
        if out.get("output_type") == "stream":
            # a carriage return overwrites its line in a terminal: keep what a terminal would show
            lines = _ANSI.sub("", _text(out["text"])).split("\n")
            out["text"] = "\n".join(ln.rstrip("\r").rsplit("\r", 1)[-1] for ln in lines)
        outputs.append(out)
    cell["outputs"] = outputs


def find_error(nb) -> ProblemError | None:
    """The first error output of an executed notebook (papermill stops there)."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else ():
            if out.get("output_type") == "error":
                src = [ln for ln in _text(cell.source).splitlines() if ln.strip()]
                summary = "\n".join(src[:6]) + ("\n…" if len(src) > 6 else "")
                return ProblemError(out.get("ename", "Error"), _ANSI.sub("", out.get("evalue", "")), summary, i)
    return None


def clean_notebook(nb) -> tuple[nbformat.NotebookNode, ProblemError | None, list[str]]:
    """A copy of ``nb`` ready for rendering, its error (if any) and the headings after the failing cell."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)  # widget state would pull the widget manager from a CDN
    error = find_error(nb)
    cells, skipped = [], []
    for i, cell in enumerate(nb.cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if "papermill-error-cell-tag" in tags or "injected-parameters" in tags or "parameters" in tags:
            continue
        if error is not None and i > error.cell_index:
            if cell.cell_type == "markdown":
                skipped += [ln.lstrip("#").strip() for ln in _text(cell.source).splitlines()
                            if re.match(r"#{1,3} ", ln)]
            continue
        if cell.cell_type == "markdown":
            src = _text(cell.source)
            if "<span style=\"color:red" in src and "papermill" in src.lower():
                continue
            cell.source = render_math(src)
            cells.append(cell)
        elif cell.cell_type == "code":
            _clean_outputs(cell)
            if cell.outputs:
                cell.source = ""
                cells.append(cell)
    nb.cells = cells
    return nb, error, skipped


# ---------------------------------------------------------------- rendering

@lru_cache(maxsize=1)
def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                        exclude_output_prompt=True, anchor_link_text="", embed_images=True)


_HEADING = re.compile(r"<h([1-6])([^>]*)>(.*?)</h\1>", re.S)
_TAGS = re.compile(r"<[^>]+>")
_TD = re.compile(r"<td>(.*?)</td>", re.S)
# numbers (and "71.20 ± 1.05 (n = 3)") stay right-aligned; prose cells go left
_NUMERIC = re.compile(r"^[\s\d.,±%+\-−–—eE]*(\(n\s*=\s*\d+\))?\s*$")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def rewrite_headings(body: str, prefix: str, used: set[str] | None = None) -> tuple[str, list[tuple[int, str, str]]]:
    """Give every heading a unique id ``prefix-slug`` (drop nbconvert's anchor links); return the headings."""
    used = set() if used is None else used
    found: list[tuple[int, str, str]] = []

    def sub(m: re.Match) -> str:
        level = int(m.group(1))
        inner = re.sub(r'<a class="anchor-link"[^>]*>.*?</a>', "", m.group(3), flags=re.S)
        text = html_lib.unescape(_TAGS.sub("", inner)).replace("¶", "").strip()
        hid = base = f"{prefix}-{_slug(text)}"
        k = 2
        while hid in used:
            hid, k = f"{base}-{k}", k + 1
        used.add(hid)
        found.append((level, hid, text))
        return f'<h{level} id="{hid}">{inner.strip()}</h{level}>'

    return _HEADING.sub(sub, body), found


def render_problem(key: str, executed: str | Path | None, title: str, error: ProblemError | None = None,
                   used_ids: set[str] | None = None) -> Problem:
    """One problem's section from its executed notebook (``None``: it never ran; ``error`` says why)."""
    if executed is None or not Path(executed).is_file():
        body = ""
        if error is None:
            error = ProblemError("MissingNotebook", f"no executed notebook for {key}", "")
        problem = Problem(key, title, body, error=error, notebook=None)
        problem.body = f'<h1 id="{key}">{html_lib.escape(title)}</h1>' + _error_box(problem, [])
        problem.headings = [(1, key, title)]
        return problem
    nb = nbformat.read(str(executed), as_version=4)
    clean, nb_error, skipped = clean_notebook(nb)
    error = nb_error or error
    clean, moved = split_appendix(clean, key)
    body, headings = rewrite_headings(_render(clean), key, used_ids)
    appendix = [(item, _appendix_body(item)) for item in moved]
    problem = Problem(key, title, body, headings, error, str(executed), appendix)
    if headings and headings[0][0] == 1:
        problem.title = headings[0][2]
    else:  # no "# Problem N" title cell: add one
        problem.body = f'<h1 id="{key}">{html_lib.escape(title)}</h1>' + body
        problem.headings = [(1, key, title)] + headings
    if error is not None:
        problem.body += _error_box(problem, skipped)
    return problem


def _render(nb) -> str:
    """A cleaned notebook's cells as HTML: figure captions marked, prose table cells left-aligned."""
    body, _ = _exporter().from_notebook_node(nb)
    body = _strip_page(body)
    body = body.replace("<p><em>Figure (", '<p class="caption"><em>Figure (')
    return _TD.sub(lambda m: m.group(0) if _NUMERIC.match(m.group(1).replace("&nbsp;", " "))
                   else f'<td class="text">{m.group(1)}</td>', body)


_FIGURE_CAPTION = re.compile(r"^\s*\*Figure \(([\w.\-]+)\)\.\s*(.*?)\*?\s*$", re.S)
_FENCED = re.compile(r"```.*?```|~~~.*?~~~", re.S)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


@dataclass
class _Moved:
    anchor: str
    label: str
    kind: str  # "Table", "Figure" or "Section"
    name: str
    caption: str
    cells: list = field(default_factory=list)  # a section's cells; a table's or figure's outputs: one code cell


def _plain(text: str) -> str:
    """A caption as plain text: no tags (inline math), no Markdown emphasis."""
    return html_lib.unescape(_TAGS.sub("", text)).replace("**", "").strip(" *")


def _output_marks(outputs) -> list[tuple[str, str, str] | None]:
    """Per output, ``(kind, name, caption)`` of the appendix table or figure it belongs to, else None: a table
    ``show_table`` marked (``appendix=True``, or named in :mod:`hw3lib.report.placement`), its caption with it; a
    figure ``show`` displayed (its caption ``Figure (NAME). …``) named there, with the image just before it."""
    from hw3lib.report import placement
    from hw3lib.report.tables import APPENDIX_KEY

    marks: list[tuple[str, str, str] | None] = [None] * len(outputs)
    for i, out in enumerate(outputs):
        mark = out.get("metadata", {}).get(APPENDIX_KEY)
        if mark:
            name = str(mark.get("name"))
            if placement.in_appendix("table", name, marked=mark.get("appendix", True)):
                marks[i] = ("Table", name, _plain(str(mark.get("caption") or name)))
            continue
        m = _FIGURE_CAPTION.match(_text(out.get("data", {}).get("text/markdown", "")))
        if m and placement.in_appendix("figure", m.group(1)):
            marks[i] = ("Figure", m.group(1), _plain(m.group(2)))
            if i and marks[i - 1] is None and any(k.startswith("image/") for k in outputs[i - 1].get("data", {})):
                marks[i - 1] = marks[i]
    return marks


def _first_heading(source: str) -> tuple[int, str] | None:
    m = _MD_HEADING.search(_FENCED.sub("", source))
    return (len(m.group(1)), _plain(m.group(2))) if m else None


def _link(item: _Moved):
    return nbformat.v4.new_output("display_data", data={"text/html": (
        f'<p class="appendix-link" id="cite-{item.anchor}">{item.kind} <a href="#{item.anchor}">{item.label}</a> '
        f"(appendix): {html_lib.escape(item.caption)}</p>")})


def split_appendix(nb, key: str) -> tuple[nbformat.NotebookNode, list[_Moved]]:
    """Move to the appendix what :mod:`hw3lib.report.placement` names (and the tables
    ``show_table(..., appendix=True)`` marked): a table (its caption and the table), a figure (the image and its
    caption) or a whole section (its heading and all below it up to the next heading of its level or above).
    Labels run ``A1.1``, ``A1.2``... for Problem 1; where the item was, a line links to it (the appendix links back).
    """
    from hw3lib.report import placement

    number = re.match(r"p(\d+)", key)
    prefix = f"A{number.group(1)}." if number else f"A{key}."
    moved: list[_Moved] = []

    def new(kind: str, name: str, caption: str) -> _Moved:
        item = _Moved(f"appendix-{key}-{len(moved) + 1}", f"{prefix}{len(moved) + 1}", kind, name, caption)
        moved.append(item)
        return item

    cells, section_level = [], None
    for cell in nb.cells:
        heading = _first_heading(_text(cell.source)) if cell.cell_type == "markdown" else None
        if section_level is not None and heading and heading[0] <= section_level:
            section_level = None  # the moved section ends here
        if section_level is None and heading and placement.in_appendix("section", heading[1]):
            section_level = heading[0]
            cells.append(nbformat.v4.new_code_cell(outputs=[_link(new("Section", heading[1], heading[1]))]))
        if section_level is not None:
            moved[-1].cells.append(cell)
            continue
        if cell.cell_type == "code":
            kept, current = [], None
            for out, mark in zip(cell.get("outputs", []), _output_marks(cell.get("outputs", []))):
                if mark is None:
                    kept.append(out)
                    current = None
                    continue
                if current != mark[:2]:  # a new table or figure: its link stays here
                    current = mark[:2]
                    item = new(*mark)
                    item.cells.append(nbformat.v4.new_code_cell(outputs=[]))
                    kept.append(_link(item))
                moved[-1].cells[0].outputs.append(out)
            cell.outputs = kept
        cells.append(cell)
    nb.cells = cells
    return nb, moved


def _appendix_body(item: _Moved) -> str:
    """A moved item's HTML; a section's headings one level down (the appendix's problem heading is an h2)."""
    body = _render(nbformat.v4.new_notebook(cells=item.cells))
    return _HEADING.sub(lambda m: (f"<h{min(int(m.group(1)) + 1, 6)} class=\"appendix-heading\">"
                                   + re.sub(r'<a class="anchor-link"[^>]*>.*?</a>', "", m.group(3), flags=re.S).strip()
                                   + f"</h{min(int(m.group(1)) + 1, 6)}>"), body)


def appendix_html(problems: list[Problem]) -> str:
    """The appendix: per problem with moved items, a heading, then each item under its label, linking back."""
    parts = []
    for p in problems:
        if not p.appendix:
            continue
        parts.append(f'<h2 id="appendix-{p.key}">{html_lib.escape(p.title)}</h2>')
        for item, body in p.appendix:
            parts.append(f'<div class="appendix-item appendix-{item.kind.lower()}" id="{item.anchor}">'
                         f'<p class="appendix-label">{item.kind} {item.label} '
                         f'<a href="#cite-{item.anchor}">(cited in {html_lib.escape(p.title.split(":")[0])})</a></p>'
                         f"{body}</div>")
    return "\n".join(parts)


def _strip_page(body: str) -> str:
    """The basic template's cells only: no <html>/<head>, no scripts."""
    m = re.search(r"<body[^>]*>(.*)</body>", body, re.S)
    body = m.group(1) if m else body
    return re.sub(r"<script\b.*?</script>", "", body, flags=re.S)


def _error_box(problem: Problem, skipped: list[str]) -> str:
    e = problem.error
    parts = [f'<div class="error-box" id="{problem.key}-error">',
             f"<p><strong>This problem failed:</strong> <code>{html_lib.escape(e.ename)}</code>: "
             f"{html_lib.escape(e.evalue)}</p>"]
    if e.cell_source:
        where = f" (cell {e.cell_index})" if e.cell_index is not None else ""
        parts.append(f"<p>Failing cell{where}:</p><pre>{html_lib.escape(e.cell_source)}</pre>")
    if problem.notebook:
        parts.append(f"<p>Executed notebook: <code>{html_lib.escape(problem.notebook)}</code></p>")
    if skipped:
        parts.append("<p>Not run: " + "; ".join(html_lib.escape(s) for s in skipped) + ".</p>")
    parts.append("</div>")
    return "\n".join(parts)


def toc_html(problems: list[Problem]) -> str:
    out = ['<nav class="toc"><h2 class="toc-title">Contents</h2><ol>']
    for p in problems:
        top = p.headings[0] if p.headings else (1, p.key, p.title)
        mark = ' <span class="failed">(failed)</span>' if p.error else ""
        out.append(f'<li><a href="#{top[1]}">{html_lib.escape(top[2])}</a>{mark}')
        subs = [h for h in p.headings[1:] if h[0] == 2]
        if subs:
            out.append("<ol>" + "".join(f'<li><a href="#{hid}">{html_lib.escape(text)}</a></li>'
                                        for _, hid, text in subs) + "</ol>")
        out.append("</li>")
    with_appendix = [p for p in problems if p.appendix]
    if with_appendix:
        out.append('<li><a href="#appendix">Appendix</a><ol>' + "".join(
            f'<li><a href="#appendix-{p.key}">{html_lib.escape(p.title)}</a></li>' for p in with_appendix)
            + "</ol></li>")
    out.append("</ol></nav>")
    return "\n".join(out)


def assemble(problems: list[Problem], header: dict, title: str = "DLCV HW3 report") -> str:
    """The whole page: ``header`` is a dict of the builder's facts (see ``template.html``)."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_HERE)), autoescape=jinja2.select_autoescape(["html"]))
    template = env.get_template("template.html")
    return template.render(title=title, css=(_HERE / "style.css").read_text(), header=header,
                           toc=Markup(toc_html(problems)), appendix=Markup(appendix_html(problems)),
                           problems=[dict(key=p.key, failed=p.error is not None,
                                          body=Markup(p.body)) for p in problems])
