"""The LangGraph state machine that runs the rounds, and the runner that starts and resumes it."""

from tutelage.loop._state import LoopState, RunContext
from tutelage.loop.graph import build_graph
from tutelage.loop.progress import LogReporter, Reporter
from tutelage.loop.runner import RunResult, resume_run, start_run

__all__ = [
    "LogReporter",
    "LoopState",
    "Reporter",
    "RunContext",
    "RunResult",
    "build_graph",
    "resume_run",
    "start_run",
]
