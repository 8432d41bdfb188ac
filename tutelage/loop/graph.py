"""The topology of the self-improvement loop (and nothing else)."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from tutelage.loop import lesson_nodes, nodes
from tutelage.loop.state import LoopState, RunContext

__all__ = ["build_graph"]


def build_graph(checkpointer: Any = None) -> Any:
    """test_before -> (sample, attempt, grade, diagnose, write, verify, curate, compile, dev, record)*
    -> test_after."""
    g = StateGraph(LoopState, context_schema=RunContext)
    g.add_node("test_before", nodes.test_before)
    g.add_node("sample_batch", nodes.sample_batch)
    g.add_node("attempt", nodes.attempt)
    g.add_node("grade", nodes.grade)
    g.add_node("diagnose", nodes.diagnose)
    g.add_node("write_lessons", lesson_nodes.write_lessons)
    g.add_node("verify_lessons", lesson_nodes.verify_lessons)
    g.add_node("curate", lesson_nodes.curate_memory)
    g.add_node("compile", nodes.compile_program)
    g.add_node("evaluate_dev", nodes.evaluate_dev)
    g.add_node("record_round", nodes.record_round)
    g.add_node("test_after", nodes.test_after)
    g.add_edge(START, "test_before")
    g.add_edge("test_before", "sample_batch")
    g.add_edge("sample_batch", "attempt")
    g.add_edge("attempt", "grade")
    g.add_edge("grade", "diagnose")
    g.add_edge("diagnose", "write_lessons")
    g.add_edge("write_lessons", "verify_lessons")
    g.add_edge("verify_lessons", "curate")
    g.add_edge("curate", "compile")
    g.add_edge("compile", "evaluate_dev")
    g.add_edge("evaluate_dev", "record_round")
    g.add_conditional_edges("record_round", nodes.next_step, ["sample_batch", "test_after"])
    g.add_edge("test_after", END)
    return g.compile(checkpointer=checkpointer)
