"""The tool-using student: a bounded Thought / Action / Observation loop in plain chat turns.

Each step is one chat call a small model can follow: no DSPy field markers, no JSON, no native
function calling. The system message holds the instruction, the retrieved strategies, the tools
and the step format; retrieved examples are demo turns; every tool result goes back as the next
user turn ``Observation: ...``. A reply with neither an ``Action:`` nor an ``Answer:`` line, or no
answer within ``max_steps`` steps, is that task's failure (make_solver records it on the Attempt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from tutelage.agents.base import lesson_filter
from tutelage.agents.student import StudentProgram
from tutelage.evals.metrics import closest_choice
from tutelage.evals.trajectory import Step as TrajectoryStep
from tutelage.memory.lesson import DEMO_KINDS, Lesson
from tutelage.tools.calculator import calculate
from tutelage.tools.sandbox import Isolation, require_bwrap, run_python

__all__ = ["REACT_FORMAT", "TOOL_NAMES", "ReActStudent", "Step", "StepLimitError", "parse_step"]

REACT_FORMAT = "tutelage.react/1"
TOOL_NAMES = ("lessons", "calculator", "python")
MAX_OBSERVATION = 1500  # characters of one tool result sent back to the model
LESSONS_K = 3  # lessons of each kind one `lessons[...]` call returns

TOOL_HELP = {
    "calculator": "calculator[expression]: arithmetic with + - * / // % ** ( ) and sqrt, round, abs, "
    "min, max. Example: Action: calculator[(12 + 3) * 4 / 5]",
    "python": "python[code]: runs a short Python program and shows what it prints. "
    "Example: Action: python[print(sum(range(1, 11)))]",
    "lessons": "lessons[query]: finds lessons learned from past mistakes on similar tasks. "
    "Example: Action: lessons[percent discount]",
}

STEP_FORMAT = """Work step by step. Each reply is one step, in exactly this format:
Thought: <what to do next, one line>
Action: <tool>[<input>]
You then get the tool's result as "Observation: <result>". When you know the answer, reply:
Thought: <why>
Answer: <the final answer only>"""

_SETTINGS = ("tools", "max_steps", "python_timeout", "python_memory_mb", "python_sandbox")


def _label_pattern(*words: str) -> str:
    # The labels as a model writes them (Answer, ANSWER, Final answer), never lower case: a Python
    # line like `answer: int = 5` inside an action is code, not a label.
    forms = {f for w in words for f in (w.capitalize(), w.title(), w.upper())}
    return "|".join(sorted(map(re.escape, forms), key=len, reverse=True))


_LABEL = re.compile(
    r"^[\s*#>_]*("
    + _label_pattern("thought", "action input", "action", "final answer", "answer", "observation")
    + r")[\s*_]*:[\s*_]*(.*)$"
)


@dataclass(frozen=True)
class Step:
    """One parsed reply: its text (cut before any observation the model invented) and what it asks."""

    text: str
    tool: str | None = None
    tool_input: str = ""
    answer: str | None = None


def _label(line: str) -> tuple[str, str] | None:
    match = _LABEL.match(line)
    return (match.group(1).lower(), match.group(2)) if match else None


def _unfence(text: str) -> str:
    text = text.strip()
    fenced = re.fullmatch(r"```[\w+-]*\n?(.*?)\n?```", text, re.DOTALL)
    if fenced:
        return fenced.group(1).strip()
    return text[1:-1].strip() if len(text) > 1 and text[0] == text[-1] == "`" else text


def _action(lines: list[str]) -> tuple[str, str]:
    """``name[input]`` (input up to the last ``]``, so code may hold brackets) or ``name`` + Action Input."""
    first, rest = lines[0].strip(), lines[1:]
    name = re.match(r"[A-Za-z_]\w*", first)
    if name is None:
        return first, ""
    after = "\n".join([first[name.end() :], *rest]).lstrip()
    if after.startswith("["):
        body = after[1:]
        end = body.rfind("]")
        return name.group(0), _unfence(body[:end] if end >= 0 else body)
    inputs = [found[1] for line in rest if (found := _label(line)) and found[0] == "action input"]
    if not after.strip() or inputs:
        return name.group(0), _unfence(inputs[0] if inputs else "")
    return first, ""  # not `tool[input]`: reported back to the model as an unknown tool


def parse_step(reply: str) -> Step | None:
    """Read one reply: the first ``Action:`` or ``Answer:`` line decides; None when there is neither.

    Example:
        >>> step = parse_step("Thought: multiply\\nAction: calculator[12*7]")
        >>> step.tool, step.tool_input
        ('calculator', '12*7')
    """
    lines: list[str] = []
    for line in reply.strip().splitlines():
        if (found := _label(line)) and found[0] == "observation":
            break  # the model began to invent the tool's result
        lines.append(line)
    text = "\n".join(lines).strip()
    for i, line in enumerate(lines):
        found = _label(line)
        if found is None:
            continue
        label, value = found
        if label in ("answer", "final answer"):
            answer = value.strip() or next((x.strip() for x in lines[i + 1 :] if x.strip()), "")
            answer = answer.strip("*").strip()
            return Step(text, answer=answer) if answer else None
        if label == "action":
            end = next(
                (j for j in range(i + 1, len(lines)) if (f := _label(lines[j])) and f[0] != "action input"),
                len(lines),
            )
            tool, tool_input = _action([value, *lines[i + 1 : end]])
            return Step(text, tool=tool, tool_input=tool_input)
    return None


class StepLimitError(RuntimeError):
    """The model used all its steps without an answer (a per-task failure, recorded on the Attempt)."""

    steps: list[dict[str, Any]] | None = None


class _StepSignature(dspy.Signature):
    """One step of the tool loop; the prompt is the transcript ReActStudent builds."""

    transcript: list[dict[str, Any]] = dspy.InputField()
    step: str = dspy.OutputField()


class _Transcript(dspy.Adapter):
    """Send a prepared chat transcript as it is; the whole reply is the step."""

    def format(
        self, signature: type[dspy.Signature], demos: list[dict[str, Any]], inputs: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return list(inputs["transcript"])

    def parse(self, signature: type[dspy.Signature], completion: str) -> dict[str, Any]:
        if not completion or not completion.strip():
            raise AdapterParseError(
                adapter_name="ReActStudent",
                signature=signature,
                lm_response=completion or "",
                message="the model returned an empty reply",
            )
        return {"step": completion}


class ReActStudent(StudentProgram):
    """A StudentProgram that may call tools (``lessons``, ``calculator``, ``python``) before answering.

    Retrieval, retrieval policy, ``choices`` and JSON save/load are the StudentProgram's; the saved
    format is ``tutelage.react/1`` and also keeps the tools, ``max_steps`` and the sandbox limits.
    Each step is one call of ``dspy.settings.lm`` (so the run's cost ledger meters it), bounded by
    the LM's ``max_tokens``.

    Example:
        >>> student = ReActStudent("Solve the math problem.", tools=("calculator",), max_steps=4)
        >>> solve = make_solver(student, lm=lm, metric=label_match)  # doctest: +SKIP
    """

    SAVED = _SETTINGS

    def __init__(
        self,
        instructions: str,
        *,
        tools: tuple[str, ...] | list[str] = TOOL_NAMES,
        max_steps: int = 6,
        python_timeout: float = 5.0,
        python_memory_mb: int = 256,
        python_sandbox: Isolation = "bwrap",
        **policy: Any,
    ) -> None:
        super().__init__(instructions, **policy)
        unknown = sorted(set(tools) - set(TOOL_NAMES))
        if unknown:
            raise ValueError(f"unknown tool(s) {unknown}; known: {', '.join(TOOL_NAMES)}")
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.tools = tuple(tools)
        self.max_steps = max_steps
        self.python_timeout = python_timeout
        self.python_memory_mb = python_memory_mb
        self.python_sandbox = python_sandbox
        if "python" in self.tools and python_sandbox == "bwrap":
            require_bwrap()  # refuse to start, rather than fail every snippet later

    def available_tools(self) -> list[str]:
        """The tools offered to the model (``lessons`` only when there is a memory to search)."""
        return [t for t in self.tools if t != "lessons" or self.memory is not None]

    def messages(self, task: str, examples: list[Lesson], strategies: list[Lesson]) -> list[dict[str, Any]]:
        """The opening transcript: system message, demo turns (nearest example last), the task."""
        system = self.predict.signature.instructions.strip()
        if strategies:
            system += "\n\nUseful strategies:\n" + "\n".join(f"- {s.text}" for s in strategies)
        if tools := self.available_tools():
            system += "\n\nTools:\n" + "\n".join(f"- {TOOL_HELP[t]}" for t in tools)
        system += "\n\n" + STEP_FORMAT
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        demos = [*self.predict.demos, *({"task": x.text, "answer": x.answer} for x in reversed(examples))]
        for demo in demos:
            if demo.get("task") and demo.get("answer"):
                messages.append({"role": "user", "content": str(demo["task"])})
                messages.append({"role": "assistant", "content": f"Answer: {demo['answer']}"})
        messages.append({"role": "user", "content": task})
        return messages

    def use_tool(self, name: str | None, tool_input: str) -> tuple[str, list[str]]:
        """Run one action: the observation text and the ids of any lessons it showed."""
        tools = self.available_tools()
        if name not in tools:
            known = ", ".join(tools)
            return f"Error: unknown tool {name!r}. Write Action: <tool>[<input>] with one of: {known}", []
        if name == "calculator":
            return calculate(tool_input), []
        if name == "python":
            result = run_python(
                tool_input,
                timeout=self.python_timeout,
                memory_mb=self.python_memory_mb,
                isolation=self.python_sandbox,
            )
            return result.text, []
        return self._lessons(tool_input)

    def _lessons(self, query: str) -> tuple[str, list[str]]:
        if self.memory is None or not query.strip():
            return "Error: lessons[...] needs a query", []
        where = lesson_filter(self.scope, self.as_of_round)
        found = [
            *self.memory.search(query, kind="strategy", k=LESSONS_K, where=where, mmr=self.mmr),
            *self.memory.search(query, kind=DEMO_KINDS, k=LESSONS_K, where=where, mmr=self.mmr),
        ]
        lines = [
            f"- strategy: {x.text}" if x.kind == "strategy" else f"- example: {x.text} -> {x.reply}"
            for x in found
        ]
        return ("\n".join(lines) or "no lessons found"), [x.id for x in found]

    def request(self, task: str, *, hide: str | None = None) -> list[dict[str, Any]]:
        """Not one request: a ReAct student sends a transcript that grows with its tool calls."""
        raise NotImplementedError("a react student's request is a tool transcript; train on bare prompts")

    def forward(self, task: str, prefix: str = "") -> dspy.Prediction:
        examples, strategies = self.retrieve(task)
        shown = [x.id for x in [*examples, *strategies]]
        task = f"{prefix.rstrip()}\n\n{task}" if prefix else task
        lm = dspy.settings.lm
        if lm is None:
            raise RuntimeError("no LM: run the program inside dspy.context(lm=...)")
        # The role's stop sequences are for one-line answers ("\n" in the quickstart); a step spans
        # lines, so only non-blank ones are kept, and generation stops before an invented observation.
        configured = getattr(lm, "kwargs", {}).get("stop") or []
        configured = [configured] if isinstance(configured, str) else list(configured)
        stop = [s for s in configured if s.strip()][:3] + ["\nObservation:"]
        transcript = self.messages(task, examples, strategies)
        trajectory: list[str] = []
        steps: list[dict[str, Any]] = []  # what the teacher reads (``tutelage.evals.trajectory.Step`` rows)
        adapter = _Transcript()
        for _ in range(self.max_steps):
            reply = adapter(lm, {"stop": stop}, _StepSignature, [], {"transcript": transcript})[0]["step"]
            step = parse_step(str(reply))
            if step is None:
                raise AdapterParseError(
                    adapter_name="ReActStudent",
                    signature=_StepSignature,
                    lm_response=str(reply),
                    message="the reply has neither an Action: nor an Answer: line",
                )
            trajectory.append(step.text)
            steps.append(TrajectoryStep("prediction", step.text).to_json())
            if step.answer is not None:
                answer = closest_choice(step.answer, self.choices) if self.choices else step.answer
                self._record_trace(task, strategies, answer)
                return dspy.Prediction(
                    answer=answer, raw="\n".join(trajectory), lesson_ids=shown, steps=steps
                )
            text, ids = self.use_tool(step.tool, step.tool_input)
            observation = "Observation: " + (
                text if len(text) <= MAX_OBSERVATION else text[:MAX_OBSERVATION] + " ...(cut)"
            )
            shown += [i for i in ids if i not in shown]
            trajectory.append(observation)
            failed = text.startswith("Error")
            steps.append(TrajectoryStep("tool_result", text, name=step.tool or "", error=failed).to_json())
            transcript += [
                {"role": "assistant", "content": step.text},
                {"role": "user", "content": observation},
            ]
        spent = StepLimitError(f"no Answer after {self.max_steps} steps")
        spent.steps = steps  # the failure keeps what the agent did, for the teacher
        raise spent

    def _record_trace(self, task: str, strategies: list[Lesson], answer: str) -> None:
        # What dspy.Predict records, so BootstrapFewShot can keep a solved task as a demo turn.
        trace = dspy.settings.trace
        if trace is not None and dspy.settings.max_trace_size > 0:
            inputs = {"task": task, "strategies": "\n".join(f"- {s.text}" for s in strategies)}
            trace.append((self.predict, inputs, dspy.Prediction(answer=answer)))

    def settings(self) -> dict[str, Any]:
        """The tool settings saved with the program."""
        return {"tools": list(self.tools), **{key: getattr(self, key) for key in _SETTINGS[1:]}}

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "format": REACT_FORMAT, **self.settings()}
