"""``hw3 report``: data → four executed notebooks → ``report/hw3_report.html`` → ``report/hw3_report.pdf``.

>>> result = build_report("smoke", out="/tmp/report")      # ReportResult(html=..., pdf=..., exit_code=0, ...)

:func:`build_report` runs these stages in order, each a function of its own:

1. :func:`plan_report` — the profile, the selected notebooks (:func:`select_notebooks`), the folders, the device;
   every parameter is checked here, before minutes go into the data;
2. :func:`resolve_data` — ``--data DIR``, else the profile's ``data_dir``, made with
   ``hw3lib.data.make.make_data`` at the profile's ``data_size`` when absent (profiles without one, ``full``, need
   ``--data``);
3. :func:`notebook_parameters` — profile + ``-p`` overrides + absolute data/run/figures paths and the device;
   then every run the notebooks will train (:func:`planned`) is trained by a pool of workers
   (:func:`hw3lib.report.pool.train_planned`; ``jobs=0`` leaves training to the notebooks);
4. :func:`run_notebooks` — ``pN_xxx.ipynb`` (the project's, the checkout's or the installed copies:
   ``hw3lib.project``) run with papermill (cwd: their folder, kernel ``python3`` of this interpreter) into
   ``OUT/executed/``, ``$HW3_TABLES_DIR`` = ``OUT/tables``, one at a time per core once the pool has trained their
   runs (:func:`notebook_lanes`), one live progress line per notebook (``hw3lib.report.progress``); a failing
   notebook is recorded and the others still run; a cell running past the profile's ``cell_timeout`` is stopped
   with its kernel and recorded as that notebook's failure;
5. :func:`report_header` and :func:`write_html` — one self-contained HTML (``hw3lib.report.html``); its first page
   has each problem's results at a glance (``hw3lib.report.glance``, from the runs' ``metrics.json``) and, per
   problem, the training time and runs (from the runs' checkpoints) beside the notebook's time;
6. :func:`print_report_pdf` — a PDF printed by headless Chromium (``hw3lib.report.pdf``);
7. :func:`write_run_json` — ``OUT/run.json``: profile, parameters, status and wall time per notebook, data,
   device, commit.

Exit status 1 when a notebook failed or is missing (after writing the report), 0 otherwise.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from hw3lib import settings
from hw3lib.project import notebooks_dir  # noqa: F401 (the notebooks hw3 report runs; tests import it from here)
from hw3lib.report.profile import (MANAGED, NOTEBOOKS, REPO_ROOT, Profile, load_profile, notebook_name,
                                   resolve_parameters)
from hw3lib.report.glance import TITLES  # the problems' titles (glance, which build uses, needs them too)
from hw3lib.results import fmt_seconds as _fmt_time

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

class _DropTimeoutLog(logging.Filter):
    """nbclient logs "Timeout waiting for execute reply" through papermill's logger: the timeout is said once,
    by :func:`run_notebooks`, in its own words."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout waiting for execute reply")


def kernel_log(dst: Path) -> Path:
    """Where the kernel that ran the executed notebook ``dst`` wrote its process's own stderr (kept when not empty)."""
    return dst.with_suffix(".kernel.log")


