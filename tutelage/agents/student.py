"""The student: a DSPy module that retrieves the most relevant lessons for a task and answers.

Retrieved example lessons (gold, worked and synthetic) become demo turns (most similar last, nearest
the question; a worked example's reply is the teacher's reasoning); strategy lessons go in the
system message. The compiled program (instruction, fixed demos, retrieval depth)
is saved as JSON, never pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import dspy
from dspy.utils.exceptions import AdapterParseError

from tutelage import runfiles
from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.base import POLICY_KEYS, hiding, lesson_filter, load_student, unhide
from tutelage.agents.signatures import Solve
from tutelage.backends import label_constraint, systemic_error
from tutelage.evals.harness import Attempt, Solver
from tutelage.evals.metrics import Metric, closest_choice
from tutelage.evals.suites import Task
from tutelage.memory.lesson import DEMO_KINDS, Lesson
from tutelage.memory.query import fit_budget
from tutelage.memory.store import LessonStore

__all__ = ["StudentProgram", "make_solver"]


class StudentProgram(dspy.Module):
    """Retrieve ``k_examples`` example lessons and ``k_strategies`` strategies, then answer.

    ``teacher_examples``: whether the teacher's synthetic and worked examples compete for the example
    slots (False: gold examples only; the policy search measures which is better).
    Retrieval sees the active lessons of ``scope`` (or, with ``as_of_round``, exactly those active
    when that round ran), optionally diversified by MMR (``mmr`` is its lambda) and cut to
    ``token_budget`` tokens. With ``choices`` (a closed label set) the reply is read as the choice it
    names or most resembles.
    """

    SAVED: ClassVar[tuple[str, ...]] = ()  # a subclass's constructor settings its saved JSON holds

    def __init__(
        self,
        instructions: str,
        *,
        memory: LessonStore | None = None,
        k_examples: int = 4,
        k_strategies: int = 0,
        choices: list[str] | None = None,
        scope: str | None = None,
        mmr: float | None = None,
        token_budget: int | None = None,
        as_of_round: int | None = None,
        teacher_examples: bool = True,
    ) -> None:
        super().__init__()
        self.instructions = instructions
        self.choices = list(choices or [])
        self.predict = dspy.Predict(Solve.with_instructions(instructions))
        self.memory = memory
        self.k_examples = k_examples
        self.k_strategies = k_strategies
        self.scope = scope
        self.mmr = mmr
        self.token_budget = token_budget
        self.as_of_round = as_of_round
        self.teacher_examples = teacher_examples
        self.extra: list[Lesson] = []  # shown on top of retrieval (verifying a candidate lesson)
        # The trained weights this program answers with (``tutelage.train.Adapter.to_json()``), or None
        # for the base model; the run's backend serves it (``tutelage.backends.AdapterHost``).
        self.adapter: dict[str, Any] | None = None

    def retrieve(self, task: str) -> tuple[list[Lesson], list[Lesson]]:
        """The example and strategy lessons shown for ``task``, most relevant first."""
        if self.memory is None:
            return [], []
        where = lesson_filter(self.scope, self.as_of_round)
        kinds: list[list[Lesson]] = []
        demo_kinds = DEMO_KINDS if self.teacher_examples else ("example",)
        for kind, k in ((demo_kinds, self.k_examples), (("strategy",), self.k_strategies)):
            extra = [x for x in self.extra if x.kind in kind]
            found = self.memory.search(task, kind=kind, k=k, where=where, mmr=self.mmr) if k else []
            kinds.append(
                [*extra, *(x for x in found if x.id not in {e.id for e in extra})][: max(k, len(extra))]
            )
        examples, strategies = fit_budget(kinds, self.token_budget)
        return examples, strategies

    def _inputs(self, task: str, prefix: str) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
        """What the predictor is called with for ``task``: its demos, its inputs, the lessons shown."""
        examples, strategies = self.retrieve(task)
        demos = [*self.predict.demos, *({"task": x.text, "answer": x.reply} for x in reversed(examples))]
        shown = f"{prefix.rstrip()}\n\n{task}" if prefix else task
        inputs = {"task": shown, "strategies": "\n".join(f"- {s.text}" for s in strategies)}
        return demos, inputs, [x.id for x in [*examples, *strategies]]

    def forward(self, task: str, prefix: str = "") -> dspy.Prediction:
        """Answer ``task``; ``prefix`` (a suite's fixed prompt, e.g. BBH's 3-shot exemplars) is shown
        before the task but plays no part in retrieval."""
        demos, inputs, shown = self._inputs(task, prefix)
        # An endpoint that can (vLLM) replies with exactly one label; others reply freely and the
        # reply is read as the label it names or most resembles.
        constraint = label_constraint(dspy.settings.lm, self.choices)
        out = self.predict(**inputs, demos=demos, **({"config": constraint} if constraint else {}))
        answer = closest_choice(out.answer, self.choices) if self.choices else out.answer
        return dspy.Prediction(answer=answer, raw=out.answer, lesson_ids=shown)

    def request(self, task: str, *, hide: str | None = None) -> list[dict[str, Any]]:
        """The chat messages this program sends the student model for ``task``, exactly as ``forward``
        does (instructions, strategies, compiled and retrieved demos, the task); ``hide`` keeps that
        task's own lessons out of retrieval, as a held-out item would never see its own.
        """
        token = hiding(hide)
        try:
            demos, inputs, _ = self._inputs(task, "")
        finally:
            unhide(token)
        return PlainChatAdapter().format(self.predict.signature, demos, inputs)

    def with_policy(self, **changes: Any) -> StudentProgram:
        """A copy that shares the memory and differs only in the given retrieval settings."""
        copy = self.deepcopy()
        for key, value in changes.items():
            if key not in POLICY_KEYS:
                raise TypeError(f"not a retrieval setting: {key}")
            setattr(copy, key, value)
        return copy

    def with_lessons(self, lessons: list[Lesson]) -> StudentProgram:
        """A copy that always shows ``lessons`` first (examples nearest the question, strategies on top)."""
        copy = self.deepcopy()
        copy.extra = list(lessons)
        return copy

    def settings(self) -> dict[str, Any]:
        """Constructor settings a subclass saves and copies besides the retrieval policy."""
        return {}

    def deepcopy(self) -> Self:  # the memory store is shared, never copied
        copy = type(self)(
            self.instructions,
            memory=self.memory,
            choices=self.choices,
            **self.settings(),
            **{key: getattr(self, key) for key in POLICY_KEYS},
        )
        copy.predict = self.predict.deepcopy()
        copy.extra = list(self.extra)
        copy.adapter = self.adapter
        return copy

    def reset_copy(self) -> StudentProgram:
        copy = self.deepcopy()
        copy.predict.reset()
        return copy

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "tutelage.student/2",
            # An optimizer (MIPROv2, GEPA) rewrites the predictor's signature, not this attribute.
            "instructions": self.predict.signature.instructions,
            **{key: getattr(self, key) for key in POLICY_KEYS},
            "choices": self.choices,
            "predict": self.predict.dump_state(),
            "adapter": self.adapter,
        }

    def save_json(self, path: Path, **meta: Any) -> None:
        runfiles.write_json(path, {**self.to_json(), "meta": meta})

    @classmethod
    def load_json(
        cls, path: Path, *, memory: LessonStore | None, as_of_round: int | None = None
    ) -> StudentProgram:
        """Reload a saved program of any student format; ``as_of_round`` replays that round's memory."""
        program: StudentProgram = load_student(path, memory=memory, as_of_round=as_of_round)
        return program

    @classmethod
    def from_json(
        cls, data: dict[str, Any], *, memory: LessonStore | None, as_of_round: int | None = None
    ) -> Self:
        """A program from its saved JSON (``load_json`` dispatches here by format)."""
        policy = {key: data[key] for key in POLICY_KEYS if key in data}
        if as_of_round is not None:
            policy["as_of_round"] = as_of_round
        settings = {key: data[key] for key in cls.SAVED if key in data}
        program = cls(data["instructions"], memory=memory, choices=data.get("choices"), **settings, **policy)
        program.predict.load_state(data["predict"])
        program.adapter = data.get("adapter")
        return program


