"""A LangGraph ReAct agent is the student: a model node and a tool node (calculator, Python).

The model node asks ``tutelage.agent_lm()`` for one step in a plain text protocol a small model can
follow (``Action: calculator[3*4]`` or ``Answer: 12``) and turns an action into a tool call; LangGraph's
``ToolNode`` runs it and the graph loops until an answer. tutelage passes the retrieved lessons in as a
system message and reads the steps (tool calls, their results, errors) back from the ``messages``
state for the teacher. Run ``python -m examples.langgraph_react``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import tutelage
from examples.word_problems import splits
from tutelage.tools import calculate, run_python

INSTRUCTIONS = """Solve the arithmetic word problem. Work in steps. Each reply is one line:
Action: calculator[<expression>]   to compute, e.g. Action: calculator[12*3+4]
Answer: <number>                  when you know the answer"""
_ACTION = re.compile(r"Action:\s*(\w+)\s*\[(.*)\]", re.IGNORECASE | re.DOTALL)
_ANSWER = re.compile(r"Answer:\s*(.+)", re.IGNORECASE)


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression, e.g. 12*3+4."""
    return calculate(expression)


@tool
def python(code: str) -> str:
    """Run a short Python snippet (in a sandbox) and return what it prints."""
    return run_python(code, timeout=5.0, memory_mb=256, isolation="bwrap").text


# One worked exchange, shown before every task: a small model follows turns better than rules.
DEMO = [
    {"role": "user", "content": "A box has 6 rows of 4 eggs and 3 loose eggs. How many eggs are there?"},
    {"role": "assistant", "content": "Action: calculator[6*4+3]"},
    {"role": "user", "content": "Observation: 27"},
    {"role": "assistant", "content": "Answer: 27"},
]


def _chat(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """The graph's messages as plain chat turns (tool results become the user's Observation lines)."""
    turns = [{"role": "system", "content": INSTRUCTIONS}, *DEMO]
    for m in messages:
        if isinstance(m, SystemMessage):
            turns[0]["content"] += "\n\n" + str(m.content)
        elif isinstance(m, ToolMessage):
            turns.append({"role": "user", "content": f"Observation: {m.content}"})
        elif isinstance(m, AIMessage):
            turns.append({"role": "assistant", "content": str(m.content)})
        else:
            turns.append({"role": "user", "content": str(m.content)})
    return turns


def model(state: MessagesState) -> dict[str, Any]:
    reply = str(tutelage.agent_lm()(messages=_chat(state["messages"]), stop=["\n"])[0]).strip()
    if action := _ACTION.search(reply):
        name, arg = action.group(1).lower(), action.group(2).strip()
        key = "code" if name == "python" else "expression"
        call = {"name": name, "args": {key: arg}, "id": uuid.uuid4().hex[:8], "type": "tool_call"}
        return {"messages": [AIMessage(reply, tool_calls=[call])]}
    answer = _ANSWER.search(reply)
    return {"messages": [AIMessage(answer.group(1).strip() if answer else reply)]}


def build() -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node("model", model)
    graph.add_node("tools", ToolNode([calculator, python], handle_tool_errors=True))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph.compile()


graph = build().with_config(recursion_limit=9)  # at most 5 model steps an item


def main(sizes: tuple[int, int, int] = (40, 20, 20), **options: Any) -> tutelage.RunResult:
    """Improve the agent on ``sizes`` (train, dev, test) word problems; ``options`` go to ``improve``."""
    train, dev, test = splits(*sizes)
    settings = ["loop.search_size=8", *options.pop("settings", ())]
    # one request at a time: llama.cpp's batched decoding is not batch-invariant (a seeded run repeats)
    options.setdefault("model", {"max_tokens": 48, "concurrency": 1})
    return tutelage.improve(
        "examples.langgraph_react:graph",
        train=train,
        dev=dev,
        test=test,
        metric="gsm8k",
        settings=settings,
        **{"name": "langgraph-react", **options},
    )


if __name__ == "__main__":
    result = main(rounds=2)
    print(f"test accuracy {result.test_before:.0%} -> {result.test_after:.0%}  ({result.run_dir})")
