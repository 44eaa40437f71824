"""The shape of the code, checked on its source: layers, no import cycles, one storage boundary, one settings
object, no hidden import failures."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGES = ("bot", "indexer", "handlers")
FIRST_PARTY = (*PACKAGES, "tests")


def modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = modules()


def imported(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every first-party module ``name`` imports (at any depth of the file), with the line."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in MODULES else base), node.lineno


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for target, _line in imported(name, path):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def test_layers_the_core_never_imports_the_adapters() -> None:
    bad = []
    for name, path in MODULES.items():
        for target, line in imported(name, path):
            layer, other = name.split(".")[0], target.split(".")[0]
            if (layer == "bot" and other == "handlers") or (layer == "indexer" and other in ("bot", "handlers")):
                bad.append(f"{path.relative_to(REPO)}:{line}: {name} imports {target}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    graph = edges()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append([*stack[stack.index(n):], n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_sql_only_in_the_storage_modules_and_the_migrations() -> None:
    allowed = ("bot.storage", "bot.migrations")
    bad = [f"{path.relative_to(REPO)}:{line}: {target}"
           for name, path in MODULES.items() if not name.startswith(allowed)
           for target, line in imported(name, path) if target.split(".")[0] in ("sqlalchemy", "alembic")]
    assert not bad, "\n".join(bad)


def test_one_settings_object() -> None:
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id == "BaseSettings" for b in node.bases):
                found.append(f"{name}.{node.name}")
    assert found == ["bot.config.Settings"]


@pytest.mark.parametrize("folder", [*PACKAGES, "tests", "bench", "scripts"])
def test_a_broken_first_party_module_fails_loudly(folder: str) -> None:
    """No ``try: import ... except ImportError`` around our own modules, no ``importorskip`` of them."""
    bad = []
    for path in sorted((REPO / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                    isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                    for h in node.handlers):
                names = [a.name for n in node.body if isinstance(n, ast.Import) for a in n.names]
                names += [n.module or "" for n in node.body if isinstance(n, ast.ImportFrom)]
                if any(n.split(".")[0] in FIRST_PARTY for n in names):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno}")
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and str(node.args[0].value).split(".")[0] in FIRST_PARTY):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}: importorskip")
    assert not bad, "\n".join(bad)
