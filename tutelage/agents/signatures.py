"""Every DSPy signature of tutelage. Their docstrings are prompts: review them like code."""

from __future__ import annotations

import dspy

__all__ = ["EXAMPLE_LINE", "REASONING_LINE", "Diagnose", "Reflect", "Solve", "diagnose_signature"]


class Solve(dspy.Signature):
    """Answer the task. Reply with the answer only."""

    strategies: str = dspy.InputField(desc="general rules learned from past mistakes", default="")
    task: str = dspy.InputField(desc="the task input")
    answer: str = dspy.OutputField(desc="the answer")


class Diagnose(dspy.Signature):
    """You are a teacher. A student answered a task wrongly. Reply in exactly this format:
    DIAGNOSIS: <why the student's answer is wrong, one sentence>
    STRATEGY: <a short general rule that would have led to the correct answer>"""

    attempt: str = dspy.InputField(desc="the task, the student's answer and the correct answer")
    reply: str = dspy.OutputField(desc="DIAGNOSIS and STRATEGY lines")


class Reflect(dspy.Signature):
    """You are a teacher. A student answered some tasks wrongly; each comes with feedback.
    Find what the mistakes have in common. Reply in exactly this format:
    DIAGNOSIS: <what the student keeps getting wrong, one sentence>
    STRATEGY: <a short general rule that avoids this mistake on any similar task>"""

    failures: str = dspy.InputField(desc="the tasks, the student's answers and the feedback on each")
    reply: str = dspy.OutputField(desc="DIAGNOSIS and STRATEGY lines")


# What the teacher is asked for beyond the diagnosis, by what the suite can use (see ``diagnose_signature``).
EXAMPLE_LINE = (
    "EXAMPLE: <a new input, unlike this one, with the same correct answer, that a student could get "
    "wrong in the same way> => <the correct answer>"
)
REASONING_LINE = (
    "REASONING: <the correct reasoning for this task, step by step, ending with the correct answer in "
    "the form the task asks for>"
)


# An agent student's attempt comes with its numbered steps: the teacher names the first wrong one.
STEP_LINE = (
    "STEP: <the number of the student's first wrong step; the diagnosis and strategy are about that step>"
)


def diagnose_signature(*, examples: int, reasoning: bool, steps: bool = False) -> type[dspy.Signature]:
    """``Diagnose`` asking also for ``examples`` EXAMPLE lines (synthetic examples), for a suite
    whose replies are reasoning a REASONING line (a worked example), and for an agent whose steps
    are shown a STEP line (the first wrong step)."""
    extra = (
        ([STEP_LINE] if steps else []) + [EXAMPLE_LINE] * examples + ([REASONING_LINE] if reasoning else [])
    )
    if not extra:
        return Diagnose
    asked: type[dspy.Signature] = Diagnose.with_instructions(Diagnose.instructions + "\n" + "\n".join(extra))
    return asked
