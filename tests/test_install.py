"""Install anywhere: the wheel carries the notebooks and profiles, lookups prefer the project, then the checkout,
then the installed copies; ``hw3 init`` makes a project folder; the slow test installs the wheel into a fresh venv
and builds the smoke report in an empty folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from hw3lib import project
from hw3lib.cli import main
from hw3lib.report.profile import NOTEBOOKS, load_profile

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "hw3lib", "notebooks", "report/profiles")


def build_wheel(tmp: Path) -> Path:
    """The wheel of a copy of this checkout's sources (no build/ or egg-info of the checkout reused or left)."""
    src = tmp / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "_shipped"))
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True, text=True)
    (wheel,) = (tmp / "dist").glob("hw3lib-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_carries_notebooks_profiles_and_report_assets(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for nb in NOTEBOOKS:
            shipped = f"hw3lib/_shipped/notebooks/{nb}.ipynb"
            assert shipped in names
            assert zf.read(shipped) == (ROOT / "notebooks" / f"{nb}.ipynb").read_bytes()
        for prof in ("smoke", "quick", "full"):
            assert zf.read(f"hw3lib/_shipped/profiles/{prof}.yaml") == (ROOT / "report/profiles" / f"{prof}.yaml").read_bytes()
        assert {"hw3lib/report/style.css", "hw3lib/report/template.html", "hw3lib/project.py"} <= names
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "hw3 = hw3lib.cli:main" in zf.read(entry).decode()


# ---------------------------------------------------------------- where notebooks and profiles come from

@pytest.fixture
def installed_layout(tmp_path, monkeypatch):
    """Pretend to be a non-editable install: no checkout, shipped copies under tmp/_shipped."""
    shipped = tmp_path / "_shipped"
    (shipped / "notebooks").mkdir(parents=True)
    (shipped / "profiles").mkdir()
    for nb in NOTEBOOKS:
        shutil.copy2(ROOT / "notebooks" / f"{nb}.ipynb", shipped / "notebooks")
    for prof in (ROOT / "report" / "profiles").glob("*.yaml"):
        shutil.copy2(prof, shipped / "profiles")
    monkeypatch.setattr(project, "checkout_root", lambda: None)
    monkeypatch.setattr(project, "SHIPPED_DIR", shipped)
    monkeypatch.delenv("HW3_NOTEBOOKS", raising=False)
    monkeypatch.delenv("HW3_ROOT", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return shipped


def test_checkout_is_found_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HW3_NOTEBOOKS", raising=False)
    monkeypatch.delenv("HW3_ROOT", raising=False)
    assert project.checkout_root() == ROOT
    assert project.notebooks_dir() == ROOT / "notebooks"
    assert project.profiles_dir() == ROOT / "report" / "profiles"


def test_installed_copies_then_project_then_env(installed_layout, tmp_path, monkeypatch):
    shipped = installed_layout
    assert project.notebooks_dir() == shipped / "notebooks"
    assert project.profiles_dir() == shipped / "profiles"
    # a project made by hw3 init: its own notebooks win, from any folder below it
    assert main(["init", "proj"]) == 0
    (Path("proj") / "sub").mkdir()
    monkeypatch.chdir("proj/sub")
    assert project.notebooks_dir() == tmp_path / "work" / "proj" / "notebooks"
    monkeypatch.setenv("HW3_NOTEBOOKS", str(tmp_path / "elsewhere"))
    assert project.notebooks_dir() == tmp_path / "elsewhere"


def test_profiles_by_name_load_from_installed_copies(installed_layout, monkeypatch):
    from hw3lib.report import profile as profile_mod
    from hw3lib.report.build import git_commit

    monkeypatch.setattr(profile_mod, "PROFILES_DIR", project.profiles_dir())
    assert load_profile("smoke").path == installed_layout / "profiles" / "smoke.yaml"
    assert git_commit(None).endswith("(installed package)")


# ---------------------------------------------------------------- hw3 init

def test_init_copies_notebooks_profile_and_marker(tmp_path, capsys):
    dest = tmp_path / "mine"
    assert main(["init", str(dest)]) == 0
    assert "hw3 report --profile my.yaml" in capsys.readouterr().out
    for nb in NOTEBOOKS:
        assert (dest / "notebooks" / f"{nb}.ipynb").read_bytes() == (ROOT / "notebooks" / f"{nb}.ipynb").read_bytes()
    assert (dest / project.MARKER).is_file()
    mine, quick = load_profile(dest / "my.yaml"), load_profile("quick")
    assert (mine.name, mine.data_size, mine.runs_root, mine.notebooks) == ("my", "quick", quick.runs_root, {})
    assert yaml.safe_load((dest / "my.yaml").read_text()) == yaml.safe_load(quick.path.read_text())
    assert project.project_root(dest / "notebooks") == dest.resolve()

    assert main(["init", str(tmp_path / "s"), "--profile", "smoke", "--name", "tiny"]) == 0
    assert load_profile(tmp_path / "s" / "tiny.yaml").data_size == "smoke"


def test_init_refuses_to_overwrite_anything(tmp_path, capsys):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "my.yaml").write_text("description: my own edits\n")
    assert main(["init", str(dest)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hw3: error:") and "my.yaml" in err and "overwrite" in err and "\n" not in err
    assert (dest / "my.yaml").read_text() == "description: my own edits\n"
    assert not (dest / "notebooks").exists() and not (dest / project.MARKER).exists()  # nothing half-written
    assert main(["init", str(tmp_path / "x"), "--profile", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "y"), "--name", "../escape"]) == 2
    assert not (tmp_path / "escape.yaml").exists()


# ---------------------------------------------------------------- the real thing: a wheel in a fresh venv



def _site_packages(venv: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))


@pytest.mark.slow
def test_wheel_install_runs_smoke_report_in_an_empty_folder(wheel, tmp_path):
    """No network: the venv sees this interpreter's packages (torch...) through a .pth file; only hw3lib comes from
    the wheel (pip --no-deps). Then `hw3 report --profile smoke --no-pdf` in an empty folder."""
    t0 = time.perf_counter()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = _site_packages(venv)
    (site / "shared-packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HW3_ROOT", "HW3_NOTEBOOKS", "HW3_RUNS")}
    # what a real install puts under the venv's share/ (nbconvert templates, the ipykernel spec) comes from here too
    env.update(HW3_PROGRESS="0", JUPYTER_PATH=str(Path(sys.prefix) / "share" / "jupyter"))
    where = subprocess.run([str(py), "-c", "import hw3lib, hw3lib.project as p; print(hw3lib.__file__); "
                            "print(p.notebooks_dir())"], capture_output=True, text=True, env=env, cwd=tmp_path)
    hw3lib_file, nb_dir = where.stdout.split()
    assert Path(hw3lib_file).is_relative_to(site) and Path(nb_dir).is_relative_to(site), where.stdout

    work = tmp_path / "work"
    work.mkdir()
    run = subprocess.run([str(venv / "bin" / "hw3"), "report", "--profile", "smoke", "--no-pdf"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=1800)
    print(f"wheel install + smoke report: {time.perf_counter() - t0:.0f} s")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (work / "report" / "hw3_report.html").is_file()
    info = json.loads((work / "report" / "run.json").read_text())
    print({n: (v["status"], v["error"]) for n, v in info["notebooks"].items()})
    for name, nb in info["notebooks"].items():
        assert Path(nb["source"]).is_relative_to(site), nb["source"]  # the installed notebooks ran
        assert nb["status"] == "ok" and nb["error"] is None, (name, nb["error"])
    assert info["commit"].endswith("(installed package)")
    assert Path(info["data"]["dir"]).is_relative_to(work) and (work / "runs" / "smoke").is_dir()
    assert subprocess.run([str(venv / "bin" / "hw3"), "init", "proj"], cwd=work, env=env).returncode == 0
    assert (work / "proj" / "notebooks" / "p4_uda.ipynb").is_file()
