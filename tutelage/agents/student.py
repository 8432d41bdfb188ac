"""The student: a DSPy module that retrieves the most relevant lessons for a task and answers.

Retrieved example lessons become demo turns (most similar last, nearest the question); strategy
lessons go in the system message. The compiled program (instruction, fixed demos, retrieval depth)
is saved as JSON, never pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.lm import systemic_error
from tutelage.agents.signatures import Solve
from tutelage.evals.harness import Attempt, Solver
from tutelage.evals.metrics import Metric, closest_choice
from tutelage.evals.suites import Task
from tutelage.memory.chroma import ChromaLessonStore

__all__ = ["StudentProgram", "make_solver"]


class StudentProgram(dspy.Module):
    """Retrieve ``k_examples`` example lessons and ``k_strategies`` strategies, then answer.

    With ``choices`` (a closed label set) the reply is read as the choice it names or most resembles.
    """

    def __init__(
        self,
        instructions: str,
        *,
        memory: ChromaLessonStore | None = None,
        k_examples: int = 4,
        k_strategies: int = 0,
        choices: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.instructions = instructions
        self.choices = list(choices or [])
        self.predict = dspy.Predict(Solve.with_instructions(instructions))
        self.memory = memory
        self.k_examples = k_examples
        self.k_strategies = k_strategies

    def forward(self, task: str) -> dspy.Prediction:
        examples, strategies = [], []
        if self.memory is not None:
            examples = self.memory.search(task, kind="example", k=self.k_examples)
            strategies = self.memory.search(task, kind="strategy", k=self.k_strategies)
        demos = [*self.predict.demos, *({"task": x.text, "answer": x.answer} for x in reversed(examples))]
        out = self.predict(task=task, strategies="\n".join(f"- {s.text}" for s in strategies), demos=demos)
        answer = closest_choice(out.answer, self.choices) if self.choices else out.answer
        return dspy.Prediction(
            answer=answer, raw=out.answer, lesson_ids=[x.id for x in [*examples, *strategies]]
        )

    def with_policy(
        self, *, k_examples: int | None = None, k_strategies: int | None = None
    ) -> StudentProgram:
        """A copy that shares the memory and differs only in retrieval depth."""
        copy = self.deepcopy()
        copy.k_examples = self.k_examples if k_examples is None else k_examples
        copy.k_strategies = self.k_strategies if k_strategies is None else k_strategies
        return copy

    def deepcopy(self) -> StudentProgram:  # the memory store is shared, never copied
        copy = StudentProgram(
            self.instructions,
            memory=self.memory,
            k_examples=self.k_examples,
            k_strategies=self.k_strategies,
            choices=self.choices,
        )
        copy.predict = self.predict.deepcopy()
        return copy

    def reset_copy(self) -> StudentProgram:
        copy = self.deepcopy()
        copy.predict.reset()
        return copy

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "tutelage.student/1",
            "instructions": self.instructions,
            "k_examples": self.k_examples,
            "k_strategies": self.k_strategies,
            "choices": self.choices,
            "predict": self.predict.dump_state(),
        }

    def save_json(self, path: Path, **meta: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self.to_json(), "meta": meta}, indent=2))
        tmp.replace(path)

    @classmethod
    def load_json(cls, path: Path, *, memory: ChromaLessonStore | None) -> StudentProgram:
        data = json.loads(Path(path).read_text())
        program = cls(
            data["instructions"],
            memory=memory,
            k_examples=data["k_examples"],
            k_strategies=data["k_strategies"],
            choices=data.get("choices"),
        )
        program.predict.load_state(data["predict"])
        return program


def make_solver(program: StudentProgram, *, lm: dspy.LM, metric: Metric) -> Solver:
    """Bind a program to an LM and a metric: a function from a task to a graded Attempt."""
    adapter = PlainChatAdapter()

    def solve(task: Task) -> Attempt:
        try:
            with dspy.context(lm=lm, adapter=adapter):
                pred = program(task=task.input)
        except AdapterParseError as exc:
            return Attempt(task.id, "", 0.0, error=f"unparsable reply: {exc.lm_response!r:.80}")
        except Exception as exc:
            if (err := systemic_error(exc, role="student")) is not None:
                raise err from None
            return Attempt(task.id, "", 0.0, error=f"{exc.__class__.__name__}: {str(exc)[:160]}")
        answer, raw = str(pred.answer), str(pred.raw)
        return Attempt(
            task.id,
            answer,
            metric(answer, task.answer),
            list(pred.lesson_ids),
            raw=raw if raw != answer else None,
        )

    return solve
