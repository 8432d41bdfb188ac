"""The lesson record: what the teacher learned, where it came from, whether it is in use and why."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEMO_KINDS",
    "TEACHER_KINDS",
    "Lesson",
    "LessonKind",
    "LessonStatus",
    "Provenance",
    "StatusChange",
    "lesson_id",
    "now",
    "reason_category",
    "token_estimate",
]

# A new kind (e.g. "tool-hint") is one more literal here; retrieval and curation are per kind.
# ``example``: a train item with its gold answer (no teacher involved); ``worked``: a failed train item
# with the teacher's corrected reasoning (shown as the demo's reply); ``synthetic``: a new input the
# teacher wrote near a confusion, with its answer; ``strategy``: a short general rule.
LessonKind = Literal["strategy", "example", "worked", "synthetic"]
DEMO_KINDS: tuple[LessonKind, ...] = ("example", "worked", "synthetic")  # shown as demo turns
TEACHER_KINDS: tuple[LessonKind, ...] = ("strategy", "worked", "synthetic")  # what the teacher wrote
LessonStatus = Literal["candidate", "active", "retired"]
NEVER = 1_000_000  # the round a lesson that was never (or is still) active stops being active


def lesson_id(kind: str, text: str, answer: str = "", rationale: str = "") -> str:
    """Stable id from content: writing the same lesson twice is a no-op (resumed runs stay idempotent)."""
    blob = f"{kind}\x1f{text.strip()}\x1f{answer.strip()}"
    if rationale.strip():  # a worked example is its reasoning too (older ids stay as they were)
        blob += f"\x1f{rationale.strip()}"
    digest = hashlib.sha256(blob.encode()).hexdigest()
    return f"{kind[:2]}-{digest[:16]}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_IDS = re.compile(r"\b(?:train|dev|test)-\d+\b|\b[a-z]{2}-[0-9a-f]{16}\b")


def reason_category(reason: str) -> str:
    """A reason without its particulars, for tallies: 'rejected: source task … still fails with it'."""
    head = re.split(r" \(|, ", reason, maxsplit=1)[0]
    return re.sub(r"\b\d+\b", "N", _IDS.sub("…", head))


def token_estimate(text: str) -> int:
    """A model-free token count (about 4 characters a token, as the OpenAI tokenizer averages)."""
    return max(1, (len(text) + 3) // 4)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Provenance(_Record):
    """Where a lesson came from: the round, the failures it answers, the teacher and its prompt."""

    round: int = 0
    source_task_ids: tuple[str, ...] = ()
    teacher_model: str = ""
    diagnosis: str = ""
    prompt_hash: str = ""
    step: int | None = None  # an agent's first wrong step (1-based) the lesson is about


class StatusChange(_Record):
    """One step of a lesson's life (written, verified, rejected, merged, retired, edited)."""

    status: LessonStatus
    reason: str
    round: int | None = None
    at: str = ""


class Lesson(_Record):
    """A ``strategy`` (a short general rule), an ``example`` (a task input with its gold answer), a
    ``worked`` example (a task input, the teacher's reasoning in ``rationale``, the answer) or a
    ``synthetic`` example (an input the teacher wrote, with its answer).

    The record is immutable; status changes and counter updates return a new record.
    """

    id: str
    kind: LessonKind
    text: str
    answer: str = ""
    rationale: str = ""  # worked examples: the whole reply shown in the demo (reasoning, then answer)
    scope: str = ""
    tags: tuple[str, ...] = ()
    provenance: Provenance = Provenance()
    status: LessonStatus = "candidate"
    history: tuple[StatusChange, ...] = ()
    retrieved: int = Field(0, ge=0)
    helped: int = Field(0, ge=0)
    hurt: int = Field(0, ge=0)
    credited_round: int = 0
    created_at: str = ""
    updated_at: str = ""
    embedding_model: str = ""

    @classmethod
    def make(
        cls,
        *,
        kind: LessonKind,
        text: str,
        answer: str = "",
        rationale: str = "",
        round: int = 0,
        source_task_id: str = "",
        teacher_model: str = "",
        diagnosis: str = "",
        prompt_hash: str = "",
        scope: str = "",
        tags: tuple[str, ...] = (),
        reason: str = "written by the teacher",
        step: int | None = None,
    ) -> Lesson:
        """A new candidate lesson (its id comes from kind, text and answer)."""
        stamp = now()
        return cls(
            id=lesson_id(kind, text, answer, rationale),
            kind=kind,
            text=text.strip(),
            answer=answer.strip(),
            rationale=rationale.strip(),
            scope=scope,
            tags=tags,
            provenance=Provenance(
                round=round,
                source_task_ids=(source_task_id,) if source_task_id else (),
                teacher_model=teacher_model,
                diagnosis=diagnosis.strip(),
                prompt_hash=prompt_hash,
                step=step,
            ),
            history=(StatusChange(status="candidate", reason=reason, round=round, at=stamp),),
            created_at=stamp,
            updated_at=stamp,
        )

    @property
    def round(self) -> int:
        return self.provenance.round

    @property
    def tokens(self) -> int:
        return token_estimate(f"{self.text} {self.rationale or self.answer}")

    @property
    def reply(self) -> str:
        """What a demo of this lesson shows as the assistant's turn (the reasoning, if it has one)."""
        return self.rationale or self.answer

    @property
    def sources(self) -> tuple[str, ...]:
        return self.provenance.source_task_ids

    @property
    def active_from(self) -> int:
        """The round from which the lesson was shown to the student (``NEVER`` if it never was)."""
        for change in self.history:
            if change.status == "active":
                return change.round if change.round is not None else self.round
        return NEVER

    @property
    def active_until(self) -> int:
        """The first round in which it was no longer shown (``NEVER`` while it is active)."""
        if self.active_from == NEVER or self.status != "retired" or not self.history:
            return NEVER
        retired_in = self.history[-1].round  # the change that retired it is the latest one
        return NEVER if retired_in is None else retired_in

    def with_status(self, status: LessonStatus, reason: str, *, round: int | None = None) -> Lesson:
        stamp = now()
        change = StatusChange(status=status, reason=reason, round=round, at=stamp)
        return self.model_copy(
            update={"status": status, "history": (*self.history, change), "updated_at": stamp}
        )

    def with_counts(
        self, *, retrieved: int = 0, helped: int = 0, hurt: int = 0, credited_round: int
    ) -> Lesson:
        return self.model_copy(
            update={
                "retrieved": self.retrieved + retrieved,
                "helped": self.helped + helped,
                "hurt": self.hurt + hurt,
                "credited_round": max(self.credited_round, credited_round),
                "updated_at": now(),
            }
        )

    @property
    def reason(self) -> str:
        """Why the lesson has its current status."""
        return self.history[-1].reason if self.history else ""