def make_solver(program: StudentProgram, *, lm: dspy.LM, metric: Metric, hide_own: bool = False) -> Solver:
    """Bind a program to an LM and a metric: a function from a task to a graded Attempt.

    ``hide_own``: retrieval never shows a task the lessons made from it (the teacher-hacking monitor
    and verification measure transfer, not copying).
    """
    adapter = PlainChatAdapter()

    def solve(task: Task) -> Attempt:
        token = hiding(task.id if hide_own else None)
        try:
            return _solve(task)
        finally:
            unhide(token)

    def _solve(task: Task) -> Attempt:
        try:
            with dspy.context(lm=lm, adapter=adapter):
                pred = (
                    program(task=task.input, prefix=task.prefix) if task.prefix else program(task=task.input)
                )
        except AdapterParseError as exc:
            return Attempt(task.id, "", 0.0, error=f"unparsable reply: {exc.lm_response!r:.80}")
        except Exception as exc:
            if (err := systemic_error(exc, role="student")) is not None:
                raise err from None
            error = f"{exc.__class__.__name__}: {str(exc)[:160]}"
            return Attempt(task.id, "", 0.0, error=error, steps=getattr(exc, "steps", None))
        answer, raw = str(pred.answer), str(pred.raw)
        shown, kept_raw = list(pred.lesson_ids), raw if raw != answer else None
        steps = pred.get("steps") or None  # an agent's trajectory, for the teacher
        try:
            score = metric(answer, task.answer)
        except Exception as exc:  # a custom or judge grader failing on one item fails that item only
            if (err := systemic_error(exc, role="grader")) is not None:
                raise err from None
            error = f"grader: {exc.__class__.__name__}: {str(exc)[:160]}"
            return Attempt(task.id, answer, 0.0, shown, error=error, raw=kept_raw, steps=steps)
        return Attempt(task.id, answer, score, shown, raw=kept_raw, steps=steps)

    return solve
