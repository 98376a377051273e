"""environment.yml and pyproject.toml name the same dependencies; the CI script runs the README's test command."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_name(r) for r in pip if not r.startswith("-e")}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    assert "python=3.11" in env["dependencies"]
    # the exact version specifiers agree too, not just the names
    spec = {_name(r): r.replace(" ", "") for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    for r in pip:
        if not r.startswith("-e"):
            assert spec[_name(r)] == r.replace(" ", ""), r


def test_torch_ranges_admit_the_local_builds():
    from packaging.specifiers import SpecifierSet

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(d for d in deps if _name(d) == "torch")
    vision = next(d for d in deps if _name(d) == "torchvision")
    assert "2.14.1" in SpecifierSet(torch[len("torch"):])
    assert "0.29.1" in SpecifierSet(vision[len("torchvision"):])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make report" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# Import name → distribution name, where they differ.
DISTRIBUTIONS = {"PIL": "pillow", "sklearn": "scikit-learn", "skimage": "scikit-image", "yaml": "pyyaml",
                 "IPython": "ipython"}


def _imported_packages(folder: Path) -> set[str]:
    import ast
    import sys

    found = set()
    for file in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "hw3lib"}


def test_every_imported_package_is_declared():
    """Every package hw3lib imports is a dependency, or in the cluster extra (hw3lib.report.slurm imports submitit
    only when present)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["cluster"]}
    imported = {_name(DISTRIBUTIONS.get(m, m)) for m in _imported_packages(ROOT / "hw3lib")}
    assert imported - declared == set(), f"imported by hw3lib but not in pyproject's dependencies: {imported - declared}"


def test_one_python_version_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert "python=3.11" in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert re.search(r"^PYTHON \?= python3\.11$", (ROOT / "Makefile").read_text(), re.M)
    assert "Python 3.11" in (ROOT / "README.md").read_text()
