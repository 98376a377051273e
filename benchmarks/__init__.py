"""Benchmarks; each writes its own section of a results file (:func:`write_section`)."""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def write_section(path: str | Path, name: str, text: str, *, echo: str | None = None) -> int:
    """Put ``text`` between ``<!-- NAME -->`` and ``<!-- /NAME -->`` in ``path`` (replacing what was there, or
    appended), leaving the other benchmarks' sections as they are; written atomically. Prints ``echo`` (default
    ``text``) first; returns 0 (a benchmark's exit status)."""
    print(text if echo is None else echo, flush=True)
    from hw3lib.checkpoint import atomic_write_text

    path = Path(path)
    old = path.read_text() if path.is_file() else ""
    block = f"<!-- {name} -->\n{text.strip()}\n<!-- /{name} -->\n"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->\n.*?<!-- /{re.escape(name)} -->\n", re.S)
    new = pattern.sub(lambda _: block, old, count=1) if pattern.search(old) else (
        old + ("\n" if old and not old.endswith("\n\n") else "") + block)
    atomic_write_text(path, new)
    return 0


def machine_line(load_before: float) -> str:
    """The conditions of a CPU measurement: cores, instruction set (``/proc/cpuinfo``), torch, and the load
    average before and after (other processes on the machine)."""
    import torch

    from hw3lib.device import cpu_flags, cpu_isa

    flags = cpu_flags()
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, instruction set {cpu_isa(flags)} (/proc/cpuinfo; "
            f"amx_bf16 {'yes' if 'amx_bf16' in flags else 'no'}), ATen CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}; load average (1 min) "
            f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
