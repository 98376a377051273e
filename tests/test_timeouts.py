"""Nothing hangs: a notebook cell past the profile's ``cell_timeout`` ends ``hw3 report`` with one line naming the
notebook and the cell, and a test past pyproject's pytest timeout fails with one line naming the test."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from hw3lib.report.profile import DEFAULT_CELL_TIMEOUT, PROFILES_DIR, load_profile

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 5  # the test profile's cell_timeout, seconds


def _notebook(path: Path, title: str, body: list[str], after: list | None = None) -> None:
    params = new_code_cell('data_dir = "../data"\nrun_dir = "../runs/x"\nfigures_dir = "../figures"\n'
                           'device = "auto"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell(f"# {title}"), params] + [new_code_cell(s) for s in body]
                      + list(after or []))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


@pytest.mark.long
def test_a_hanging_cell_ends_the_report_with_one_line_naming_it(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "p1_vae.ipynb", "Problem 1", [
        "import json, os\nos.makedirs(run_dir, exist_ok=True)\n"
        "open(os.path.join(run_dir, 'metrics.json'), 'w').write(json.dumps({'done': 1}))",
        "os.write(2, b'C_LEVEL_NOISE\\n')  # the kernel process's own stderr, as libzmq or torch's C++ would write"])
    _notebook(nbs / "p2_gan.ipynb", "Problem 2", [
        "import os\nos.makedirs(run_dir, exist_ok=True)\nopen(os.path.join(run_dir, 'finished.txt'), 'w').write('x')",
        "open(os.path.join(run_dir, 'kernel.pid'), 'w').write(str(os.getpid()))",
        "import time\ntime.sleep(600)  # a deadlocked DataLoader, as far as the report can tell",
    ], after=[new_markdown_cell("## After the hang"), new_code_cell("print('NEVER_REACHED')")])
    (tmp_path / "data" / "face").mkdir(parents=True)
    (tmp_path / "data" / "hw3_data.json").write_text(json.dumps({"kind": "embedded", "size": "tiny", "seed": 0}))
    profile = tmp_path / "hang.yaml"
    profile.write_text(f"data_size: null\nruns_root: {tmp_path / 'runs'}\nfigures_dir: {tmp_path / 'figures'}\n"
                       f"cell_timeout: {TIMEOUT}\n")
    env = {**os.environ, "HW3_NOTEBOOKS": str(nbs), "HW3_PROGRESS": "0", "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hw3lib", "report", "--profile", str(profile), "--data",
                           str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--only", "p1,p2", "--no-pdf", "--jobs", "0",
                           "--device", "cpu"], capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - t0
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert proc.returncode == 1, proc.stderr
    assert run["notebooks"]["p2_gan"]["wall_s"] < TIMEOUT + 30
    assert wall < TIMEOUT + 30 + run["notebooks"]["p1_vae"]["wall_s"] + 30, wall  # + start-up and the HTML

    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr and "Timeout waiting" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    executed = tmp_path / "out" / "executed" / "p2_gan.ipynb"
    m = re.fullmatch(r"hw3 report: p2_gan failed: CellTimeoutError: cell (\d+) \(import time\) ran past "
                     rf"cell_timeout {TIMEOUT} s and was stopped with its kernel \(see (\S+?)"
                     r"(?:; its kernel's stderr: \S+)?\)", lines[0])
    assert m and Path(m.group(2)) == executed, lines[0]
    cell = nbformat.read(str(executed), as_version=4).cells[int(m.group(1))]
    assert "time.sleep(600)" in cell.source
    assert [o.get("ename") for o in cell.outputs if o.output_type == "error"] == ["CellTimeoutError"]

    # what finished before the hang is kept: the first notebook, and the hanging one's earlier cells
    assert run["notebooks"]["p1_vae"]["status"] == "ok" and run["notebooks"]["p2_gan"]["status"] == "failed"
    assert (tmp_path / "runs" / "p1_vae" / "metrics.json").is_file()
    # a kernel's process-level stderr goes to a log beside its executed notebook, not to the report's terminal
    assert "C_LEVEL_NOISE" not in proc.stderr + proc.stdout
    assert "C_LEVEL_NOISE" in (tmp_path / "out" / "executed" / "p1_vae.kernel.log").read_text()
    assert (tmp_path / "runs" / "p2_gan" / "finished.txt").is_file()
    html = (tmp_path / "out" / "hw3_report.html").read_text()
    assert "CellTimeoutError" in html and "Not run: After the hang." in html and "NEVER_REACHED" not in html
    pid = int((tmp_path / "runs" / "p2_gan" / "kernel.pid").read_text())
    deadline = time.time() + 15
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.5)
    assert not _alive(pid), f"the hung kernel {pid} outlived hw3 report"


@pytest.mark.parametrize("text, needle", [("cell_timeout: 0\n", "cell_timeout 0"),
                                          ("cell_timeout: soon\n", "cell_timeout 'soon'"),
                                          ("cell_timeout: 2.5\n", "cell_timeout 2.5")])
def test_cell_timeout_must_be_whole_seconds(tmp_path, text, needle):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(needle)):
        load_profile(path)


def test_cell_timeout_defaults_and_shipped_values(tmp_path):
    (tmp_path / "none.yaml").write_text("cell_timeout: null\n")
    (tmp_path / "absent.yaml").write_text("description: x\n")
    assert load_profile(tmp_path / "none.yaml").cell_timeout is None
    assert load_profile(tmp_path / "absent.yaml").cell_timeout == DEFAULT_CELL_TIMEOUT >= 3600
    for name in ("smoke", "quick", "full"):
        text = (PROFILES_DIR / f"{name}.yaml").read_text()
        assert re.search(r"^cell_timeout: \d+ +# ", text, re.M), f"{name}.yaml sets and explains cell_timeout"
        assert load_profile(name).cell_timeout >= 600


def test_pytest_timeout_is_configured_and_names_the_test(tmp_path):
    """pyproject sets pytest-timeout; a test past it fails with the summary line naming it (a 2 s limit here)."""
    ini = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert ini["timeout"] >= 900 and ini["timeout_method"] == "signal"
    (tmp_path / "test_hang.py").write_text("import time\n\ndef test_hangs():\n    time.sleep(60)\n\n"
                                           "def test_fine():\n    assert True\n")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir",
                           str(tmp_path), "-o", "timeout=2", "-p", "no:cacheprovider", str(tmp_path / "test_hang.py")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1 and time.perf_counter() - t0 < 60, proc.stdout
    failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED")]
    assert failed == ["FAILED test_hang.py::test_hangs - Failed: Timeout (>2.0s) from pytest-timeout."], proc.stdout
    assert "1 failed, 1 passed" in proc.stdout
