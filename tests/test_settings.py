"""The ``HW3_*`` environment variables (issue 37): each declared once in :mod:`hw3lib.settings` and in README's table,
read only through it, when used, with one rule per type — a yes/no variable is off for 0/false/no/off, any case."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from hw3lib import paths, project, settings

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hw3lib"
NAME = re.compile(r"\bHW3_[A-Z0-9_]+\b")
OFF = ("0", "false", "FALSE", "No", "off", " OFF ")
ON = ("1", "true", "yes", "On", "anything")


def _readme_table() -> set[str]:
    return set(re.findall(r"^\| `(HW3_[A-Z0-9_]+)` \|", (ROOT / "README.md").read_text(), re.M))


def _mentioned(files) -> set[str]:
    return {n for f in files for n in NAME.findall(f.read_text(errors="replace"))}


def test_every_name_in_the_package_is_declared_and_in_the_readme():
    declared = {s.name for s in settings.ALL}
    assert len(declared) == len(settings.ALL)  # one declaration each
    assert _mentioned(p for p in PKG.rglob("*") if p.is_file() and p.suffix in (".py", ".html", ".css")) <= declared
    shell = _mentioned([ROOT / "Makefile", *ROOT.glob("hw3_*.sh")]) - declared  # read by make / bash only
    assert _readme_table() == declared | shell


def test_only_the_settings_module_reads_them():
    read = re.compile(r"(environ\.get\(|getenv\(|environ\[)\s*[\"']HW3_[A-Z0-9_]+[\"']\s*(?!\]\s*=[^=])")
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in PKG.rglob("*.py") if p.name != "settings.py"
                 for m in read.finditer(p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("flag", [s for s in settings.ALL if isinstance(s, settings.Flag)], ids=lambda s: s.name)
def test_every_flag_reads_0_false_no_off_as_off(flag, monkeypatch):
    for text in OFF:
        monkeypatch.setenv(flag.name, text)
        assert flag.value is False, text
    for text in ON:
        monkeypatch.setenv(flag.name, text)
        assert flag.value is True, text
    for blank in ("", "  "):
        monkeypatch.setenv(flag.name, blank)
        assert flag.value is flag.parse(flag.default)
    monkeypatch.delenv(flag.name)
    assert flag.value is flag.parse(flag.default)


def test_the_readers_follow_the_rule_when_called(monkeypatch):
    """Read at each call, not at import; what used to accept only "0" now accepts every off-word."""
    from hw3lib.cli import main
    from hw3lib.data import cache, commands
    from hw3lib.train.loop import progress_enabled

    for text in ("Off", "no", "1"):
        monkeypatch.setenv("HW3_PROGRESS", text)
        monkeypatch.setenv("HW3_CACHE", text)
        assert progress_enabled() is commands._progress() is cache.enabled() is (text == "1")
    monkeypatch.setenv("HW3_DEBUG", "0")
    assert main(["results", "/no/such/folder"]) == 2  # debug off: one error line, no traceback
    monkeypatch.setenv("HW3_DEBUG", "yes")
    with pytest.raises(ValueError, match="no run folder"):
        main(["results", "/no/such/folder"])


def test_values_and_defaults(monkeypatch, tmp_path):
    for s in settings.ALL:
        monkeypatch.delenv(s.name, raising=False)
    assert settings.RUNS.value == Path("runs/quick") and settings.CKPT_EVERY.value is None
    assert settings.DEVICE.value == "auto" and settings.TABLES_DIR.value is None
    assert settings.CACHE_DIR.value == Path.home() / ".cache" / "hw3lib"
    monkeypatch.setenv("HW3_CKPT_EVERY", " 25 ")
    monkeypatch.setenv("HW3_CACHE_DIR", "~/elsewhere")
    assert settings.CKPT_EVERY.value == 25 and settings.CACHE_DIR.value == Path.home() / "elsewhere"
    monkeypatch.setenv("HW3_CKPT_EVERY", "ten")
    with pytest.raises(ValueError, match="HW3_CKPT_EVERY='ten' is not an integer"):
        settings.CKPT_EVERY.value


def test_one_project_root(monkeypatch, tmp_path):
    assert project.project_root is paths.project_root
    monkeypatch.setenv("HW3_ROOT", str(tmp_path))
    assert project.project_root() == tmp_path.resolve()