def _kernel_manager(log: Path):
    """A kernel manager whose kernels write their process's stderr to ``log``, not to the report's terminal: what
    lands there is C-level noise (libzmq asserting when a timed-out kernel is shut down, torch's C++ warnings);
    Python's own warnings and errors reach the notebook's outputs anyway."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log, "ab") as f:  # the child keeps its own copy of the descriptor
                kw["stderr"] = f
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


def _execute(src: Path, dst: Path, params: dict, cell_timeout: int | None = None) -> tuple[str, float, object]:
    """Run one notebook; returns (status, wall seconds, error or None). Never raises for notebook errors.

    A cell still running after ``cell_timeout`` seconds (the profile's key; None: no limit) stops the notebook:
    nbclient raises ``CellTimeoutError`` and shuts the kernel down; the error names that cell (:func:`_timed_out`).
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    from hw3lib.report.html import ProblemError

    running: list = []

    def timeout_for(cell) -> int | None:  # nbclient asks before each cell: remember which one is running
        running[:] = [cell]
        return cell_timeout

    quiet = _DropTimeoutLog()
    logging.getLogger("papermill").addFilter(quiet)
    log = kernel_log(dst)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        # The kernel's own log stays at CRITICAL: a kernel shut down mid-cell (a timeout) logs a ZMQ traceback at
        # ERROR; a kernel that dies is reported by nbclient (DeadKernelError) anyway.
        pm.execute_notebook(str(src), str(dst), parameters=params, cwd=str(src.parent), kernel_name="python3",
                            progress_bar=False, timeout_func=timeout_for, kernel_manager_class=_kernel_manager(log),
                            log_output=False, extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except PapermillExecutionError as exc:
        src_lines = [ln for ln in str(exc.source).splitlines() if ln.strip()]
        return "failed", time.perf_counter() - t0, ProblemError(
            exc.ename, str(exc.evalue), "\n".join(src_lines[:6]), exc.cell_index)
    except CellTimeoutError as exc:
        if "Cell execution timed out" in str(exc):  # not the 4 s wait for a finished cell's last outputs
            return "failed", time.perf_counter() - t0, _timed_out(dst, running[0] if running else None, cell_timeout)
        return "failed", time.perf_counter() - t0, ProblemError("CellTimeoutError", str(exc).strip().splitlines()[0], "")
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 — a dead kernel...: report it, run the others
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "failed", time.perf_counter() - t0, ProblemError(type(exc).__name__, msg, "")
    finally:
        logging.getLogger("papermill").removeFilter(quiet)
        if log.is_file() and not log.stat().st_size:
            log.unlink()
    return "ok", time.perf_counter() - t0, None


def _timed_out(dst: Path, cell, cell_timeout: int | None):
    """The error of a cell stopped by ``cell_timeout``: its index in the executed notebook ``dst`` (written by
    papermill on the way out) and first source line. The cell's error output (the kernel's shutdown shows as a
    KeyboardInterrupt, when it shows at all) becomes this error, so the report names the timeout."""
    import nbformat

    from hw3lib.checkpoint import atomic_write_text
    from hw3lib.report.html import ProblemError

    source = str(getattr(cell, "source", "") or "")
    lines = [ln for ln in source.splitlines() if ln.strip()]
    index, nb = None, None
    try:
        nb = nbformat.read(str(dst), as_version=4)
        same = [i for i, c in enumerate(nb.cells) if cell is not None and c.get("id") == cell.get("id")]
        same = same or [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source == source]
        index = same[0] if same else None
    except (OSError, ValueError):
        pass
    where = f"cell {index}" if index is not None else "a cell"
    evalue = (f"{where} ({lines[0].strip() if lines else 'empty'}) ran past cell_timeout {cell_timeout} s "
              "and was stopped with its kernel")
    if nb is not None and index is not None:
        outputs = [o for o in nb.cells[index].get("outputs", []) if o.get("output_type") != "error"]
        outputs.append(nbformat.v4.new_output("error", ename="CellTimeoutError", evalue=evalue, traceback=[]))
        nb.cells[index].outputs = outputs
        atomic_write_text(dst, nbformat.writes(nb))
    return ProblemError("CellTimeoutError", evalue, "\n".join(lines[:6]), index)


def notebook_defaults(notebook: Path) -> dict[str, Any]:
    """A notebook's parameters cell as Python values (unparseable ones left out; ``{}`` when the file is missing):
    to check a user's own copy against its problem's defaults (:func:`notebook_parameters`), never to learn which
    runs it trains."""
    import ast
    import contextlib

    from papermill import inspect_notebook

    if not notebook.is_file():
        return {}
    out = {}
    for name, p in inspect_notebook(str(notebook)).items():
        with contextlib.suppress(ValueError, SyntaxError):
            out[name] = ast.literal_eval(str(p.get("default")))
    return out


_SAID: set[str] = set()  # lines said once per process (the pool plans anew after each stage)


def _say_once(line: str) -> None:
    if line not in _SAID:
        _SAID.add(line)
        print(line, file=sys.stderr, flush=True)


def own_values(notebook: Path, problem, given=()) -> dict[str, Any]:
    """The parameters not ``given`` (by the profile, ``-p`` or the builder) whose value in ``notebook``'s parameters
    cell differs from its problem's default (a user's own copy, ``hw3 init``), each said in one line: ``hw3 report``
    passes them to the notebook and plans its runs with them, so no run is trained outside the pool."""
    defaults = problem.params.defaults()
    out = {k: v for k, v in notebook_defaults(notebook).items()
           if k in defaults and k not in given and v != defaults[k]}
    for k, v in out.items():
        _say_once(f"hw3 report: {notebook.name} sets {k} = {v!r} (hw3lib.problems.{problem.key}: "
                  f"{defaults[k]!r}); using {v!r}")
    return out


def _make_data(root: Path, size: str, figures_dir: Path) -> None:
    try:
        from hw3lib.data.make import make_data
    except ImportError as exc:
        raise ValueError(f"cannot make the embedded data ({exc}); pass --data DIR") from exc
    print(f"hw3 report: making the embedded {size} data in {root}", file=sys.stderr, flush=True)
    make_data(root, size, seed=0, figures_dir=figures_dir, progress=True)


# ---------------------------------------------------------------- stages

@dataclass
class Plan:
    """One report run, resolved before anything runs."""
    profile: Profile
    notebooks: list[str]                       # selected stems, in the report's order
    source_dir: Path                           # where the .ipynb files are
    out: Path
    runs: Path                                 # run folders: runs/NAME
    figures: Path
    device: Any                                # torch.device
    declared: dict[str, set[str] | None]       # notebook → its parameter names (None: the file is missing)
    overrides: list = field(default_factory=list)

    def source(self, name: str) -> Path:
        return self.source_dir / f"{name}.ipynb"

    def managed(self, data_dir: Path | None = None) -> dict[str, dict]:
        """The parameters the builder sets for each notebook (absolute paths, the device)."""
        return {n: {"data_dir": None if data_dir is None else str(data_dir), "figures_dir": str(self.figures),
                    "run_dir": str(self.runs / n), "runs_root": str(self.runs), "device": str(self.device)}
                for n in self.notebooks}


class Data(NamedTuple):
    dir: Path
    info: dict        # hw3lib.data.data_info: kind (embedded | real), size, seed, ...
    sizes: dict       # data_sizes: image counts per split


@dataclass
class Execution:
    """How one notebook's run went."""
    status: str                                # ok | failed | missing
    wall_s: float | None
    error: Any = None                          # hw3lib.report.html.ProblemError
    executed: Path | None = None               # the executed notebook (None: it never ran)
    runs_finished: Any = None                  # finished runs in the problem's run folder afterwards


def select_notebooks(only=None) -> list[str]:
    """``only`` (``"p1,p3"`` or a list of short or full names) → notebook stems in the report's order; all
    when empty."""
    if not only:
        return list(NOTEBOOKS)
    keys = only.split(",") if isinstance(only, str) else list(only)
    selected = {notebook_name(k.strip()) for k in keys if k.strip()}
    return [n for n in NOTEBOOKS if n in selected]


def plan_report(profile: str | Path | Profile, out: str | Path = "report", device: str = "auto", overrides=(),
                only=None, *, notebooks: str | Path | None = None, runs_root: str | Path | None = None,
                figures_dir: str | Path | None = None) -> Plan:
    """Resolve the profile, notebooks, folders and device, and check every parameter (a typo fails here, before
    any data is made)."""
    from papermill import inspect_notebook

    from hw3lib.device import get_device

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    names = select_notebooks(only)
    nb_dir = Path(notebooks) if notebooks else notebooks_dir()
    declared = {n: set(inspect_notebook(str(p))) if (p := nb_dir / f"{n}.ipynb").is_file() else None for n in names}
    plan = Plan(prof, names, nb_dir, Path(out).resolve(), Path(runs_root or prof.runs_root).resolve(),
                Path(figures_dir or prof.figures_dir).resolve(), get_device(device), declared, list(overrides or ()))
    resolve_parameters(prof, declared, plan.overrides, plan.managed())
    return plan


def resolve_data(profile: Profile, data: str | Path | None, figures: Path) -> Data:
    """``data`` (which must exist), else the profile's ``data_dir`` — made with the embedded generator at the
    profile's ``data_size`` when it holds no data — and what the folder holds."""
    from hw3lib.data import data_info

    if data is not None:
        root = Path(data).resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"data folder {root} not found")
    else:
        root = Path(profile.data_dir).resolve()
        if not _has_data(root):
            if profile.data_size is None:
                raise ValueError(f"profile {profile.name} needs the course data: pass --data DIR "
                                 f"({root} holds none)")
            _make_data(root, profile.data_size, figures)
    return Data(root, data_info(root), data_sizes(root))


def notebook_parameters(plan: Plan, data_dir: Path) -> dict[str, dict]:
    """Each notebook's parameters: profile → overrides → the builder's paths; the run folders of other problems
    a notebook reads (p2's ``vae_run_dir``...) follow ``runs_root`` too; a value of the notebook's parameters cell
    that differs from its problem's default (a user's own copy) is passed as it is, in one line
    (:func:`own_values`)."""
    from hw3lib import problems

    params = resolve_parameters(plan.profile, plan.declared, plan.overrides, plan.managed(data_dir))
    for n in plan.notebooks:
        problem = problems.get(n)
        for key, folder in problem.sibling_run_dirs().items():
            if plan.declared[n] is None or key in plan.declared[n]:
                params[n].setdefault(key, str(plan.runs / folder))
        params[n].update(own_values(plan.source(n), problem, set(params[n])))
    return params


def planned(plan: Plan, data_dir: Path, sizes: dict, params: dict[str, dict] | None = None) -> list:
    """Every run the selected problems train, from the parameters their notebooks get, by the problems' modules
    (:func:`hw3lib.report.plan.planned_runs`); step counts from ``sizes`` (:func:`data_sizes`), else the
    profile's embedded size."""
    from hw3lib.report import plan as planning

    params = params if params is not None else notebook_parameters(plan, data_dir)
    counts = planning.data_counts(sizes, plan.profile.data_size)
    return planning.planned_runs([n for n in plan.notebooks if plan.declared[n] is not None], params, counts)


def notebook_lanes(plan: Plan, pooled: bool) -> int:
    """How many notebooks run at once: one per core (at most one per notebook) once the pool has trained their
    runs, since they then only load runs, evaluate and plot, mostly on one core each; one at a time when the
    notebooks train their own runs (``jobs=0``: two kernels could otherwise train one shared run twice)."""
    from hw3lib.report.pool import cores

    return max(1, min(cores(), len(plan.notebooks))) if pooled else 1


def _longest_first(plan: Plan, previous: dict[str, dict]) -> list[str]:
    """The notebooks by their last build's time, longest first (the plan's order without one), so that the last
    to finish is a short one."""
    wall = {n: (previous.get(n) or {}).get("wall_s") or 0.0 for n in plan.notebooks}
    return sorted(plan.notebooks, key=lambda n: -wall[n])  # stable: the plan's order among equals


@contextmanager
def _kernel_threads(lanes: int) -> Iterator[None]:
    """Kernels started inside get ``cores // lanes`` intra-op threads (``OMP_NUM_THREADS``, read by torch when
    it starts), so concurrent notebooks share the cores instead of each taking all of them. A value the user set
    is kept."""
    from hw3lib.report.pool import cores

    if lanes <= 1 or "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, cores() // lanes))
    try:
        yield
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)


