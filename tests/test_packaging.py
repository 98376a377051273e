"""environment.yml and pyproject.toml name the same dependencies; the README's set-up commands are Makefile
targets; the CI script runs the README's test command and then the slow tests."""
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


def _start_here() -> list[str]:
    """The commands of the README's "Start here" block (comments stripped)."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"^## Start here\s+```bash\n(.*?)^```", readme, re.S | re.M).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def _make_targets() -> dict[str, list[str]]:
    """Makefile target → its recipe lines."""
    targets: dict[str, list[str]] = {}
    current = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if m := re.match(r"^([A-Za-z][\w.-]*):(?!=)", line):
            current = targets.setdefault(m.group(1), [])
        elif line.startswith("\t") and current is not None:
            current.append(line.strip())
        elif not line.strip() or line.startswith("#"):
            continue
        else:
            current = None
    return targets


def _ci_commands() -> list[str]:
    """The commands .ci/run runs, in order (shell set-up and comments left out)."""
    out = []
    for line in (ROOT / ".ci" / "run").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "set ", "cd ")):
            out.append(line)
    return out


def test_readme_set_up_commands_are_makefile_targets():
    commands = _start_here()
    assert commands[:2] == ["make report", "make test"], commands
    targets = _make_targets()
    for command in commands:
        assert command.startswith("make ") and command.split()[1] in targets, command
    assert any("pytest" in r for r in targets["test"])
    assert any("hw3 report" in r for r in targets["report"])


def test_ci_runs_the_readme_test_command_then_the_slow_tests():
    ci, targets = _ci_commands(), _make_targets()
    readme_test = next(c for c in _start_here() if c == "make test")
    assert ci[0] == readme_test, ci  # first, exactly what the README tells a newcomer to run
    later = [c.split()[1] for c in ci[1:] if c.startswith("make ")]
    assert later, f".ci/run runs nothing after {readme_test}: {ci}"
    slow = [t for t in later if any(re.search(r"pytest -m (slow|\"\")$", r) for r in targets[t])]
    assert slow, f"no make target after {readme_test} in .ci/run runs the slow tests: {later}"
    # `make test` is the fast selection, so the slow tests run only in the second command
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "-m 'not slow'" in ini["addopts"] and targets["test"][-1].startswith("$(PY) -m pytest")
    assert "-m" not in targets["test"][-1].split()[3:], targets["test"]  # no marker expression: addopts' fast one
    text = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^set -euo pipefail$", text, re.M)  # a failing `make test` ends CI
    # the README says what CI runs, and where its measured times are (with their machine and commit)
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"`\.ci/run`.*`make test`.*`make test-slow`", readme, re.S)
    assert "docs/NOTES.md, \"Test times\"" in readme and "## Test times" in (ROOT / "docs" / "NOTES.md").read_text()


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
