"""Tools the student agent (or a user's agent) may call."""

from tutelage.tools.calculator import calculate
from tutelage.tools.memory_search import format_lessons, memory_search_tool
from tutelage.tools.sandbox import SandboxResult, run_python

__all__ = ["SandboxResult", "calculate", "format_lessons", "memory_search_tool", "run_python"]
