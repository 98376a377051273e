"""The package's import graph: no circles, and the layers run one way — a module imports its own layer and those
below it, never one above (:data:`LAYERS`, lowest first):

    base (settings, paths, devices, checkpoints) → data → models → methods → train → eval/plots → problems
    → commands/report

``hw3lib.problems`` turns each problem's parameters into its runs for the report, the pool, ``hw3 develop``,
``hw3 handin`` and the notebooks, so it sits below all of them. ``hw3lib.models`` holds what training and the report's evaluation both read (a classifier's predictions and
accuracy, the checkpoint validators), so ``train`` never imports ``eval``.

Two circle checks: one over every import that runs (module level and inside functions, which run on the first
call), one over the module-level design, where an ``if TYPE_CHECKING:`` import counts too: it is never executed,
but the two modules still depend on each other, and a circle papered over by it is a circle of the design."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hw3lib"

# The layers, lowest first; a module belongs to the layer of its longest listed prefix (``hw3lib`` alone: the
# package's ``__init__``). A new top-level module must be placed here (test_every_module_has_a_layer).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("hw3lib", "hw3lib.settings", "hw3lib.paths", "hw3lib.project", "hw3lib.device", "hw3lib.distributed",
              "hw3lib.runtime", "hw3lib.checkpoint")),
    ("data", ("hw3lib.data",)),
    ("models", ("hw3lib.models",)),
    ("methods", ("hw3lib.methods",)),
    ("train", ("hw3lib.train",)),
    ("eval/plots", ("hw3lib.eval", "hw3lib.plots")),
    ("problems", ("hw3lib.problems",)),
    ("commands/report", ("hw3lib.results", "hw3lib.predict", "hw3lib.handin", "hw3lib.widgets", "hw3lib.cli",
                         "hw3lib.__main__", "hw3lib.report")),
)

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (annotations only, never executed)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _import_nodes(tree: ast.AST, local: bool):
    """Every import statement of ``tree``; with ``local=False`` none inside a function body."""
    stack = [tree]
    while stack:
        for child in ast.iter_child_nodes(stack.pop()):
            if not local and isinstance(child, _FUNCTIONS):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def _imports_every_submodule(tree: ast.AST) -> bool:
    """A package ``__init__`` that imports each of its modules through ``importlib`` while iterating
    ``pkgutil.iter_modules`` (the method registry does): invisible to the import statements."""
    calls = {f"{n.func.value.id}.{n.func.attr}" for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)}
    return {"importlib.import_module", "pkgutil.iter_modules"} <= calls


def import_graph(root: Path = PKG, *, local: bool = True, annotations: bool = False) -> dict[str, set[str]]:
    """``{module: {modules of the package at root it imports}}``. ``local``: imports inside functions count;
    ``annotations``: imports under ``if TYPE_CHECKING:`` count."""
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = set() if annotations else _type_checking_lines(tree)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        targets: list[str] = []
        for node in _import_nodes(tree, local):
            if node.lineno in skip:
                continue
            if isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        if path.name == "__init__.py" and _imports_every_submodule(tree):
            targets += [m for m in modules if m.rsplit(".", 1)[0] == mod]
        for t in targets:
            while t and t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in modules and t != mod:
                graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle (first == last) through each group of modules that import each other (each strongly connected
    component of two or more modules, Tarjan's algorithm), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        for n in graph.get(m, ()):
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            group = {stack.pop()}
            while m not in group:
                group.add(stack.pop())
            if len(group) > 1:
                groups.append(group)

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return sorted(_shortest_circle(graph, g) for g in groups)


def _shortest_circle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest circle inside ``group`` (ties: alphabetical), by a breadth-first search from each module."""
    best: list[str] | None = None
    for start in sorted(group):
        paths, seen, queue = {start: [start]}, {start}, [start]
        while queue:
            m = queue.pop(0)
            if start in graph[m]:
                circle = paths[m] + [start]
                best = circle if best is None or (len(circle), circle) < (len(best), best) else best
                break
            for n in sorted(graph[m] & group - seen):
                seen.add(n)
                paths[n] = paths[m] + [n]
                queue.append(n)
    assert best is not None
    return best


