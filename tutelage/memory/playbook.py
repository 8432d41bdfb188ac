"""Carrying lessons elsewhere: lossless JSONL export and import, and a Markdown playbook for people."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from tutelage.errors import DataError
from tutelage.memory.lesson import DEMO_KINDS, Lesson, lesson_id, reason_category
from tutelage.memory.store import LessonStore

__all__ = ["export_jsonl", "playbook_markdown", "read_jsonl", "shorten"]


def export_jsonl(store: LessonStore) -> str:
    """Every lesson, one JSON record per line, ordered by round then id (the whole record, no vector)."""
    return "".join(x.model_dump_json() + "\n" for x in store.all())


def read_jsonl(path: Path) -> list[Lesson]:
    """Parse an export; a bad row fails with its line number and nothing is written."""
    if not path.is_file():
        raise DataError(f"lesson file not found: {path}")
    lessons = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lesson = Lesson.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "record"
            raise DataError(f"{path}:{line_no}: {where}: {first['msg']}") from None
        if lesson.id != lesson_id(lesson.kind, lesson.text, lesson.answer, lesson.rationale):
            raise DataError(f"{path}:{line_no}: id {lesson.id} does not match the lesson's content")
        lessons.append(lesson)
    return lessons


def _n(count: int, one: str, many: str = "") -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _counters(x: Lesson) -> str:
    return f"helped {x.helped} · hurt {x.hurt} · shown {x.retrieved}"


def _origin(x: Lesson) -> str:
    p = x.provenance
    sources = ", ".join(p.source_task_ids[:3]) + (" …" if len(p.source_task_ids) > 3 else "")
    return (
        f"round {p.round}"
        + (f", from {sources}" if sources else "")
        + (f", teacher `{p.teacher_model}`" if p.teacher_model else "")
    )


def shorten(text: str, limit: int = 160) -> str:
    """One line of at most ``limit`` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def playbook_markdown(lessons: Iterable[Lesson], *, title: str) -> str:
    """Active lessons grouped by scope and kind (examples by answer), then what was retired and why."""
    lessons = list(lessons)
    active = [x for x in lessons if x.status == "active"]
    retired = [x for x in lessons if x.status != "active"]
    kinds = Counter(x.kind for x in active)
    lines = [
        f"# Playbook: {title}",
        "",
        f"{_n(len(active), 'active lesson')} ({_n(kinds['strategy'], 'strategy', 'strategies')}, "
        f"{_n(kinds['example'], 'example')}); {len(retired)} retired, rejected or pending.",
        "",
        "Counters: *helped* = shown on a right answer it supports, *hurt* = shown on a wrong answer it "
        "led to, *shown* = times retrieved.",
    ]
    scopes: dict[str, list[Lesson]] = defaultdict(list)
    for x in active:
        scopes[x.scope].append(x)
    for scope in sorted(scopes):
        lines += ["", f"## Scope: {scope or '(none)'}"]
        strategies = sorted(
            (x for x in scopes[scope] if x.kind == "strategy"), key=lambda x: (-x.helped, x.id)
        )
        if strategies:
            lines += ["", f"### Strategies ({len(strategies)})", ""]
            for x in strategies:
                lines.append(f"- **{shorten(x.text)}**  \n  {_counters(x)} · {_origin(x)} · `{x.id}`")
                if x.provenance.diagnosis:
                    lines.append(f"  > why: {shorten(x.provenance.diagnosis)}")
        examples: dict[str, list[Lesson]] = defaultdict(list)
        for x in scopes[scope]:
            if x.kind in DEMO_KINDS:
                examples[x.answer].append(x)
        if examples:
            lines += ["", f"### Worked examples ({sum(map(len, examples.values()))}), by answer"]
            for answer in sorted(examples):
                lines += ["", f"#### `{answer}`", ""]
                for x in sorted(examples[answer], key=lambda x: (-x.helped, x.id)):
                    kind = "" if x.kind == "example" else f"*{x.kind}* "
                    lines.append(f'- {kind}"{shorten(x.text)}" — {_counters(x)} · {_origin(x)} · `{x.id}`')
                    if x.rationale:
                        lines.append(f"  > reasoning: {shorten(x.rationale)}")
    if retired:
        reasons = Counter(reason_category(x.reason) for x in retired)
        lines += ["", "## Retired, rejected and pending", ""]
        lines += [f"- {count} × {reason}" for reason, count in reasons.most_common()]
        lines.append("")
        for x in sorted(retired, key=lambda x: (x.round, x.id)):
            lines.append(f'- `{x.id}` ({x.kind}, {x.status}) "{shorten(x.text, 100)}" — {x.reason}')
    return "\n".join(lines) + "\n"
