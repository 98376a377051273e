"""``hw3 report``: data → four executed notebooks → ``report/hw3_report.html`` → ``report/hw3_report.pdf``.

>>> result = build_report("smoke", out="/tmp/report")      # ReportResult(html=..., pdf=..., exit_code=0, ...)

1. the data: ``--data DIR``, else the profile's ``data_dir`` — made with ``hw3lib.data.make.make_data`` at the
   profile's ``data_size`` when absent (profiles without one, ``full``, need ``--data``);
2. ``notebooks/pN_xxx.ipynb`` (the project's, the checkout's or the installed copies: ``hw3lib.project``) run with
   papermill (cwd: their folder, kernel ``python3`` of this interpreter) into ``OUT/executed/``, parameters =
   profile + ``-p`` overrides + absolute data/run/figures paths and the device, ``$HW3_TABLES_DIR`` = ``OUT/tables``;
   one live progress line per notebook (``hw3lib.report.progress``); a failing notebook is recorded and the others
   still run;
3. one self-contained HTML (``hw3lib.report.html``), 4. a PDF printed by headless Chromium (``hw3lib.report.pdf``),
5. ``OUT/run.json``: profile, parameters, status and wall time per notebook, data, device, commit.

Exit status 1 when a notebook failed or is missing (after writing the report), 0 otherwise.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hw3lib.project import notebooks_dir  # noqa: F401 (the notebooks hw3 report runs; tests import it from here)
from hw3lib.report.profile import NOTEBOOKS, REPO_ROOT, Profile, load_profile, notebook_name, resolve_parameters
from hw3lib.results import fmt_seconds as _fmt_time

TITLES = {"p1_vae": "Problem 1: VAE", "p2_gan": "Problem 2: GAN", "p3_dann": "Problem 3: DANN",
          "p4_uda": "Problem 4: Improved UDA"}
HTML_NAME, PDF_NAME, RUN_JSON = "hw3_report.html", "hw3_report.pdf", "run.json"


@dataclass
class ReportResult:
    html: Path
    pdf: Path | None
    run_json: Path
    status: dict[str, str]          # notebook → ok | failed | missing
    wall_s: dict[str, float]
    exit_code: int
    pdf_note: str | None = None     # why there is no PDF
    executed: dict[str, Path] = field(default_factory=dict)


# ---------------------------------------------------------------- facts for the header

def git_commit(root: Path | None = REPO_ROOT) -> str:
    """``abc1234`` (+ ``, with uncommitted changes``), ``uncommitted`` outside a git checkout, or the version of an
    installed package (``root`` None)."""
    if root is None:
        from hw3lib import __version__
        return f"hw3lib {__version__} (installed package)"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "uncommitted"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "uncommitted"
    return head.stdout.strip() + (" with uncommitted changes" if dirty else "")


def _rows(csv: Path) -> int | None:
    try:
        with open(csv, "rb") as f:
            return max(sum(1 for line in f if line.strip()) - 1, 0)
    except OSError:
        return None


def data_sizes(root: Path) -> dict:
    """Image counts per split from the CSVs (cheap): ``{"face": {"train": N, "test": M}, "usps": {...}, ...}``."""
    from hw3lib.data import DIGIT_DOMAINS

    out = {}
    face = {s: n for s in ("train", "test") if (n := _rows(root / "face" / f"{s}.csv")) is not None}
    if face:
        out["face"] = face
    for d in DIGIT_DOMAINS:
        counts = {s: n for s in ("train", "test") if (n := _rows(root / "digits" / d / f"{s}.csv")) is not None}
        if counts:
            out[d] = counts
    return out


def _sizes_line(sizes: dict) -> str:
    if not sizes:
        return "no course-layout CSVs found"
    return "; ".join(f"{k} {v.get('train', '?')} train / {v.get('test', '?')} test" for k, v in sizes.items())


def _has_data(root: Path) -> bool:
    return any((root / d).is_dir() for d in ("face", "digits", "hw3_data"))


# ---------------------------------------------------------------- kernel

@contextmanager
def python_kernel(work: Path):
    """Make kernel ``python3`` start *this* interpreter (the venv's).

    jupyter_client maps a spec whose argv[0] is ``python`` to ``sys.executable``; a ``python3`` spec found first
    on the Jupyter path that points elsewhere (e.g. one in ``~/.local/share/jupyter``) is shadowed by a private
    spec under ``work/kernels`` put first on ``JUPYTER_PATH`` for the duration.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ok = False
    try:
        exe = KernelSpecManager().get_kernel_spec("python3").argv[0]
        ok = exe in {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"} or (
            os.path.abspath(exe) == os.path.abspath(sys.executable))
    except (NoSuchKernel, IndexError):
        pass
    if ok:
        yield
        return
    spec = work / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (hw3)", "language": "python"}, indent=1))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(work)] + ([old] if old else []))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old


# ---------------------------------------------------------------- execution

def _execute(src: Path, dst: Path, params: dict) -> tuple[str, float, object]:
    """Run one notebook; returns (status, wall seconds, error or None). Never raises for notebook errors."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from hw3lib.report.html import ProblemError

    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(src), str(dst), parameters=params, cwd=str(src.parent), kernel_name="python3",
                            progress_bar=False,
                            log_output=False, extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as exc:
        src_lines = [ln for ln in str(exc.source).splitlines() if ln.strip()]
        return "failed", time.perf_counter() - t0, ProblemError(
            exc.ename, str(exc.evalue), "\n".join(src_lines[:6]), exc.cell_index)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 — a dead kernel, a timeout...: report it, run the others
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "failed", time.perf_counter() - t0, ProblemError(type(exc).__name__, msg, "")
    return "ok", time.perf_counter() - t0, None


def _sibling_run_dirs(notebook: Path) -> dict[str, str]:
    """Parameters ``xxx_run_dir = "../runs/quick/NAME"`` of a notebook → ``{"xxx_run_dir": "NAME"}``.

    A notebook may read another problem's run (Problem 2 compares with Problem 1's VAE): those defaults point
    at the quick profile's folders, so they are moved under this profile's ``runs_root`` unless the profile or
    ``-p`` sets them. Empty defaults ("" = derived in the notebook) are left alone.
    """
    import ast

    from papermill import inspect_notebook

    if not notebook.is_file():
        return {}
    out = {}
    for key, p in inspect_notebook(str(notebook)).items():
        if key == "run_dir" or not key.endswith("_run_dir"):
            continue
        try:
            default = ast.literal_eval(str(p.get("default")))
        except (ValueError, SyntaxError):
            continue
        if isinstance(default, str) and default.strip("/"):
            out[key] = Path(default).name
    return out


def _make_data(root: Path, size: str, figures_dir: Path) -> None:
    try:
        from hw3lib.data.make import make_data
    except ImportError as exc:
        raise ValueError(f"cannot make the embedded data ({exc}); pass --data DIR") from exc
    print(f"hw3 report: making the embedded {size} data in {root}", file=sys.stderr, flush=True)
    make_data(root, size, seed=0, figures_dir=figures_dir, progress=True)


def build_report(profile: str | Path | Profile, data: str | Path | None = None, out: str | Path = "report",
                 device: str = "auto", overrides=(), only=None, *, notebooks: str | Path | None = None,
                 runs_root: str | Path | None = None, figures_dir: str | Path | None = None, pdf: bool = True,
                 progress: bool = True) -> ReportResult:
    """Run the pipeline (see the module docstring). ``overrides``: ``[(KEY, VALUE), ...]`` as ``-p``;
    ``only``: ``"p1,p3"`` or a list. ``notebooks``/``runs_root``/``figures_dir`` override the repository's
    notebooks folder and the profile's folders (tests)."""
    from hw3lib.checkpoint import atomic_write_text
    from hw3lib.data import data_info
    from hw3lib.device import describe, get_device
    from hw3lib.report import html as report_html
    from hw3lib.report.progress import ProblemProgress, previous_build
    from hw3lib.report.tables import tables_env

    started = time.perf_counter()
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    if only:
        keys = only.split(",") if isinstance(only, str) else list(only)
        selected = [notebook_name(k.strip()) for k in keys if k.strip()]
        selected = [n for n in NOTEBOOKS if n in selected]
    else:
        selected = list(NOTEBOOKS)
    nb_dir = Path(notebooks) if notebooks else notebooks_dir()
    out = Path(out).resolve()
    runs = Path(runs_root or prof.runs_root).resolve()
    figs = Path(figures_dir or prof.figures_dir).resolve()
    dev = get_device(device)

    from papermill import inspect_notebook
    declared = {n: (set(inspect_notebook(str(nb_dir / f"{n}.ipynb"))) if (nb_dir / f"{n}.ipynb").is_file()
                    else None) for n in selected}
    managed = {n: {"data_dir": None, "figures_dir": str(figs), "run_dir": str(runs / n), "runs_root": str(runs),
                   "device": str(dev)} for n in selected}
    # validate before spending minutes on the data
    resolve_parameters(prof, declared, overrides, managed)

    if data is not None:
        root = Path(data).resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"data folder {root} not found")
    else:
        root = Path(prof.data_dir).resolve()
        if not _has_data(root):
            if prof.data_size is None:
                raise ValueError(f"profile {prof.name} needs the course data: pass --data DIR "
                                 f"({root} holds none)")
            _make_data(root, prof.data_size, figs)
    for m in managed.values():
        m["data_dir"] = str(root)
    params = resolve_parameters(prof, declared, overrides, managed)
    for n in selected:  # other run folders a notebook reads (p2's vae_run_dir...) follow runs_root too
        for key, folder in _sibling_run_dirs(nb_dir / f"{n}.ipynb").items():
            params[n].setdefault(key, str(runs / folder))
    info = data_info(root)
    sizes = data_sizes(root)

    show_progress = progress and os.environ.get("HW3_PROGRESS", "1") != "0"
    executed_dir = out / "executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    figs.mkdir(parents=True, exist_ok=True)
    status, wall, errors, executed, runs_done = {}, {}, {}, {}, {}
    previous = previous_build(out / RUN_JSON)
    with python_kernel(out / ".jupyter"), tables_env(out / "tables"):
        for n in selected:
            src = nb_dir / f"{n}.ipynb"
            dst = executed_dir / f"{n}.ipynb"
            if declared[n] is None:
                status[n], wall[n] = "missing", None
                errors[n] = report_html.ProblemError("FileNotFoundError", f"notebook {src} not found", "")
                dst.unlink(missing_ok=True)
                continue
            (runs / n).mkdir(parents=True, exist_ok=True)
            with ProblemProgress(TITLES[n], runs / n, previous.get(n), params[n], enabled=show_progress) as bar:
                status[n], wall[n], errors[n] = _execute(src, dst, params[n])
                bar.status = status[n]
            runs_done[n] = bar.finished
            executed[n] = dst
            if status[n] != "ok":
                e = errors[n]
                print(f"hw3 report: {n} failed: {e.ename}: {e.evalue} (see {dst})", file=sys.stderr, flush=True)

    used: set[str] = set()
    problems = [report_html.render_problem(n, executed.get(n), TITLES[n], errors.get(n), used) for n in selected]
    failed = [TITLES[n].split(":")[0] for n in selected if status[n] != "ok"]
    summary = ", ".join(f"{k} {v}" for k, v in info.items() if k in ("size", "seed") and v is not None)
    header = {
        "data_kind": info.get("kind", "real"),
        "data_dir": str(root),
        "data_summary": f"{summary}, folder {root}" if summary else f"folder {root}",
        "data_line": (f"embedded synthetic data ({summary or 'hw3lib generator'}) at {root}"
                      if info.get("kind") == "embedded" else f"real data at {root}"),
        "sizes_line": _sizes_line(sizes),
        "profile_line": f"{prof.name} ({prof.path})" + (f" — {prof.description}" if prof.description else ""),
        "device": describe(dev),
        "commit": git_commit(),
        "built": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "failed": failed,
        "problems": [{"name": TITLES[n], "status": status[n], "wall": _fmt_time(wall[n]),
                      "params": ", ".join(f"{k}={v}" for k, v in params[n].items()
                                    if k not in managed[n] and not k.endswith("_run_dir"))
                      or "notebook defaults"} for n in selected],
    }
    html_path = out / HTML_NAME
    atomic_write_text(html_path, report_html.assemble(problems, header))
    os.chmod(html_path, 0o644)  # a document to share, unlike the private temp file it came from

    pdf_path, pdf_note = None, None
    if pdf:
        from hw3lib.report.pdf import find_chromium, print_pdf
        if find_chromium() is None:
            pdf_note = "no Chromium found (set HW3_CHROMIUM or install chromium): the report is HTML only"
        else:
            try:
                pdf_path = print_pdf(html_path, out / PDF_NAME)
            except (RuntimeError, OSError) as exc:
                pdf_note = f"PDF not printed: {exc}"
        if pdf_note:
            print(f"hw3 report: {pdf_note}", file=sys.stderr, flush=True)

    exit_code = 1 if failed else 0
    run = {
        "profile": {"name": prof.name, "path": str(prof.path), "overrides": [list(p) for p in overrides or ()]},
        "data": {"dir": str(root), "info": info, "sizes": sizes},
        "device": describe(dev),
        "commit": header["commit"],
        "notebooks": {n: {"status": status[n], "wall_s": wall[n], "parameters": params[n],
                          "source": str(nb_dir / f"{n}.ipynb"), "executed": str(executed[n]) if n in executed else None,
                          "run_dir": str(runs / n), "metrics": str(runs / n / "metrics.json"),
                          "runs_finished": runs_done.get(n),
                          "error": (None if errors.get(n) is None else
                                    {"ename": errors[n].ename, "evalue": errors[n].evalue})}
                      for n in selected},
        "figures_dir": str(figs),
        "html": str(html_path),
        "pdf": str(pdf_path) if pdf_path else None,
        "pdf_note": pdf_note,
        "wall_s": time.perf_counter() - started,
        "exit_code": exit_code,
    }
    run_json = out / RUN_JSON
    atomic_write_text(run_json, json.dumps(run, indent=2, default=str))
    os.chmod(run_json, 0o644)
    return ReportResult(html_path, pdf_path, run_json, status, wall, exit_code, pdf_note, executed)


