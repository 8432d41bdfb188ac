from pathlib import Path

import tutelage
from tutelage.loop import build_graph

SNAPSHOTS = Path(__file__).parent / "snapshots"


def test_graph_topology_matches_snapshot() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == (SNAPSHOTS / "graph.mmd").read_text()


def test_public_api_is_deliberate() -> None:
    assert sorted(tutelage.__all__) == (SNAPSHOTS / "public_api.txt").read_text().split()
