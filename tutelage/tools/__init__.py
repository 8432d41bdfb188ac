"""Tools the student agent (or a user's agent) may call."""

from tutelage.tools.memory_search import format_lessons, memory_search_tool

__all__ = ["format_lessons", "memory_search_tool"]