# ---------------------------------------------------------------- CLI

def _run(args) -> int:
    overrides = [tuple(p) for p in (args.param or [])]
    try:
        result = build_report(args.profile, data=args.data, out=args.out, device=args.device, overrides=overrides,
                              only=args.only, pdf=not args.no_pdf)
    except KeyboardInterrupt:
        print("hw3 report: interrupted (finished training steps are checkpointed; re-run to resume)",
              file=sys.stderr)
        return 130
    for n, s in result.status.items():
        print(f"{TITLES[n]:<26} {s:<8} {_fmt_time(result.wall_s[n])}")
    print(f"report: {result.html}" + (f"\n        {result.pdf}" if result.pdf else ""))
    return result.exit_code


def register(groups) -> None:
    desc = ("Run the four notebooks with papermill (profile + overrides), then build one self-contained HTML "
            "report and print it to PDF with headless Chromium. Exit 1 if a notebook failed (the report is still "
            "written and shows the error).")
    p = groups["root"].add_parser("report", help="execute the notebooks and build the HTML + PDF report",
                                  description=desc)
    p.add_argument("--profile", default="quick", metavar="NAME|PATH.yaml",
                   help="smoke, quick (default), full, or a profile YAML (`hw3 init DIR` copies one to edit)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="data folder (default: the profile's data_dir, made with the embedded generator if absent)")
    p.add_argument("--out", default="report", metavar="DIR", help="report folder (default: report)")
    p.add_argument("--device", default="auto", help="auto (default: cuda if available), cpu, cuda, cuda:N")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="notebook parameter override, VALUE parsed as YAML; KEY for every notebook that has it, "
                        "or p1.KEY for one (repeatable)")
    p.add_argument("--only", default=None, metavar="p1,p3", help="run and report only these problems")
    p.add_argument("--no-pdf", action="store_true", help="skip the PDF")
    p.set_defaults(func=_run)
