import importlib
from pathlib import Path

from tutelage.loop import build_graph

SNAPSHOTS = Path(__file__).parent / "snapshots"


def test_graph_topology_matches_snapshot() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == (SNAPSHOTS / "graph.mmd").read_text()


PUBLIC = (
    *("", "agents", "backends", "checkpoints", "cli", "evals"),
    *("loop", "memory", "optimizers", "tools", "train"),
)


def _surface() -> list[str]:
    """``module name`` for every name each public package exports."""
    lines = []
    for sub in PUBLIC:
        module = importlib.import_module(f"tutelage.{sub}" if sub else "tutelage")
        lines += [f"{module.__name__} {name}" for name in sorted(module.__all__)]
    return lines


def test_public_api_is_deliberate() -> None:
    # A change here is a change users see: update tests/snapshots/public_api.txt on purpose.
    assert _surface() == (SNAPSHOTS / "public_api.txt").read_text().splitlines()
