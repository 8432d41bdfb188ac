"""A DSPy module as the student: lessons reach its predictors as demos and instructions.

Each call runs a copy of the module whose predictors show the retrieved examples as demos (after
their own) and the strategies after their instructions; the trajectory is DSPy's trace, one
prediction step per predictor call. The module's own state (compiled demos, instructions) is saved
with the run's program.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import dspy

from tutelage.agents.interface import Lessons
from tutelage.evals.trajectory import Step, Trajectory

__all__ = ["DSPyAgent"]


def _task_field(module: dspy.Module) -> str:
    """The argument the task goes to: ``forward``'s first named one, else the first input field of
    the module's first predictor (``ChainOfThought("question -> answer")`` takes ``question``)."""
    forward = type(module).forward  # read from the class: DSPy warns when an instance's is touched
    named = [
        p.name
        for p in list(inspect.signature(forward).parameters.values())[1:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if named:
        return named[0]
    predictors = module.predictors()
    if not predictors:
        raise TypeError(f"{type(module).__name__} has no predictor and no named input to give the task to")
    return str(next(iter(predictors[0].signature.input_fields)))


class DSPyAgent:
    """Runs ``module(<its task field>=task)`` under ``adapter`` (DSPy's ChatAdapter by default)."""

    is_tutelage_agent: ClassVar[bool] = True

    def __init__(self, module: dspy.Module, *, adapter: dspy.Adapter | None = None) -> None:
        self.module = module
        self.adapter = adapter
        self.input = _task_field(module)

    @staticmethod
    def accepts(obj: Any) -> bool:
        return isinstance(obj, dspy.Module)

    def taught(self, lessons: Lessons) -> dspy.Module:
        """A copy of the module whose predictors show ``lessons``."""
        copy = self.module.deepcopy()
        for _, predictor in copy.named_predictors():
            fields = predictor.signature
            first_in, last_out = next(iter(fields.input_fields)), list(fields.output_fields)[-1]
            predictor.demos = [
                *predictor.demos,
                *(dspy.Example({first_in: x, last_out: y}) for x, y in reversed(lessons.examples)),
            ]
            if lessons.strategies:
                rules = "\n".join(f"- {s}" for s in lessons.strategies)
                predictor.signature = fields.with_instructions(
                    f"{fields.instructions}\n\nStrategies:\n{rules}"
                )
        return copy

    def __call__(self, task: str, lessons: Lessons) -> Trajectory:
        program = self.taught(lessons)
        trace: list[Any] = []
        with dspy.context(adapter=self.adapter or dspy.ChatAdapter(), trace=trace):
            out = program(**{self.input: task})
        names = {id(p): name for name, p in program.named_predictors()}
        steps = tuple(
            Step(
                "prediction",
                "; ".join(f"{k}: {v}" for k, v in dict(outputs).items()),
                name=names.get(id(predictor), type(predictor).__name__),
            )
            for predictor, _, outputs in trace
        )
        answer = out.get("answer") if isinstance(out, dspy.Prediction) else out
        if answer is None and isinstance(out, dspy.Prediction):
            answer = list(dict(out).values())[-1]
        return Trajectory(answer=str(answer), steps=steps)

    def state(self) -> dict[str, Any]:
        return dict(self.module.dump_state())

    def load_state(self, state: dict[str, Any]) -> None:
        self.module.load_state(state)
