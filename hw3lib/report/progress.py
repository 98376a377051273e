"""``hw3 report``'s live progress: one line per problem, nothing else.

    Problem 3: DANN — 4/9 runs finished · dann_usps_svhn_s0 step 200/300 · 1 min 20 s of ~3 min 05 s (last build)
    Problem 3: DANN — ok · 9/9 runs finished (5 new) · 3 min 02 s of ~3 min 05 s (last build)      (when done)

The line (``tqdm.auto``) is refreshed every couple of seconds from the problem's run folder: finished
checkpoints (``hw3lib.results.read_run``, each file read again only when it changes) and the step of the run in
progress. The total and the estimate come from the previous build's ``run.json`` in the same report folder, when
it ran the notebook with the same parameters; the first build shows counts and elapsed time only.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from hw3lib.results import RunRecord, checkpoints, fmt_seconds, read_run


def previous_build(run_json: Path) -> dict[str, dict]:
    """``{notebook: {"wall_s", "parameters", "runs_finished", "status"}}`` of an earlier build ({} if none)."""
    try:
        notebooks = json.loads(Path(run_json).read_text()).get("notebooks") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {n: v for n, v in notebooks.items() if isinstance(v, dict)}


class RunFolderWatch:
    """Finished runs and the run in progress under one folder; a checkpoint is re-read only when it changes."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._seen: dict[Path, tuple[tuple[int, int], RunRecord | None]] = {}

    def scan(self) -> tuple[int, RunRecord | None]:
        """(number of finished runs, the most recently written unfinished run or None)."""
        finished, latest, latest_t = 0, None, -1
        for file in checkpoints(self.folder):
            try:
                st = file.stat()
            except OSError:
                continue
            key = (st.st_mtime_ns, st.st_size)
            if file not in self._seen or self._seen[file][0] != key:
                try:
                    rec = read_run(file)
                except ValueError:
                    rec = None
                self._seen[file] = (key, rec)
            rec = self._seen[file][1]
            if rec is None:
                continue
            if rec.finished:
                finished += 1
            elif st.st_mtime_ns > latest_t:
                latest, latest_t = rec, st.st_mtime_ns
        return finished, latest


class ProblemProgress:
    """Context manager around one notebook's execution; ``.status`` set by the caller goes into the last line."""

    def __init__(self, label: str, run_dir: Path, previous: dict | None = None, parameters: dict | None = None,
                 *, enabled: bool = True, interval: float = 2.0, position: int | None = None):
        self.label, self.enabled, self.interval, self.position = label, enabled, interval, position
        self.watch = RunFolderWatch(run_dir)
        as_json = json.loads(json.dumps(parameters, default=str))  # what run.json holds (lists, not tuples)
        same = bool(previous) and previous.get("status") == "ok" and previous.get("parameters") == as_json
        self.estimate_s = previous.get("wall_s") if same else None
        self.expected = previous.get("runs_finished") if same else None
        self.status: str | None = None
        self.before = self.finished = 0
        self._bar = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def line(self, current: RunRecord | None = None) -> str:
        runs = f"{self.finished}/{self.expected}" if self.expected else f"{self.finished}"
        parts = [f"{runs} runs finished" + (f" ({self.finished - self.before} new)" if self.status else "")]
        if current is not None and self.status is None:
            parts.append(f"{current.path.parent.name} step {current.step}/{current.total_steps}")
        elapsed = fmt_seconds(time.perf_counter() - self._t0)
        parts.append(f"{elapsed} of ~{fmt_seconds(self.estimate_s)} (last build)" if self.estimate_s else elapsed)
        return " · ".join(([self.status] if self.status else []) + parts)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.finished, current = self.watch.scan()
            self._bar.set_description_str(f"{self.label} — {self.line(current)}")

    def __enter__(self) -> "ProblemProgress":
        self._t0 = time.perf_counter()
        self.before = self.finished = self.watch.scan()[0]
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc=f"{self.label} — {self.line()}", bar_format="{desc}", leave=True,
                             dynamic_ncols=True, position=self.position)
            self._thread = threading.Thread(target=self._poll, name=f"progress {self.label}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.finished = self.watch.scan()[0]
        if self._bar is not None:
            self._bar.set_description_str(f"{self.label} — {self.line()}", refresh=False)
            self._bar.close()
