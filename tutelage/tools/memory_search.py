"""A memory-search tool: lets an agent (the student, or a user's own LangGraph agent) read lessons."""

from __future__ import annotations

from langchain_core.tools import BaseTool, StructuredTool

from tutelage.memory.lesson import DEMO_KINDS
from tutelage.memory.store import LessonStore

__all__ = ["format_lessons", "memory_search_tool"]


def format_lessons(store: LessonStore, query: str, *, k_examples: int, k_strategies: int) -> str:
    strategies = store.search(query, kind="strategy", k=k_strategies)
    examples = store.search(query, kind=DEMO_KINDS, k=k_examples)
    lines = [f"- strategy: {s.text}" for s in strategies]
    lines += [f"- example: {e.text} -> {e.reply}" for e in examples]
    return "\n".join(lines) if lines else "no lessons found"


def memory_search_tool(store: LessonStore, *, k_examples: int = 4, k_strategies: int = 2) -> BaseTool:
    """A langchain-core tool that returns the lessons most relevant to a query, one per line.

    Example:
        >>> tool = memory_search_tool(store)  # doctest: +SKIP
        >>> tool.invoke({"query": "my card has not arrived"})  # doctest: +SKIP
    """

    def search_lessons(query: str) -> str:
        """Search the learned lessons (strategies and worked examples) relevant to a task."""
        return format_lessons(store, query, k_examples=k_examples, k_strategies=k_strategies)

    return StructuredTool.from_function(search_lessons, name="search_lessons")