def run_notebooks(plan: Plan, params: dict[str, dict], *, progress: bool = True, lanes: int = 1
                  ) -> dict[str, Execution]:
    """Execute the selected notebooks into ``OUT/executed/`` (a missing or failing one is recorded, the others
    still run), ``lanes`` at a time (:func:`notebook_lanes`), the longest first; each has its own kernel,
    folder and progress line."""
    import queue
    from concurrent.futures import ThreadPoolExecutor

    from hw3lib.report.html import ProblemError
    from hw3lib.report.progress import ProblemProgress, previous_build
    from hw3lib.report.tables import tables_env

    executed_dir = plan.out / "executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    plan.figures.mkdir(parents=True, exist_ok=True)
    previous = previous_build(plan.out / RUN_JSON)
    positions: queue.SimpleQueue[int] = queue.SimpleQueue()  # a progress line per lane, reused
    for i in range(lanes):
        positions.put(i)

    def execute(n: str) -> Execution:
        src, dst = plan.source(n), executed_dir / f"{n}.ipynb"
        if plan.declared[n] is None:
            dst.unlink(missing_ok=True)
            return Execution("missing", None, ProblemError("FileNotFoundError", f"notebook {src} not found", ""))
        (plan.runs / n).mkdir(parents=True, exist_ok=True)
        position = positions.get()
        try:
            with ProblemProgress(TITLES[n], plan.runs / n, previous.get(n), params[n], enabled=progress,
                                 position=position) as bar:
                status, wall, error = _execute(src, dst, params[n], plan.profile.cell_timeout)
                bar.status = status
        finally:
            positions.put(position)
        if status != "ok":
            log = kernel_log(dst)
            also = f"; its kernel's stderr: {log}" if log.is_file() else ""
            print(f"hw3 report: {n} failed: {error.ename}: {error.evalue} (see {dst}{also})", file=sys.stderr,
                  flush=True)
        return Execution(status, wall, error, dst, bar.finished)

    order = _longest_first(plan, previous) if lanes > 1 else list(plan.notebooks)
    with python_kernel(plan.out / ".jupyter"), tables_env(plan.out / "tables"), _kernel_threads(lanes):
        if lanes == 1:
            done = {n: execute(n) for n in order}
        else:
            with ThreadPoolExecutor(lanes, thread_name_prefix="notebook") as pool:
                done = dict(zip(order, pool.map(execute, order)))
    return {n: done[n] for n in plan.notebooks}


