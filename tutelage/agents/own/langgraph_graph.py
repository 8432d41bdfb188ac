"""A LangGraph compiled graph as the student: lessons enter as a system message; the trajectory is
read from the graph's ``messages`` state.

The graph is invoked with ``{"messages": [system (the lessons, when any), user (the task)]}``. Its
AI messages are prediction steps (and tool-call steps), its tool messages tool-result steps (an
error status, or a result starting with ``Error``, marks the step as failed); the answer is the last
AI message's text. A graph can also look lessons up itself with ``tutelage.tools.memory_search_tool``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.errors import GraphRecursionError

from tutelage.agents.interface import Lessons
from tutelage.evals.trajectory import Step, Trajectory

__all__ = ["GraphAgent", "GraphStepLimit", "read_steps"]


class GraphStepLimit(RuntimeError):
    """The graph hit its recursion limit before an answer (a per-task failure that keeps its steps)."""

    steps: list[dict[str, Any]] | None = None


class GraphAgent:
    """Runs the graph on the lessons and the task as messages; ``recursion_limit`` (default: the
    graph's own, LangGraph's 25) bounds its steps."""

    is_tutelage_agent: ClassVar[bool] = True

    def __init__(self, graph: Any, *, recursion_limit: int | None = None) -> None:
        self.graph = graph
        self.recursion_limit = recursion_limit

    @staticmethod
    def accepts(obj: Any) -> bool:
        return callable(getattr(obj, "invoke", None)) and callable(getattr(obj, "get_graph", None))

    def __call__(self, task: str, lessons: Lessons) -> Trajectory:
        messages: list[BaseMessage] = [SystemMessage(lessons.as_text())] if lessons else []
        messages.append(HumanMessage(task))
        config = {"recursion_limit": self.recursion_limit} if self.recursion_limit else None
        state: dict[str, Any] = {"messages": messages}
        try:
            for values in self.graph.stream({"messages": messages}, config, stream_mode="values"):
                state = values  # the last full state: what a hit limit leaves the teacher to read
        except GraphRecursionError as exc:
            spent = GraphStepLimit(f"no answer before the graph's recursion limit ({exc})")
            spent.steps = [s.to_json() for s in read_steps(state["messages"][len(messages) :])[1]]
            raise spent from None
        answer, steps = read_steps(list(state["messages"])[len(messages) :])
        return Trajectory(answer=answer, steps=tuple(steps))


def read_steps(produced: list[BaseMessage]) -> tuple[str, list[Step]]:
    """The answer (the last AI message's text) and the steps of the messages a graph added."""
    steps: list[Step] = []
    answer = ""
    for message in produced:
        if isinstance(message, AIMessage):
            text = str(message.text)
            if text.strip():
                steps.append(Step("prediction", text))
                answer = text
            for call in message.tool_calls:
                steps.append(Step("tool_call", json.dumps(call["args"]), name=call["name"]))
        elif isinstance(message, ToolMessage):
            content = str(message.content)
            failed = message.status == "error" or content.lstrip().lower().startswith("error")
            steps.append(Step("tool_result", content, name=message.name or "", error=failed))
    return answer, steps
