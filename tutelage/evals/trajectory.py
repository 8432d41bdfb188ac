"""What an agent did on one task: its final answer and the steps that led there.

A step is a message, a model prediction, a tool call or a tool's result. The teacher reads the steps
of a failed attempt (``render_steps`` cuts them to a token budget, keeping the first failing step
whole) and names the first wrong one; the lessons it writes keep that step's number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Step", "StepKind", "Trajectory", "first_failing", "render_steps"]

StepKind = Literal["message", "prediction", "tool_call", "tool_result"]
_CUT = " …(cut)"


def token_estimate(text: str) -> int:
    return max(1, (len(text) + 3) // 4)  # about 4 characters a token, as the memory counts


@dataclass(frozen=True)
class Step:
    """One step: ``kind``, its text, the tool or predictor ``name`` and whether it failed (``error``)."""

    kind: StepKind
    content: str
    name: str = ""
    error: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Step:
        return cls(str(row["kind"]), str(row["content"]), str(row.get("name", "")), bool(row.get("error")))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Trajectory:
    """An agent's final ``answer``, its ``steps`` in order, and token ``usage`` where the agent knows it."""

    answer: str
    steps: tuple[Step, ...] = ()
    usage: dict[str, int] = field(default_factory=dict)


def first_failing(steps: list[Step], *, answer_wrong: bool = True) -> int | None:
    """The index of the first step marked as an error; else, when the answer is wrong, the last step
    (the one that gave the answer); else None."""
    for i, step in enumerate(steps):
        if step.error:
            return i
    return len(steps) - 1 if steps and answer_wrong else None


def _line(i: int, step: Step) -> str:
    head = f"{i + 1}. [{step.kind}{' ' + step.name if step.name else ''}{' ERROR' if step.error else ''}]"
    return f"{head} {step.content.strip()}"


def render_steps(steps: list[Step], *, budget: int = 600, focus: int | None = None) -> str:
    """The steps as numbered lines within about ``budget`` tokens.

    The ``focus`` step (the first failing one) is always whole. The others share what is left:
    each is cut to an equal share, and when even that is too little, the steps farthest from the
    focus are left out and counted.
    """
    if not steps:
        return ""
    focus = len(steps) - 1 if focus is None else max(0, min(focus, len(steps) - 1))
    lines = [_line(i, s) for i, s in enumerate(steps)]
    if sum(token_estimate(x) for x in lines) <= budget:
        return "\n".join(lines)
    left = max(0, budget - token_estimate(lines[focus]))
    order = sorted((i for i in range(len(lines)) if i != focus), key=lambda i: (abs(i - focus), i))
    keep: dict[int, str] = {focus: lines[focus]}
    share = 40  # tokens: the least a shown step keeps
    for n in range(len(order), -1, -1):
        if n and left // n >= share:
            chars = (left // n) * 4
            for i in order[:n]:
                keep[i] = lines[i] if len(lines[i]) <= chars else lines[i][: chars - len(_CUT)] + _CUT
            break
    out, skipped = [], 0
    for i in range(len(lines)):
        if i in keep:
            if skipped:
                out.append(f"   ({skipped} step{'s' if skipped > 1 else ''} left out)")
                skipped = 0
            out.append(keep[i])
        else:
            skipped += 1
    if skipped:
        out.append(f"   ({skipped} step{'s' if skipped > 1 else ''} left out)")
    return "\n".join(out)