def exit_code(runs: dict[str, Execution]) -> int:
    """1 when a notebook failed or is missing, else 0."""
    return int(any(r.status != "ok" for r in runs.values()))


def _runs_text(rec: dict | None) -> str:
    if not rec:
        return "—"
    text = f"{rec['trained']} trained, {rec['loaded']} loaded"
    return text + (f", {rec['unfinished']} unfinished" if rec["unfinished"] else "")


def report_header(plan: Plan, data: Data, params: dict[str, dict], runs: dict[str, Execution],
                  training: dict[str, dict] | None = None) -> dict:
    """The facts above the report (see ``template.html``): data, the results at a glance, profile, device, commit,
    status per problem with its training time and runs (``training``: :func:`hw3lib.report.glance.training_record`)
    and its notebook's time."""
    from hw3lib.device import describe
    from hw3lib.report.glance import glance_rows

    summary = ", ".join(f"{k} {v}" for k, v in data.info.items() if k in ("size", "seed") and v is not None)
    root = data.dir
    return {
        "data_kind": data.info.get("kind", "real"),
        "data_dir": str(root),
        "data_summary": summary or f"folder {root}",  # its folder: the Data line under the glance (page 1 room)
        "data_line": (f"embedded synthetic data ({summary or 'hw3lib generator'}) at {root}"
                      if data.info.get("kind") == "embedded" else f"real data at {root}"),
        "sizes_line": _sizes_line(data.sizes),
        "profile_line": f"{plan.profile.name} ({plan.profile.path})"
                        + (f" — {plan.profile.description}" if plan.profile.description else ""),
        "device": describe(plan.device),
        "commit": git_commit(),
        "built": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "failed": [TITLES[n].split(":")[0] for n in plan.notebooks if runs[n].status != "ok"],
        "glance": glance_rows(plan.notebooks, {n: runs[n].status for n in plan.notebooks}, plan.runs,
                              data.info.get("kind", "real")),
        "problems": [{"name": TITLES[n], "href": f"#section-{n}", "status": runs[n].status,
                      "wall": _fmt_time(runs[n].wall_s),
                      "train": _fmt_time((training or {}).get(n, {}).get("train_s")),
                      "runs": _runs_text((training or {}).get(n)),
                      "params": ", ".join(f"{k}={v}" for k, v in params[n].items()
                                          if k not in MANAGED and not k.endswith("_run_dir"))
                      or "notebook defaults"} for n in plan.notebooks],
    }


