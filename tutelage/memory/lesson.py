"""The lesson record: what the teacher learned about the student, with where it came from."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Lesson", "LessonKind", "lesson_id"]

LessonKind = Literal["strategy", "example"]


def lesson_id(kind: str, text: str, answer: str = "") -> str:
    """Stable id from content: writing the same lesson twice is a no-op (resumed runs stay idempotent)."""
    digest = hashlib.sha256(f"{kind}\x1f{text.strip()}\x1f{answer.strip()}".encode()).hexdigest()
    return f"{kind[:2]}-{digest[:16]}"


class Lesson(BaseModel):
    """A ``strategy`` (a short general rule) or an ``example`` (a task input with a correct answer)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: LessonKind
    text: str
    answer: str = ""
    round: int
    source_task_id: str
    teacher_model: str
    diagnosis: str = ""

    @classmethod
    def make(
        cls,
        *,
        kind: LessonKind,
        text: str,
        answer: str = "",
        round: int,
        source_task_id: str,
        teacher_model: str,
        diagnosis: str = "",
    ) -> Lesson:
        return cls(
            id=lesson_id(kind, text, answer),
            kind=kind,
            text=text.strip(),
            answer=answer.strip(),
            round=round,
            source_task_id=source_task_id,
            teacher_model=teacher_model,
            diagnosis=diagnosis.strip(),
        )
