"""The teacher: diagnoses a failed attempt, given the gold answer, and proposes lessons.

The teacher sees the gold answer of the *train* item it diagnoses (privileged information), never a
test item. Its reply carries its knowledge as lessons: strategies (``STRATEGY:``), synthetic examples
near the confusion (``EXAMPLE: input => answer``, label suites) and a worked solution (``REASONING:``,
suites whose replies are reasoning). Whatever it replies, the gold-labelled example is written; a
reply that does not parse is recorded as such on the diagnosis, not raised, and a part that fails its
check (a synthetic example with no valid label, or copying its source; a worked solution that does
not reach the gold answer) is dropped with the reason in ``Diagnosis.dropped``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

import dspy

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.signatures import diagnose_signature
from tutelage.backends import systemic_error
from tutelage.evals.harness import Attempt
from tutelage.evals.metrics import Metric, normalize_label
from tutelage.evals.suites import Task
from tutelage.evals.trajectory import Step, first_failing, render_steps
from tutelage.memory.lesson import Lesson, LessonKind

__all__ = ["Diagnosis", "Teacher", "TeacherAsk", "diverse", "lessons_from", "parse_reply"]

_LINE = re.compile(
    r"^\s*\**(DIAGNOSIS|STRATEGY|STRATEGIES|EXAMPLE|REASONING|STEP)\**\s*[:\-]\s*(.*?)\s*$", re.IGNORECASE
)
COPY_SHARE = 0.8  # a synthetic example sharing this much of its words with its source is no new input


@dataclass(frozen=True)
class Diagnosis:
    """The teacher's reading of one failure (journaled, so a resumed round does not re-ask)."""

    task_id: str
    raw: str
    parsed: bool
    diagnosis: str = ""
    strategies: list[str] = field(default_factory=list)
    error: str | None = None
    prompt_hash: str = ""
    samples: int = 1
    examples: list[list[str]] = field(default_factory=list)  # [input, answer] pairs the teacher wrote
    reasoning: str = ""
    step: int | None = None  # the first wrong step the teacher named (1-based), for an agent's attempt


@dataclass(frozen=True)
class TeacherAsk:
    """What the teacher is asked for besides the diagnosis and its strategies.

    ``examples``: synthetic examples per failure (label suites: their answers must be labels);
    ``reasoning``: a worked solution (suites whose replies are reasoning); ``steps``: an agent's
    attempt shows its steps (cut to ``step_tokens`` tokens, the first failing step whole) and the
    teacher names the first wrong one.
    """

    examples: int = 0
    reasoning: bool = False
    steps: bool = False
    step_tokens: int = 600


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def diverse(strategies: list[str], *, threshold: float) -> list[str]:
    """Keep strategies in order, dropping any whose word Jaccard with a kept one is >= ``threshold``."""
    kept: list[tuple[str, set[str]]] = []
    for text in strategies:
        words = _words(text)
        if all(len(words & w) / max(1, len(words | w)) < threshold for _, w in kept):
            kept.append((text, words))
    return [text for text, _ in kept]


def parse_reply(raw: str) -> tuple[bool, str, list[str]]:
    """Read ``DIAGNOSIS:`` and ``STRATEGY:`` lines; parsed only if a diagnosis line is present."""
    parts = parse_parts(raw)
    return bool(parts["diagnosis"]), str(parts["diagnosis"]), list(parts["strategies"])


