"""The package's import graph: no cycles (lazy imports inside functions count too), and ``hw3lib.eval`` never
imports ``hw3lib.train`` — the layering ``data → models → train → eval/plots → report`` runs one way."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hw3lib"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, modules: set[str]) -> bool:
    return name in modules


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (annotations only, never executed)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """``{module: {hw3lib modules it imports}}`` from every import statement, at any depth."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_lines(tree)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}", modules) else base for a in node.names]
            else:
                continue
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
        for n in sorted(graph[m]):
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


def test_no_import_cycle_inside_hw3lib():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_eval_and_plots_never_import_train():
    bad = {m: sorted(t for t in ts if t.startswith("hw3lib.train"))
           for m, ts in import_graph().items() if m.startswith(("hw3lib.eval", "hw3lib.plots", "hw3lib.models",
                                                                 "hw3lib.data"))}
    assert not {m: t for m, t in bad.items() if t}


def test_the_checks_catch_what_they_should():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("layer,forbidden", [("hw3lib.data", ("hw3lib.models", "hw3lib.train", "hw3lib.eval")),
                                             ("hw3lib.models", ("hw3lib.train", "hw3lib.eval", "hw3lib.report"))])
def test_lower_layers_do_not_reach_up(layer, forbidden):
    graph = import_graph()
    bad = {m: sorted(t for t in ts if t.startswith(forbidden)) for m, ts in graph.items() if m.startswith(layer)}
    assert not {m: t for m, t in bad.items() if t}
