"""The package's shape: imports point down the layers, no cycles, and each external system has one seam."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "tutelage"

# Lowest layer first; a module belongs to the longest prefix that names it.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "primitives",
        [
            "tutelage.errors",
            "tutelage.config",
            "tutelage.failpoints",
            "tutelage.rundir",
            "tutelage.runfiles",
            "tutelage.evals",  # the package itself exports only the primitives
            "tutelage.evals.harness",
            "tutelage.evals.metrics",
            "tutelage.evals.stats",
            "tutelage.evals.suites",
            "tutelage.evals.graders",
            "tutelage.evals.trajectory",
            "tutelage.memory.lesson",
            "tutelage.memory.query",
            "tutelage.memory._undo",
            "tutelage.loop.progress",
        ],
    ),
    (
        "backends",
        [
            "tutelage.backends",
            "tutelage.checkpoints",
            "tutelage.memory.store",
            "tutelage.memory.chroma",
            "tutelage.memory.jsonl",
            "tutelage.memory.embed",
            "tutelage.memory._leakage",
            "tutelage.agents.ledger",
            "tutelage.tools",
            "tutelage.tracking",
            "tutelage.train",
        ],
    ),
    (
        "students",
        [
            "tutelage.agents",
            "tutelage.memory",
            "tutelage.optimizers",
            "tutelage.train.datasets",
        ],
    ),
    ("loop", ["tutelage.loop"]),
    (
        "applications",
        [
            "tutelage",
            "tutelage.api",
            "tutelage.improve",
            "tutelage.cli",
            "tutelage.testing",
            "tutelage.evals.runner",
            "tutelage.evals.transfer",
            "tutelage.evals.baselines",
            "tutelage.evals.compare",
            "tutelage.evals.report",
        ],
    ),
]


def _modules() -> dict[str, Path]:
    def name(path: Path) -> str:
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    return {name(p): p for p in PKG.rglob("*.py")}


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Every import of a package module by another, including imports inside functions."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs + ([base] if len(subs) < len(node.names) else [])
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target.startswith("tutelage") and target != name:
                    edges[name].add(target)
    return edges


def _layer(module: str) -> int:
    best, level = -1, -1
    for n, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), n
    return level


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycles() -> None:
    assert _cycles(_edges(_modules())) == []


def test_every_module_has_a_layer_and_imports_only_its_own_layer_or_below() -> None:
    mods = _modules()
    assert [m for m in mods if _layer(m) < 0] == []
    upward = [
        f"{src} ({LAYERS[_layer(src)][0]}) imports {dst} ({LAYERS[_layer(dst)][0]})"
        for src, dsts in _edges(mods).items()
        for dst in sorted(dsts)
        if _layer(dst) > _layer(src)
    ]
    assert upward == []


def test_the_cycle_check_catches_a_cycle() -> None:
    # The check itself could pass by finding nothing: it must see a two-module cycle.
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def _sources_outside(*allowed: str) -> dict[str, str]:
    return {
        str(p.relative_to(PKG.parent)): p.read_text(encoding="utf-8")
        for p in PKG.rglob("*.py")
        if not any(str(p.relative_to(PKG.parent)).startswith(a) for a in allowed)
    }


def test_only_the_store_implementations_name_a_concrete_store_class() -> None:
    concrete = re.compile(r"\b(ChromaLessonStore|JsonlLessonStore)\b|^import chromadb|^from chromadb", re.M)
    # the registry names them as import strings; nothing else may
    naming = [
        path
        for path, text in _sources_outside(
            "tutelage/memory/chroma.py", "tutelage/memory/jsonl.py", "tutelage/memory/store.py"
        ).items()
        if concrete.search(text)
    ]
    assert naming == []


@pytest.mark.parametrize(
    "pattern",
    [r"\bdspy\.LM\(", r"\bMeteredLM\(", r"\bLocalServer\b", r"_llamacpp_main", r"\blitellm\.completion\("],
)
def test_only_the_model_backends_start_servers_or_build_lm_clients(pattern: str) -> None:
    found = [
        path
        for path, text in _sources_outside("tutelage/backends/", "tutelage/testing/").items()
        if re.search(pattern, text)
    ]
    assert found == []


def test_library_modules_never_import_the_command_line() -> None:
    edges = _edges(_modules())
    assert [
        src
        for src, dsts in edges.items()
        if not src.startswith("tutelage.cli") and any(d.startswith("tutelage.cli") for d in dsts)
    ] == []


def test_only_the_checkpointer_implementations_import_a_database_or_its_saver() -> None:
    # the registry names them as import strings; the loop sees only BaseCheckpointSaver
    saver = re.compile(
        r"^\s*(import|from) (sqlite3|psycopg|langgraph\.checkpoint\.(sqlite|postgres))\b", re.M
    )
    importing = [
        path
        for path, text in _sources_outside(
            "tutelage/checkpoints/sqlite.py", "tutelage/checkpoints/postgres.py"
        ).items()
        if saver.search(text)
    ]
    assert importing == []