def write_html(plan: Plan, header: dict, runs: dict[str, Execution]) -> Path:
    """``OUT/hw3_report.html``: one section per selected notebook (its error box when it failed), readable by all."""
    from hw3lib.checkpoint import atomic_write_text
    from hw3lib.report import html as report_html

    used: set[str] = set()
    problems = [report_html.render_problem(n, runs[n].executed, TITLES[n], runs[n].error, used)
                for n in plan.notebooks]
    path = plan.out / HTML_NAME
    atomic_write_text(path, report_html.assemble(problems, header))
    os.chmod(path, 0o644)  # a document to share, unlike the private temp file it came from
    return path


def print_report_pdf(html_path: Path) -> tuple[Path | None, str | None]:
    """``hw3_report.pdf`` beside the HTML, or ``(None, why)`` when no Chromium is found or printing fails."""
    from hw3lib.report.pdf import find_chromium, print_pdf

    if find_chromium() is None:
        note = "no Chromium found (set HW3_CHROMIUM or install chromium): the report is HTML only"
    else:
        try:
            return print_pdf(html_path, html_path.parent / PDF_NAME), None
        except (RuntimeError, OSError) as exc:
            note = f"PDF not printed: {exc}"
    print(f"hw3 report: {note}", file=sys.stderr, flush=True)
    return None, note


