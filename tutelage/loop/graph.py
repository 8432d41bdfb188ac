"""The topology of the self-improvement loop (and nothing else)."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from tutelage.loop import compile_node, lesson_nodes, nodes
from tutelage.loop.state import LoopState, RunContext

__all__ = ["build_graph"]


def build_graph(checkpointer: Any = None) -> Any:
    """start -> test_before -> (sample, attempt, grade, diagnose, write, verify, curate, compile, dev,
    monitor, decide, finetune, record)* -> test_after."""
    g = StateGraph(LoopState, context_schema=RunContext)
    g.add_node("start", nodes.start)
    g.add_node("test_before", nodes.test_before)
    g.add_node("sample_batch", nodes.sample_batch)
    g.add_node("attempt", nodes.attempt)
    g.add_node("grade", nodes.grade)
    g.add_node("diagnose", nodes.diagnose)
    g.add_node("write_lessons", lesson_nodes.write_lessons)
    g.add_node("verify_lessons", lesson_nodes.verify_lessons)
    g.add_node("curate", lesson_nodes.curate_memory)
    g.add_node("compile", compile_node.compile_program)
    g.add_node("evaluate_dev", nodes.evaluate_dev)
    g.add_node("monitor", nodes.monitor)
    g.add_node("decide", nodes.decide)
    g.add_node("finetune_sets", lesson_nodes.finetune_sets)
    g.add_node("record_round", nodes.record_round)
    g.add_node("test_after", nodes.test_after)
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
