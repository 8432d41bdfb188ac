"""Your own agent as the student: the program that runs it in the loop.

An ``Agent`` (``tutelage.agents.interface``) is called with a task and the lessons retrieved for
it and returns a ``Trajectory`` (its answer and its steps); ``tutelage.agents.own`` adapts a DSPy
module, a LangGraph graph or a plain function to it. ``AgentStudent`` is the student the loop runs
around an agent: it retrieves the lessons (the retrieval policy of tutelage's own program, which the
``fewshot`` optimizer tunes), calls the agent, and saves itself as the agent's import path
(``pkg.mod:attr``) so a resumed run, or ``tutelage.Student.load``, rebuilds it.

The agent calls its model through ``agent_lm()``: the run's student LM, so every call is in the cost
ledger. An agent that calls a model of its own is not seen by the ledger; the run says so.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Self

import dspy

from tutelage.agents.interface import Agent, Lessons, import_object, lm_for_agent, reset_lm
from tutelage.agents.own import wrap
from tutelage.agents.student import StudentProgram
from tutelage.backends import counting_calls
from tutelage.backends.meter import metered_elsewhere
from tutelage.evals.metrics import closest_choice

if TYPE_CHECKING:
    from tutelage.memory.store import LessonStore

__all__ = ["AGENT_FORMAT", "AgentStudent"]

AGENT_FORMAT = "tutelage.agent/1"
log = logging.getLogger(__name__)


class AgentStudent(StudentProgram):
    """The loop's student around your agent (``program``: its import path).

    ``instructions`` are kept for the report and for fine-tune rows; the agent writes its own prompt.
    """

    SAVED = ("program",)

    def __init__(self, instructions: str, *, program: str, **policy: Any) -> None:
        super().__init__(instructions, **policy)
        self.program = program
        self.agent: Agent = wrap(import_object(program))
        self._warned = False

    def forward(self, task: str, prefix: str = "") -> dspy.Prediction:
        examples, strategies = self.retrieve(task)
        lessons = Lessons(
            examples=tuple((x.text, x.reply) for x in examples),
            strategies=tuple(s.text for s in strategies),
            ids=tuple(x.id for x in [*examples, *strategies]),
        )
        shown = f"{prefix.rstrip()}\n\n{task}" if prefix else task
        lm = dspy.settings.lm
        token = lm_for_agent(lm)
        try:
            with counting_calls() as seen:
                trajectory = self.agent(shown, lessons)
        finally:
            reset_lm(token)
        if not seen[0] and not metered_elsewhere(lm) and not self._warned:
            self._warned = True
            log.warning(
                "student.program %s made no model call through tutelage.agent_lm() or "
                "tutelage.agent_base_url(): the cost ledger cannot see its calls",
                self.program,
            )
        answer = str(trajectory.answer)
        return dspy.Prediction(
            answer=closest_choice(answer, self.choices) if self.choices else answer,
            raw=answer,
            lesson_ids=list(lessons.ids),
            steps=[s.to_json() for s in trajectory.steps],
            metered_calls=seen[0],
        )

    def request(self, task: str, *, hide: str | None = None) -> list[dict[str, Any]]:
        """Not known: your agent writes its own prompts."""
        raise NotImplementedError("a student.program agent writes its own prompts; train on bare prompts")

    def settings(self) -> dict[str, Any]:
        return {"program": self.program}

    def to_json(self) -> dict[str, Any]:
        state = getattr(self.agent, "state", None)
        return {
            **super().to_json(),
            "format": AGENT_FORMAT,
            "program": self.program,
            "agent_state": state() if callable(state) else None,
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any], *, memory: LessonStore | None, as_of_round: int | None = None
    ) -> Self:
        program = super().from_json(data, memory=memory, as_of_round=as_of_round)
        load = getattr(program.agent, "load_state", None)
        if data.get("agent_state") is not None and callable(load):
            load(data["agent_state"])
        return program