def parse_parts(raw: str) -> dict[str, Any]:
    """Every part of a teacher reply: diagnosis, strategies, examples ``[input, answer]`` and the
    reasoning (which may run over several lines, up to the next keyed line)."""
    diagnosis, strategies, examples, reasoning, step = "", [], [], [], None
    key = ""
    for line in raw.splitlines():
        match = _LINE.match(line)
        if not match:
            if key == "REASONING" and line.strip():
                reasoning.append(line.strip())
            continue
        key, value = match.group(1).upper(), match.group(2).strip()
        if key == "DIAGNOSIS" and value and not diagnosis:
            diagnosis = value
        elif key.startswith("STRATEG") and 8 <= len(value) <= 400:
            strategies.append(value)
        elif key == "EXAMPLE" and value:
            text, sep, answer = value.rpartition("=>")
            examples.append([text.strip(), answer.strip()] if sep else [value, ""])
        elif key == "STEP" and step is None and (number := re.match(r"\D*(\d+)", value)):
            step = int(number.group(1))
        elif key == "REASONING" and value and not reasoning:
            reasoning.append(value)
        elif key == "REASONING":
            key = ""  # a second REASONING line: keep the first one only
    return {
        "diagnosis": diagnosis,
        "strategies": strategies,
        "examples": examples,
        "reasoning": "\n".join(reasoning),
        "step": step,
    }


def _demo_reply(reply: str, ask: TeacherAsk) -> str:
    """The suite's format demo cut to what is asked: at most ``ask.examples`` EXAMPLE lines, and the
    REASONING line only when a worked solution is asked for."""
    lines, examples = [], 0
    for line in reply.splitlines():
        key = (_LINE.match(line) or [None, ""])[1] or ""
        if key.upper() == "EXAMPLE":
            examples += 1
            if examples > ask.examples:
                continue
        if key.upper() == "REASONING" and not ask.reasoning:
            continue
        lines.append(line)
    return "\n".join(lines)