def write_run_json(plan: Plan, data: Data, params: dict[str, dict], runs: dict[str, Execution], *, commit: str,
                   html: Path, pdf: Path | None, pdf_note: str | None, wall_s: float,
                   training: dict[str, dict] | None = None) -> Path:
    """``OUT/run.json``: what ran, with which parameters and data, how each notebook went, and where it all is."""
    from hw3lib.checkpoint import atomic_write_text
    from hw3lib.device import describe

    def notebook(n: str) -> dict:
        r = runs[n]
        return {"status": r.status, "wall_s": r.wall_s, "parameters": params[n], "source": str(plan.source(n)),
                "executed": str(r.executed) if r.executed else None, "run_dir": str(plan.runs / n),
                "metrics": str(plan.runs / n / "metrics.json"), "runs_finished": r.runs_finished,
                "training": (training or {}).get(n),
                "error": None if r.error is None else {"ename": r.error.ename, "evalue": r.error.evalue}}

    run = {
        "profile": {"name": plan.profile.name, "path": str(plan.profile.path),
                    "overrides": [list(p) for p in plan.overrides]},
        "data": {"dir": str(data.dir), "info": data.info, "sizes": data.sizes},
        "device": describe(plan.device),
        "commit": commit,
        "notebooks": {n: notebook(n) for n in plan.notebooks},
        "figures_dir": str(plan.figures),
        "html": str(html),
        "pdf": str(pdf) if pdf else None,
        "pdf_note": pdf_note,
        "wall_s": wall_s,
        "exit_code": exit_code(runs),
    }
    path = plan.out / RUN_JSON
    atomic_write_text(path, json.dumps(run, indent=2, default=str))
    os.chmod(path, 0o644)
    return path


