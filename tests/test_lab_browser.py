"""The four notebooks in a real JupyterLab, driven by headless Chromium (playwright, the system's browser).

A temporary project (``.hw3-project`` marker, ``notebooks/`` with the smoke profile's parameters injected but
the notebooks' own project-relative paths kept, tiny embedded ``data/``) is served by ``jupyter lab``; each
notebook is opened, "Run All Cells" is chosen from the Run menu, and once the kernel is idle: no output is an
error or a traceback, every code cell ran, and where the notebook has an explorer its widgets render and moving
a slider (or, with no visible slider, picking another dropdown entry) changes the widget's image.

Slow (minutes: it trains every model on smoke budgets): ``make test-lab`` or
``pytest -m slow tests/test_lab_browser.py``; ``HW3_LAB_SHOTS=DIR`` keeps a screenshot of each notebook. Skipped, with the reason, without Chromium (``apt-get install -y
chromium``; or set ``HW3_CHROMIUM``), playwright or jupyterlab.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("p1_vae", "p2_gan", "p3_dann", "p4_uda")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_TIMEOUT_S = 1200  # one notebook, on a busy 2-core machine
# Lab settings: every cell stays in the DOM (no windowing), the notebook's kernel starts without asking, no news or
# update pop-ups.
LAB_SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
                    {"windowingMode": "none", "autoStartDefaultKernel": True},
                "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                    {"fetchNews": "false", "checkForUpdates": False}}
WIDGET_CALL = re.compile(r"\b(widgets\.\w+|\w*explorer)\(")


def chromium() -> str | None:
    """``$HW3_CHROMIUM``, else ``/usr/bin/chromium``, else ``chromium`` on PATH."""
    for exe in (os.environ.get("HW3_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if exe and os.access(exe, os.X_OK):
            return exe
    return None


def has_widget_cell(nb_path: Path) -> bool:
    """Whether a code cell displays an explorer (``widgets.xxx(`` or ``...explorer(``)."""
    cells = json.loads(nb_path.read_text())["cells"]
    return any(c["cell_type"] == "code" and WIDGET_CALL.search("".join(c["source"])) for c in cells)


# ---------------------------------------------------------------- the project, the server, the browser


@pytest.fixture(scope="module")
def lab_project(tmp_path_factory) -> Path:
    """proj/: ``.hw3-project``, the notebooks with the smoke profile's budgets (paths left at their defaults, so
    the notebooks resolve them themselves) and the smoke embedded data in ``data/``."""
    import nbformat
    from papermill import inspect_notebook
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from hw3lib.data.make import make_data
    from hw3lib.report.profile import load_profile

    proj = tmp_path_factory.mktemp("lab") / "proj"
    (proj / "notebooks").mkdir(parents=True)
    (proj / ".hw3-project").touch()
    smoke = load_profile("smoke")
    for name in NOTEBOOKS:
        src = ROOT / "notebooks" / f"{name}.ipynb"
        declared = set(inspect_notebook(str(src)))
        params = {**smoke.common, **smoke.notebooks.get(name, {}), "device": "cpu"}
        nb = parameterize_notebook(load_notebook_node(str(src)), {k: v for k, v in params.items() if k in declared})
        nbformat.write(nb, proj / "notebooks" / f"{name}.ipynb")
    make_data(proj / "data", "smoke", figures_dir=None, progress=False)
    return proj


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, token: str, path: str, method: str = "GET"):
    req = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the server and the kernels it started), SIGKILL after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def lab(lab_project, tmp_path_factory):
    """``jupyter lab`` serving ``lab_project`` on a free loopback port → (base url, token); stopped afterwards."""
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (pip install -e .)")
    home = tmp_path_factory.mktemp("jupyter")
    for rel, value in LAB_SETTINGS.items():
        (home / "settings" / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / "settings" / rel).write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "HW3_PROGRESS": "0", "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    env.pop("HW3_ROOT", None)
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                             f"--ServerApp.root_dir={lab_project}", "--ServerApp.port_retries=0"]
                            + (["--allow-root"] if os.geteuid() == 0 else []),
                            env=env, cwd=lab_project, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                _api(url, token, "/api/status")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not start:\n{(home / 'lab.log').read_text()[-3000:]}")
                time.sleep(1)
        yield url, token
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium: apt-get install -y chromium (or set HW3_CHROMIUM to a Chromium binary)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


# ---------------------------------------------------------------- driving the notebook


def _nb(page):
    """The notebook panel on screen (other tabs' cells stay in the DOM, hidden)."""
    return page.locator(".jp-NotebookPanel:visible").first


def _prompts(page) -> list[str]:
    return _nb(page).locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()


def _wait_idle(page, timeout_s: float) -> list[str]:
    """Until the kernel is idle and no cell is queued or running ([*]); returns the input prompts."""
    deadline = time.monotonic() + timeout_s
    indicator = _nb(page).locator(".jp-Notebook-ExecutionIndicator")
    while True:
        prompts = _prompts(page)
        status = indicator.first.get_attribute("data-status") if indicator.count() else "idle"
        if status == "idle" and not any("*" in p for p in prompts):
            time.sleep(1)  # idle between two queued cells: look again
            prompts = _prompts(page)
            if indicator.first.get_attribute("data-status") == "idle" and not any("*" in p for p in prompts):
                return prompts
        if time.monotonic() > deadline:
            raise AssertionError(f"kernel still busy after {timeout_s:.0f} s; prompts {prompts}")
        time.sleep(2)


def _errors(page) -> list[str]:
    """Texts of the outputs that report an exception: JupyterLab renders error outputs as stderr with the
    traceback; a plain stderr line (a warning) is not one."""
    texts = _nb(page).locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'],"
                         ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").all_inner_texts()
    return [t for t in texts if "Traceback" in t or re.search(r"^\w*(Error|Exception)\b", t, re.M)]


def _slider_images(area) -> list[str]:
    return [img.get_attribute("src") or "" for img in area.locator("img").all()]


def _move_slider(page, slider) -> None:
    """Drag the slider's handle to the far right end of its track, like a person."""
    track = slider.locator(".noUi-target, .slider-container, .noUi-base").first
    handle = slider.locator(".noUi-handle").first
    box, hbox = track.bounding_box(), handle.bounding_box()
    page.mouse.move(hbox["x"] + hbox["width"] / 2, hbox["y"] + hbox["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.98, hbox["y"] + hbox["height"] / 2, steps=8)
    page.mouse.up()


def _kernel_ready(url: str, token: str, path: str, timeout_s: float = 180) -> None:
    """Until the server has a session for ``path`` whose kernel is idle."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for s in _api(url, token, "/api/sessions") or []:
            if s.get("path", "").endswith(path) and (s.get("kernel") or {}).get("execution_state") == "idle":
                return
        time.sleep(1)
    raise AssertionError(f"no idle kernel for {path} after {timeout_s:.0f} s: {_api(url, token, '/api/sessions')}")


def _open_and_run_all(page, url: str, token: str, path: str, timeout_s: float = RUN_TIMEOUT_S) -> list[str]:
    """Open ``path`` (under the lab's root), wait for its kernel, Run → Run All Cells, wait until idle."""
    page.goto(f"{url}/lab/tree/{path}?reset&token={token}", timeout=120_000)  # reset: no tabs of earlier tests
    _nb(page).locator(".jp-Cell").first.wait_for(timeout=120_000)
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    with contextlib.suppress(Exception):  # only when the kernel preference is not honoured: accept, as a person would
        dialog.wait_for(timeout=3000)
        dialog.locator("button.jp-mod-accept").click()
    _kernel_ready(url, token, path)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    page.wait_for_timeout(2000)
    return _wait_idle(page, timeout_s)


def _control_changes_image(page, name: str) -> str:
    """Move the first visible slider of the first explorer (else pick another entry of its first dropdown: the
    UDA explorer hides its step slider for runs without snapshots); assert the explorer's image changes.
    Returns what was changed, 'old → new'."""
    nb = _nb(page)
    widgets = nb.locator(".jp-OutputArea-output .jupyter-widgets")
    assert widgets.count() > 0 and nb.locator(".jp-OutputArea-output .widget-slider").count() > 0, \
        f"{name}: the explorer's widgets did not render"
    sliders = nb.locator(".jp-OutputArea-output .widget-slider:visible")
    control = sliders.first if sliders.count() else nb.locator(".jp-OutputArea-output .widget-dropdown").first
    area = control.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')][1]")
    before_images = _slider_images(area)
    assert any(src.startswith(("data:image", "blob:")) for src in before_images), f"{name}: no widget image"
    control.scroll_into_view_if_needed()
    if sliders.count():
        readout = control.locator(".widget-readout").first
        before = readout.inner_text()
        _move_slider(page, control)
        after = lambda: readout.inner_text()  # noqa: E731
    else:
        select = control.locator("select")
        before = select.input_value()
        options = select.locator("option").all_inner_texts()
        assert len(options) > 1, f"{name}: a dropdown with one entry ({options}) and no visible slider"
        select.select_option(index=1)
        after = select.input_value
    deadline = time.monotonic() + 300  # the UDA explorer computes a t-SNE for a new run
    while _slider_images(area) == before_images and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    assert after() != before, f"{name}: the control did not change ({before})"
    assert _slider_images(area) != before_images, f"{name}: changing {before} did not change the widget's image"
    _wait_idle(page, 120)
    return f"{'slider' if sliders.count() else 'dropdown'} {before} → {after()}"


@contextlib.contextmanager
def _page(browser, lab, folder: Path, name: str):
    """A new page; on a failure a full-page screenshot and the page's HTML are saved (named in the error);
    afterwards the page is closed and every kernel shut down (memory for the next notebook)."""
    url, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        yield page
        if os.environ.get("HW3_LAB_SHOTS"):  # a folder: keep a screenshot of every notebook, to look at
            Path(os.environ["HW3_LAB_SHOTS"]).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(os.environ["HW3_LAB_SHOTS"]) / f"{name}.png"), full_page=True)
    except Exception as exc:
        shot, html = folder / f"{name}.png", folder / f"{name}.html"
        try:
            page.screenshot(path=str(shot), full_page=True)
            html.write_text(page.content())
        except Exception:  # noqa: BLE001 (the page may be gone; the original error is what matters)
            pass
        raise AssertionError(f"{exc}\n(screenshot {shot}, page {html})") from exc
    finally:
        page.close()
        for s in _api(url, token, "/api/sessions") or []:
            _api(url, token, f"/api/sessions/{s['id']}", method="DELETE")


CANARY = ["from hw3lib import widgets\nfrom hw3lib.models.dcgan import Generator\nimport torch\n\n"
          "torch.manual_seed(0)\ndisplay(widgets.gan_explorer(Generator(nz=8, ngf=4), size=64, frames=3))",
          "raise ValueError('canary')",
          "print('never runs')"]


def test_the_checks_see_an_error_and_a_live_widget(lab, lab_project, browser, tmp_path):
    """The machinery itself: a notebook whose second cell raises is caught, the cell after it is reported as not
    run, and a tiny explorer renders and reacts to its slider (a check that could not fail would prove nothing)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(src) for src in CANARY])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab_project / "notebooks" / "canary.ipynb")
    with _page(browser, lab, tmp_path, "canary") as page:
        prompts = _open_and_run_all(page, *lab, "notebooks/canary.ipynb", 300)
        errors = _errors(page)
        assert len(errors) == 1 and "canary" in errors[0] and "ValueError" in errors[0], errors
        assert re.search(r"\[\d+\]", prompts[1]) and not re.search(r"\[\d+\]", prompts[2]), prompts
        assert _control_changes_image(page, "canary").startswith("slider 0.00 → ")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(name, lab, lab_project, browser, tmp_path):
    t0 = time.monotonic()
    with _page(browser, lab, tmp_path, name) as page:
        prompts = _open_and_run_all(page, *lab, f"notebooks/{name}.ipynb")
        ran_s = time.monotonic() - t0
        errors = _errors(page)
        assert not errors, f"{name}: {len(errors)} error output(s); first:\n{errors[0][-3000:]}"
        assert prompts and all(re.search(r"\[\d+\]", p) for p in prompts), f"{name}: cells that did not run: {prompts}"
        if not has_widget_cell(lab_project / "notebooks" / f"{name}.ipynb"):
            print(f"{name}: ran in {ran_s:.0f} s; no explorer cell yet")
            return
        changed = _control_changes_image(page, name)
        assert not _errors(page), f"{name}: the widget callback raised"
        print(f"{name}: ran in {ran_s:.0f} s; {changed} changed the explorer's image")