class Teacher(dspy.Module):
    """One call per failure; a suite may give a format demo (small teachers need one)."""

    def __init__(self, demo: tuple[str, str] | None = None, ask: TeacherAsk | None = None) -> None:
        super().__init__()
        self.ask = ask or TeacherAsk()
        self.predict = dspy.Predict(
            diagnose_signature(examples=self.ask.examples, reasoning=self.ask.reasoning, steps=self.ask.steps)
        )
        if demo is not None:
            self.predict.demos = [dspy.Example(attempt=demo[0], reply=_demo_reply(demo[1], self.ask))]

    def render(
        self, task: str, student_answer: str, gold_answer: str, steps: list[dict[str, Any]] | None = None
    ) -> str:
        """The attempt as the teacher reads it; an agent's steps come between the task and its answer."""
        head = f"Task: {task}\n"
        tail = f"Student answer: {student_answer or '(no answer)'}\nCorrect answer: {gold_answer}"
        if not (steps and self.ask.steps):
            return head + tail
        parsed = [Step.from_json(x) for x in steps]
        shown = render_steps(parsed, budget=self.ask.step_tokens, focus=first_failing(parsed))
        return f"{head}Student steps:\n{shown}\n{tail}"

    def prompt_hash(self, attempt: str) -> str:
        """Identifies the exact teacher prompt (instructions, demos, input) behind a lesson."""
        demos = [dict(d) for d in self.predict.demos]
        blob = json.dumps([self.predict.signature.instructions, demos, attempt], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def forward(
        self, task: str, student_answer: str, gold_answer: str, steps: list[dict[str, Any]] | None = None
    ) -> dspy.Prediction:
        return self.predict(attempt=self.render(task, student_answer, gold_answer, steps))

    def diagnose(
        self,
        task: Task,
        attempt: Attempt,
        *,
        lm: dspy.LM,
        samples: int = 1,
        temperature: float = 0.7,
        diversity: float = 0.7,
    ) -> Diagnosis:
        """One diagnosis; with ``samples`` > 1, that many completions at ``temperature`` whose
        strategies are pooled, keeping one of any two whose word overlap is ``diversity`` or more."""
        if samples <= 1:
            return self._diagnose_once(task, attempt, lm=lm)
        drafts = [
            self._diagnose_once(task, attempt, lm=lm.copy(temperature=temperature, rollout_id=i))
            for i in range(samples)
        ]
        parsed = [d for d in drafts if d.parsed] or drafts
        pooled = diverse([s for d in parsed for s in d.strategies], threshold=diversity)
        examples = list({tuple(e): e for d in parsed for e in d.examples}.values())
        first = parsed[0]
        raw = "\n\n".join(d.raw for d in drafts)
        reasoning = next((d.reasoning for d in parsed if d.reasoning), "")
        return replace(
            first, raw=raw, strategies=pooled, samples=samples, examples=examples, reasoning=reasoning
        )

    def _diagnose_once(self, task: Task, attempt: Attempt, *, lm: dspy.LM) -> Diagnosis:
        try:
            with dspy.context(lm=lm, adapter=PlainChatAdapter()):
                raw = str(
                    self(
                        task=task.input,
                        student_answer=attempt.answer,
                        gold_answer=task.answer,
                        steps=attempt.steps,
                    ).reply
                )
        except Exception as exc:
            if (err := systemic_error(exc, role="teacher")) is not None:
                raise err from None
            return Diagnosis(task.id, "", False, error=f"{exc.__class__.__name__}: {str(exc)[:160]}")
        parts = parse_parts(raw)
        prompt = self.prompt_hash(self.render(task.input, attempt.answer, task.answer, attempt.steps))
        named = parts["step"] if self.ask.steps and attempt.steps else None
        step = named if named is not None and 1 <= named <= len(attempt.steps or []) else None
        return Diagnosis(
            task.id,
            raw,
            bool(parts["diagnosis"]),
            parts["diagnosis"],
            parts["strategies"],
            prompt_hash=prompt,
            examples=parts["examples"][: self.ask.examples] if self.ask.examples else [],
            reasoning=parts["reasoning"] if self.ask.reasoning else "",
            step=step,
        )


def _copies(text: str, source: str) -> bool:
    words, base = _words(text), _words(source)
    return not words or len(words & base) / max(1, len(words | base)) >= COPY_SHARE


def lessons_from(
    diag: Diagnosis,
    task: Task,
    *,
    round: int,
    teacher_model: str,
    scope: str = "",
    labels: list[str] | None = None,
    metric: Metric | None = None,
    confused: str = "",
) -> tuple[list[Lesson], list[str]]:
    """Candidate lessons from one diagnosed failure, and why any part of the reply was dropped.

    Always the gold-labelled example; then the teacher's strategies; its synthetic examples (new
    inputs near the confusion with the failure's gold answer: with ``labels``, an answer must name the
    gold label, so a teacher that repeats the student's wrong label, ``confused``, teaches nothing
    wrong; without, an answer-less line takes the gold answer); and its worked solution, kept only if
    ``metric`` grades it right against the gold answer.
    """

    def make(kind: LessonKind, text: str, answer: str = "", rationale: str = "") -> Lesson:
        return Lesson.make(
            kind=kind,
            text=text,
            answer=answer,
            rationale=rationale,
            round=round,
            source_task_id=task.id,
            teacher_model=teacher_model,
            diagnosis=diag.diagnosis,
            prompt_hash=diag.prompt_hash,
            scope=scope,
            reason="written by the teacher" if kind != "example" else "the failed train item (gold answer)",
            step=diag.step if kind != "example" else None,
        )

    lessons = [make("example", task.input, task.answer), *(make("strategy", s) for s in diag.strategies)]
    dropped: list[str] = []
    allowed = {normalize_label(x): x for x in labels or []}
    gold = normalize_label(task.answer)
    for text, answer in diag.examples:
        answer = answer or task.answer
        if labels:
            label = allowed.get(normalize_label(answer))
            if label is None or normalize_label(label) != gold:
                said = (
                    "the student's wrong label"
                    if normalize_label(answer) == normalize_label(confused)
                    else ""
                )
                dropped.append(f"synthetic example answer {answer!r} is not the gold label {said}".strip())
                continue
            answer = label
        if len(text.split()) < 3 or _copies(text, task.input):
            dropped.append(f"synthetic example {text[:60]!r} is too short or copies its source")
            continue
        lessons.append(make("synthetic", text, answer))
    if diag.reasoning:
        if metric is not None and metric(diag.reasoning, task.answer) >= 1.0:
            lessons.append(make("worked", task.input, task.answer, rationale=diag.reasoning))
        else:
            dropped.append("worked solution does not reach the gold answer")
    return lessons, dropped