def build_report(profile: str | Path | Profile, data: str | Path | None = None, out: str | Path = "report",
                 device: str = "auto", overrides=(), only=None, *, notebooks: str | Path | None = None,
                 runs_root: str | Path | None = None, figures_dir: str | Path | None = None, pdf: bool = True,
                 progress: bool = True, jobs: int | None = None, threads: int | None = None) -> ReportResult:
    """Run the pipeline (see the module docstring). ``overrides``: ``[(KEY, VALUE), ...]`` as ``-p``;
    ``only``: ``"p1,p3"`` or a list. ``notebooks``/``runs_root``/``figures_dir`` override the repository's
    notebooks folder and the profile's folders (tests). ``jobs``/``threads``: the pool that trains the planned
    runs before the notebooks (:mod:`hw3lib.report.pool`; default from the machine); ``jobs=0``: no pool, each
    notebook trains its own runs in its kernel."""
    started = time.perf_counter()
    plan = plan_report(profile, out, device, overrides, only, notebooks=notebooks, runs_root=runs_root,
                       figures_dir=figures_dir)
    found = resolve_data(plan.profile, data, plan.figures)
    params = notebook_parameters(plan, found.dir)
    progress = progress and settings.PROGRESS.value

    def plan_runs() -> list:  # the runs the notebooks use: the pool trains them; the header reports their times
        return planned(plan, found.dir, found.sizes, params)

    to_train = plan_runs()
    finished_before = {r.run_dir for r in to_train if r.status == "finished"}
    if jobs != 0:  # the plan's runs first, in parallel; the notebooks then load them
        from hw3lib.report.pool import train_in_stages, train_planned

        stages = [to_train]  # the first stage's plan, then planned anew (the development protocol's rungs)
        train_in_stages(lambda: stages.pop() if stages else plan_runs(),
                        lambda runs: train_planned(runs, found.dir, plan.device, jobs=jobs, threads=threads,
                                                   progress=progress))
        to_train = plan_runs() if to_train else to_train
    runs = run_notebooks(plan, params, progress=progress, lanes=notebook_lanes(plan, pooled=jobs != 0))
    from hw3lib.report.glance import training_record

    training = training_record(to_train, finished_before)
    header = report_header(plan, found, params, runs, training)
    html = write_html(plan, header, runs)
    pdf_path, pdf_note = print_report_pdf(html) if pdf else (None, None)
    run_json = write_run_json(plan, found, params, runs, commit=header["commit"], html=html, pdf=pdf_path,
                              pdf_note=pdf_note, wall_s=time.perf_counter() - started, training=training)
    return ReportResult(html, pdf_path, run_json, {n: r.status for n, r in runs.items()},
                        {n: r.wall_s for n, r in runs.items()}, exit_code(runs), pdf_note,
                        {n: r.executed for n, r in runs.items() if r.executed is not None})


# ---------------------------------------------------------------- CLI

def print_plan(profile, data=None, out="report", device="auto", overrides=(), only=None):
    """``hw3 report --plan``: the runs the profile will train and an estimate of their time on ``device``
    (:mod:`hw3lib.report.plan`); nothing is written. Returns the table (``plan.plan_table``)."""
    from hw3lib.device import describe
    from hw3lib.report import plan as planning

    plan = plan_report(profile, out, device, overrides, only)
    root = Path(data).resolve() if data is not None else Path(plan.profile.data_dir).resolve()
    if data is not None and not root.is_dir():
        raise FileNotFoundError(f"data folder {root} not found")
    # A profile without embedded data (full) is planned on the course's sizes unless --data names the folder.
    counted = data is not None or (plan.profile.data_size is not None and _has_data(root))
    sizes = data_sizes(root) if counted else {}
    runs = planned(plan, root, sizes)
    times = planning.estimate(runs, plan.device)
    where = (f"image counts of {root}" if sizes else
             f"image counts of the embedded {plan.profile.data_size} data (none in {root} yet)"
             if plan.profile.data_size else "the course data's image counts (--data DIR counts yours)")
    header = (f"hw3 report --profile {plan.profile.name} --plan: {len(runs)} runs on {describe(plan.device)}; "
              f"{where}; seconds per step measured now, on random images")
    table = planning.plan_table(runs, times)
    print(planning.format_plan(table, header))
    return table


def _run(args) -> int:
    overrides = [tuple(p) for p in (args.param or [])]
    if args.plan:
        print_plan(args.profile, args.data, args.out, args.device, overrides, args.only)
        return 0
    try:
        result = build_report(args.profile, data=args.data, out=args.out, device=args.device, overrides=overrides,
                              only=args.only, pdf=not args.no_pdf, jobs=args.jobs, threads=args.threads)
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
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="workers that train the planned runs before the notebooks (default: from the cores and "
                        "the device, as hw3 runs train; 0: each notebook trains its own runs)")
    p.add_argument("--threads", type=int, default=None, metavar="T", help="threads per run (default 1 on the CPU)")
    p.add_argument("--plan", action="store_true",
                   help="print every run the profile will train (problem, method, pair, seed, steps), which are "
                        "finished, and an estimate of their time from a short measured benchmark of each step on "
                        "this device; trains nothing")
    p.set_defaults(func=_run)
