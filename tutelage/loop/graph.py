"""The topology of the self-improvement loop (and nothing else)."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from tutelage import failpoints
from tutelage.loop import _compile_node as compile_node
from tutelage.loop import _lesson_nodes as lesson_nodes
from tutelage.loop import _nodes as nodes
from tutelage.loop import _train_node as train_node
from tutelage.loop._state import LoopState, RunContext

__all__ = ["build_graph"]


def _with_failpoints(name: str, node: Any) -> Any:
    """The node, with the kill points ``name:start``, ``name:middle`` and ``name:end`` around it."""

    def run(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        failpoints.enter(name)
        update: dict[str, Any] = node(state, runtime)
        failpoints.hit(name, "end")
        return update

    run.__name__ = name
    return run


def build_graph(checkpointer: Any = None) -> Any:
    """start -> test_before -> (sample, attempt, grade, diagnose, write, verify, curate, compile,
    train weights, dev, monitor, decide, finetune, record)* -> test_after."""
    g = StateGraph(LoopState, context_schema=RunContext)
    g.add_node("start", _with_failpoints("start", nodes.start))
    g.add_node("test_before", _with_failpoints("test_before", nodes.test_before))
    g.add_node("sample_batch", _with_failpoints("sample_batch", nodes.sample_batch))
    g.add_node("attempt", _with_failpoints("attempt", nodes.attempt))
    g.add_node("grade", _with_failpoints("grade", nodes.grade))
    g.add_node("diagnose", _with_failpoints("diagnose", nodes.diagnose))
    g.add_node("write_lessons", _with_failpoints("write_lessons", lesson_nodes.write_lessons))
    g.add_node("verify_lessons", _with_failpoints("verify_lessons", lesson_nodes.verify_lessons))
    g.add_node("curate", _with_failpoints("curate", lesson_nodes.curate_memory))
    g.add_node("compile", _with_failpoints("compile", compile_node.compile_program))
    g.add_node("train_weights", _with_failpoints("train_weights", train_node.train_weights))
    g.add_node("evaluate_dev", _with_failpoints("evaluate_dev", nodes.evaluate_dev))
    g.add_node("monitor", _with_failpoints("monitor", nodes.monitor))
    g.add_node("decide", _with_failpoints("decide", nodes.decide))
    g.add_node("finetune_sets", _with_failpoints("finetune_sets", lesson_nodes.finetune_sets))
    g.add_node("record_round", _with_failpoints("record_round", nodes.record_round))
    g.add_node("test_after", _with_failpoints("test_after", nodes.test_after))
    g.add_edge(START, "start")
    g.add_edge("start", "test_before")
    g.add_conditional_edges("test_before", nodes.next_step, ["sample_batch", "test_after"])
    chain = [
        "sample_batch",
        "attempt",
        "grade",
        "diagnose",
        "write_lessons",
        "verify_lessons",
        "curate",
        "compile",
        "train_weights",
        "evaluate_dev",
        "monitor",
        "decide",
        "finetune_sets",
        "record_round",
    ]
    for a, b in zip(chain, chain[1:], strict=False):
        g.add_edge(a, b)
    g.add_conditional_edges("record_round", nodes.next_step, ["sample_batch", "test_after"])
    g.add_edge("test_after", END)
    return g.compile(checkpointer=checkpointer)
