"""The suite data model: ``Task`` (one item, with read-only tags) and ``Suite`` (splits and grading)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from tutelage.evals.graders import Grader

__all__ = ["Suite", "Tags", "Task"]


class Tags(dict[str, str]):
    """A read-only ``str -> str`` mapping: hashable, picklable, and a plain dict to ``json.dumps``."""

    def __init__(self, items: Mapping[str, object] | Iterable[tuple[str, object]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        super().__init__((str(k), str(v)) for k, v in pairs)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def __reduce__(self) -> tuple[type[Tags], tuple[dict[str, str]]]:
        return (Tags, (dict(self),))

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Task.tags is read-only; build a new Task with dataclasses.replace")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only  # type: ignore[assignment]


@dataclass(frozen=True)
class Task:
    """One item: a stable id, the input shown to the student, and the gold answer.

    ``tags`` label the item for per-slice scores (``{"task": "date_understanding"}``,
    ``{"subject": "Algebra", "level": "3"}``); ``prefix`` is text the student reads before the input
    (BBH's published few-shot prompt) that is not used for retrieval or embedding.

    Example:
        >>> t = Task("bbh-1", "Q: 2+2?\\nA:", "4", tags={"task": "arith"}, prefix="Add numbers.")
        >>> t.prompt
        'Add numbers.\\n\\nQ: 2+2?\\nA:'
    """

    id: str
    input: str
    answer: str
    tags: Mapping[str, str] = field(default_factory=Tags)
    prefix: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.tags, Tags):
            object.__setattr__(self, "tags", Tags(self.tags))

    @property
    def prompt(self) -> str:
        """What the student reads: the prefix, a blank line, then the input (the input alone if no prefix)."""
        return f"{self.prefix}\n\n{self.input}" if self.prefix else self.input


@dataclass(frozen=True)
class Suite:
    """A task suite: splits, the student's instruction, the grader and the teacher's format demo.

    ``labels`` is the closed label set a reply may be snapped to (single-label suites only);
    ``reasoning`` says the student's reply is reasoning ending in an answer (GSM8K, MATH, BBH's chain
    of thought), so a teacher's worked solution is a demo it can follow;
    ``held_out`` is every item of the test side (also those ``test_size`` leaves unscored), which no
    lesson may quote; ``slice_keys`` name the ``Task.tags`` worth a per-slice breakdown.
    """

    name: str
    instruction: str
    train: list[Task]
    dev: list[Task]
    test: list[Task]
    metric: Grader
    labels: list[str] = field(default_factory=list)
    teacher_demo: tuple[str, str] | None = None
    held_out: list[Task] = field(default_factory=list)
    slice_keys: tuple[str, ...] = ()
    reasoning: bool = False

    def guarded(self) -> list[Task]:
        """Every held-out item no lesson may quote (the whole test file, not only the scored slice)."""
        return self.held_out or self.test

    def by_id(self) -> dict[str, Task]:
        return {t.id: t for t in [*self.train, *self.dev, *self.test]}

    def slices(self, tasks: Iterable[Task]) -> dict[str, dict[str, list[str]]]:
        """Task ids per tag value for each of ``slice_keys``: ``{"level": {"3": ["math500-7", ...]}}``."""
        out: dict[str, dict[str, list[str]]] = {key: {} for key in self.slice_keys}
        for task in tasks:
            for key in self.slice_keys:
                if key in task.tags:
                    out[key].setdefault(task.tags[key], []).append(task.id)
        return out
