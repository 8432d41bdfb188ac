"""The one way a lesson enters a memory: the leakage guard, then the verification mode, with provenance.

Every writer goes through ``Admission``: the loop's lesson nodes, GEPA's instruction proposer, and
``tutelage memory import`` / ``edit``. A lesson quoting a held-out item is stored retired with the
reason (so it is never shown, and the refusal stays on record); the rest are written as candidates and
then either activated (``verify: off``), checked by the caller's ``check`` (a function from candidates
to ``Verdict``s that runs the student), or left as candidates for the next round to check when no
student is at hand (an import into a run that verifies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from tutelage.memory._leakage import LeakageGuard
from tutelage.memory.lesson import Lesson
from tutelage.memory.store import LessonStore

__all__ = ["Admission", "Admitted", "Check", "Verdict", "VerifyMode"]

VerifyMode = Literal["off", "source", "probe"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one candidate's check (journaled per lesson id, so a resumed round skips it)."""

    task_id: str  # the lesson id; named so the harness journal can key on it
    passed: bool
    reason: str
    probe_with: int = 0
    probe_without: int = 0


Check = Callable[[list[Lesson]], list[Verdict]]


@dataclass
class Admitted:
    """What one admission did: ids written (or revived) as candidates, refused, activated, rejected."""

    written: list[str] = field(default_factory=list)
    refused: int = 0
    active: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[str]:
        settled = {*self.active, *self.rejected}
        return [i for i in self.written if i not in settled]


@dataclass(frozen=True)
class Admission:
    """The leakage guard (None: no held-out split to guard, e.g. a bare store) and the verify mode."""

    guard: LeakageGuard | None
    verify: VerifyMode = "off"

    def screen(self, lessons: Iterable[Lesson], *, round: int | None) -> tuple[list[Lesson], int]:
        """The lessons with every one that quotes a held-out item retired (reason: which item)."""
        out, refused = [], 0
        for x in lessons:
            leak = self.guard.check(x.text, x.answer, x.rationale) if self.guard is not None else None
            if leak is not None and x.status != "retired":
                x = x.with_status("retired", leak.reason(), round=round)
                refused += 1
            out.append(x)
        return out, refused

    def write(self, store: LessonStore, lessons: Iterable[Lesson], *, round: int | None) -> Admitted:
        """Screen, then store: new lessons and revived retired ones become candidates."""
        screened, refused = self.screen(lessons, round=round)
        written = store.add(screened)
        stored = {x.id: x for x in store.get(written)}
        return Admitted(written=[i for i in written if stored[i].status == "candidate"], refused=refused)

    def settle(
        self, store: LessonStore, verdicts: Iterable[Verdict], *, round: int | None
    ) -> tuple[list[str], list[str]]:
        """Activate the candidates that passed, retire the rest, each with its verdict's reason."""
        by_id = {v.task_id: v for v in verdicts}
        changed = [
            x.with_status("active" if by_id[x.id].passed else "retired", by_id[x.id].reason, round=round)
            for x in store.get(list(by_id))
            if x.status == "candidate"
        ]
        store.put(changed)
        return [x.id for x in changed if x.status == "active"], [
            x.id for x in changed if x.status != "active"
        ]

    def activate_unchecked(
        self, store: LessonStore, ids: list[str], *, round: int | None, why: str = ""
    ) -> list[str]:
        """``verify: off``: every candidate among ``ids`` becomes active, saying so."""
        reason = why or "active without a check (memory.verify=off)"
        candidates = [x.id for x in store.get(ids) if x.status == "candidate"]
        store.set_status(candidates, "active", reason, round=round)
        return candidates

    def admit(
        self,
        store: LessonStore,
        lessons: Iterable[Lesson],
        *,
        round: int | None,
        check: Check | None = None,
        why: str = "",
    ) -> Admitted:
        """Write, then settle at once: activate (``off``, saying ``why``), check (``check``), or leave
        pending."""
        done = self.write(store, lessons, round=round)
        if self.verify == "off":
            done.active = self.activate_unchecked(store, done.written, round=round, why=why)
        elif check is not None and done.written:
            done.active, done.rejected = self.settle(store, check(store.get(done.written)), round=round)
        return done