def describe(circles: list[list[str]]) -> str:
    return "import circle(s): " + "; ".join(" → ".join(c) for c in circles)


def test_no_import_cycle_inside_hw3lib():
    """No circle among the imports that run, lazy ones inside functions included."""
    circles = import_circles(import_graph())
    assert not circles, describe(circles)


def test_no_import_circle_in_the_module_level_design():
    """No circle among module-level imports, those under ``if TYPE_CHECKING:`` included (issue 27 removed the last
    one: the UDA config imported the method registry, whose base imported the config back for annotations)."""
    circles = import_circles(import_graph(local=False, annotations=True))
    assert not circles, describe(circles)


def test_the_checks_catch_what_they_should():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    two = {"a": {"b"}, "b": {"a", "c"}, "c": set(), "x": {"y"}, "y": {"z"}, "z": {"x", "a"}}
    assert import_circles(two) == [["a", "b", "a"], ["x", "y", "z", "x"]]
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert describe([["a", "b", "a"]]) == "import circle(s): a → b → a"


def test_the_graph_sees_each_kind_of_import(tmp_path):
    """A toy package: ``cfg`` imports the registry ``reg``, whose ``__init__`` imports every module by importlib;
    ``reg.base`` imports ``cfg`` under TYPE_CHECKING, ``reg.one`` imports ``cfg`` inside a function."""
    pkg = tmp_path / "toy"
    (pkg / "reg").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "cfg.py": "from toy import reg\n",
        "reg/__init__.py": ("import importlib\nimport pkgutil\nfrom .base import X\n"
                            "for i in pkgutil.iter_modules(__path__):\n"
                            "    importlib.import_module(f'{__name__}.{i.name}')\n"),
        "reg/base.py": "from typing import TYPE_CHECKING\nX = 1\nif TYPE_CHECKING:\n    from toy.cfg import C\n",
        "reg/one.py": "from . import base\n\ndef f():\n    from ..cfg import C\n    return C\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    runtime = import_graph(pkg)
    assert runtime["toy.reg"] == {"toy.reg.base", "toy.reg.one"} and runtime["toy.reg.base"] == set()
    assert runtime["toy.reg.one"] == {"toy.reg.base", "toy.cfg"}
    assert describe(import_circles(runtime)) == "import circle(s): toy.cfg → toy.reg → toy.reg.one → toy.cfg"
    assert import_circles(import_graph(pkg, local=False)) == []
    design = import_circles(import_graph(pkg, local=False, annotations=True))
    assert design == [["toy.cfg", "toy.reg", "toy.reg.base", "toy.cfg"]]


def layer_of(module: str, layers=LAYERS) -> int | None:
    """Index in ``layers`` of the layer whose longest prefix matches ``module``; None when none does. The package
    itself (a name without a dot) stands for its ``__init__`` only."""
    best: tuple[int, int] | None = None
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            if (module == p or "." in p and module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> dict[str, list[str]]:
    """``{module: [modules of a higher layer it imports]}``, only modules that import one."""
    out = {m: sorted(t for t in ts if layer_of(t, layers) > layer_of(m, layers)) for m, ts in graph.items()}
    return {m: ts for m, ts in out.items() if ts}


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if layer_of(m) is None] == []


def test_no_layer_imports_a_higher_one():
    """Imports inside functions count: they run too."""
    assert upward_imports(import_graph()) == {}


def test_the_layer_check_catches_an_upward_import():
    layers = (("low", ("p.a",)), ("high", ("p.b",)), ("top", ("p",)))
    assert [layer_of(m, layers) for m in ("p.a", "p.a.x", "p.b", "p", "p.c", "q")] == [0, 0, 1, 2, None, None]
    assert upward_imports({"p.a.x": {"p.b"}, "p.b": {"p.a"}}, layers) == {"p.a.x": ["p.b"]}
