"""Print the HTML report to PDF with headless Chromium (no network, fresh profile, atomic write)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hw3lib import settings

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
         "--no-pdf-header-footer", "--print-to-pdf-no-header")


def find_chromium() -> str | None:
    """``$HW3_CHROMIUM`` if set (must exist), else the first Chromium/Chrome on ``PATH``."""
    env = settings.CHROMIUM.value
    if env:
        return env if (Path(env).is_file() or shutil.which(env)) else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def print_pdf(html: str | Path, pdf: str | Path, *, chromium: str | None = None, timeout: float = 180) -> Path:
    """Print ``html`` to ``pdf``; raises ``FileNotFoundError`` (no browser) or ``RuntimeError`` (it failed)."""
    browser = chromium or find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found (set HW3_CHROMIUM or install chromium)")
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hw3-chromium-") as profile:
        tmp = pdf.with_name(f".{pdf.name}.{os.getpid()}.tmp")
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--crash-dumps-dir={profile}",
               f"--print-to-pdf={tmp}", html.as_uri()]
        env = {**os.environ, "HOME": profile}  # Chromium writes caches under $HOME
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  timeout=timeout, env=env)
        except subprocess.TimeoutExpired as exc:
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"{browser} did not finish printing within {timeout:.0f} s") from exc
        if not tmp.is_file() or tmp.stat().st_size == 0:
            tmp.unlink(missing_ok=True)
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise RuntimeError(f"{browser} printed no PDF: {tail[0]}")
        os.replace(tmp, pdf)
    return pdf


def page_texts(pdf: str | Path) -> list[str]:
    """Each page's text (``pdftotext -layout``, poppler-utils); raises ``FileNotFoundError`` without it."""
    if shutil.which("pdftotext") is None:
        raise FileNotFoundError("no pdftotext (apt-get install -y poppler-utils)")
    proc = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=True)
    pages = proc.stdout.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages  # the text ends with a form feed


def body_pages(pdf: str | Path) -> tuple[int, int | None]:
    """``(pages, body)``: the PDF's page count and the pages before the one the appendix's heading opens (a line
    that is only "Appendix"; the contents' entry is numbered), ``None`` when the report has no appendix."""
    pages = page_texts(pdf)
    for number, text in enumerate(pages, 1):
        if any(line.strip() == "Appendix" for line in text.splitlines()):
            return len(pages), number - 1
    return len(pages), None
