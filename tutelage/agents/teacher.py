"""The teacher: diagnoses a failed attempt, given the gold answer, and proposes lessons.

The teacher sees the gold answer of the *train* item it diagnoses (privileged information), never a
test item. Whatever it replies, the gold-labelled example is written; a reply that does not parse is
recorded as such on the diagnosis, not raised.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace

import dspy

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.lm import systemic_error
from tutelage.agents.signatures import Diagnose
from tutelage.evals.harness import Attempt
from tutelage.evals.suites import Task
from tutelage.memory.lesson import Lesson, LessonKind

__all__ = ["Diagnosis", "Teacher", "diverse", "lessons_from", "parse_reply"]

_LINE = re.compile(r"^\s*\**(DIAGNOSIS|STRATEGY|STRATEGIES)\**\s*[:\-]\s*(.+?)\s*$", re.IGNORECASE)


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
    diagnosis, strategies = "", []
    for line in raw.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        key, value = match.group(1).upper(), match.group(2).strip()
        if key == "DIAGNOSIS" and not diagnosis:
            diagnosis = value
        elif key.startswith("STRATEG") and 8 <= len(value) <= 400:
            strategies.append(value)
    return bool(diagnosis), diagnosis, strategies


class Teacher(dspy.Module):
    """One call per failure; a suite may give a format demo (small teachers need one)."""

    def __init__(self, demo: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.predict = dspy.Predict(Diagnose)
        if demo is not None:
            self.predict.demos = [dspy.Example(attempt=demo[0], reply=demo[1])]

    @staticmethod
    def render(task: str, student_answer: str, gold_answer: str) -> str:
        return (
            f"Task: {task}\nStudent answer: {student_answer or '(no answer)'}\nCorrect answer: {gold_answer}"
        )

    def prompt_hash(self, attempt: str) -> str:
        """Identifies the exact teacher prompt (instructions, demos, input) behind a lesson."""
        demos = [dict(d) for d in self.predict.demos]
        blob = json.dumps([self.predict.signature.instructions, demos, attempt], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def forward(self, task: str, student_answer: str, gold_answer: str) -> dspy.Prediction:
        return self.predict(attempt=self.render(task, student_answer, gold_answer))

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
        first = parsed[0]
        raw = "\n\n".join(d.raw for d in drafts)
        return replace(first, raw=raw, strategies=pooled, samples=samples)

    def _diagnose_once(self, task: Task, attempt: Attempt, *, lm: dspy.LM) -> Diagnosis:
        try:
            with dspy.context(lm=lm, adapter=PlainChatAdapter()):
                raw = str(self(task=task.input, student_answer=attempt.answer, gold_answer=task.answer).reply)
        except Exception as exc:
            if (err := systemic_error(exc, role="teacher")) is not None:
                raise err from None
            return Diagnosis(task.id, "", False, error=f"{exc.__class__.__name__}: {str(exc)[:160]}")
        parsed, diagnosis, strategies = parse_reply(raw)
        prompt = self.prompt_hash(self.render(task.input, attempt.answer, task.answer))
        return Diagnosis(task.id, raw, parsed, diagnosis, strategies, prompt_hash=prompt)


def lessons_from(
    diag: Diagnosis, task: Task, *, round: int, teacher_model: str, scope: str = ""
) -> list[Lesson]:
    """Candidate lessons: the gold-labelled example (always) plus any strategies the teacher wrote."""

    def make(kind: LessonKind, text: str, answer: str = "") -> Lesson:
        return Lesson.make(
            kind=kind,
            text=text,
            answer=answer,
            round=round,
            source_task_id=task.id,
            teacher_model=teacher_model,
            diagnosis=diag.diagnosis,
            prompt_hash=diag.prompt_hash,
            scope=scope,
        )

    return [make("example", task.input, task.answer), *(make("strategy", s) for s in diag.strategies)]
