"""``tutelage memory``: list, show, search, retire, edit, export and import the lessons of a memory.

A LOCATION is a run directory (its memory, opened as the run opens it) or a bare store folder.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, ParamSpec

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from tutelage import runfiles
from tutelage.cli._common import _env, _guard, console
from tutelage.errors import DataError
from tutelage.memory._admit import Admission
from tutelage.memory._leakage import LeakageGuard
from tutelage.memory.lesson import Lesson, LessonKind, LessonStatus, lesson_id
from tutelage.memory.location import open_location
from tutelage.memory.playbook import export_jsonl, playbook_markdown, read_jsonl, shorten
from tutelage.memory.query import LessonFilter
from tutelage.memory.store import LessonStore

__all__ = ["app"]

app = typer.Typer(
    help="Inspect and curate a lesson memory: a run directory or a bare store folder.", no_args_is_help=True
)

STATUSES: tuple[LessonStatus, ...] = ("active", "candidate", "retired")
ANY = LessonFilter(status=None)
COUNTERS = "helped hurt shown"  # a header that may wrap over its 0/0/0 cells

Location = Annotated[
    Path, typer.Argument(metavar="LOCATION", help="a run directory, or a folder holding a lesson store")
]
LessonRef = Annotated[str, typer.Argument(metavar="ID", help="a lesson id, or a unique prefix of one")]
KindOption = Annotated[LessonKind | None, typer.Option(help="only strategies or only examples")]


P = ParamSpec("P")


def _command(name: str) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Register a memory command whose every TutelageError becomes one line and exit 1."""

    def register(fn: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
            _env()
            _guard(lambda: fn(*args, **kwargs))

        app.command(name)(guarded)
        return guarded

    return register


def _find(store: LessonStore, ref: str, loc: Path) -> Lesson:
    exact = store.get([ref])
    if exact:
        return exact[0]
    matches = [x for x in store.all(ANY) if x.id.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DataError(f"no lesson {ref!r} in {loc}")
    shown = ", ".join(x.id for x in matches[:4])
    raise DataError(f"{ref!r} matches {len(matches)} lessons in {loc}: {shown}")


def _admission(loc: Path) -> tuple[Admission, str]:
    """How lessons enter the memory at ``loc``: a run's leakage guard (its suite's held-out items) and
    verification mode; a bare store has no held-out split to guard and nothing to verify with."""
    from tutelage.config import load_config
    from tutelage.evals.suites import load_suite

    config = next((p for p in (loc / "config.yaml", loc.parent / "config.yaml") if p.is_file()), None)
    if config is None:
        return Admission(None, "off"), "no leakage guard: a bare store has no held-out items"
    cfg = load_config(config)
    suite = load_suite(cfg.suite)
    guard = LeakageGuard(
        ((t.id, t.input) for t in suite.guarded()),
        n=cfg.memory.leakage_ngram,
        threshold=cfg.memory.leakage_threshold,
    )
    return Admission(guard, cfg.memory.verify), ""


def _next_round(store: LessonStore) -> int:
    """The round a person's change takes effect in: the one after the last round that wrote or
    credited a lesson (a person's own changes do not move it, so repeated edits stay in one round).

    A change without a round would leave a retired lesson in every ``as_of_round`` replay (its
    ``active_until`` stays open) and put an edited one into replays of rounds it never took part in.
    """
    return max((max(x.round, x.credited_round) for x in store.all()), default=0) + 1


def _counters(x: Lesson) -> str:
    return f"{x.helped}/{x.hurt}/{x.retrieved}"


def _table(title: str, *columns: str) -> Table:
    """Short fields never wrap; free text (text, answer, reason) takes the width that is left."""
    table = Table(
        title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    for col in columns:
        short = col in ("#", "id", "kind", "status", "round", "similarity", "at")
        table.add_column(col, no_wrap=short, overflow="fold", justify="right" if col == "#" else "left")
    return table


@_command("list")
def memory_list(
    loc: Location,
    kind: KindOption = None,
    status: Annotated[
        Literal["candidate", "active", "retired", "all"], typer.Option(help="only lessons in this state")
    ] = "all",
    round_no: Annotated[int | None, typer.Option("--round", help="only lessons written in round N")] = None,
) -> None:
    """List the lessons: id, kind, status, round, helped/hurt/shown, text and answer."""
    store = open_location(loc)
    pool = [x for x in store.all(LessonFilter(kind=kind, status=None)) if round_no in (None, x.round)]
    shown = [x for x in pool if status in ("all", x.status)]
    counts = Counter(x.status for x in pool)
    head = f"{len(shown)} lessons" if len(shown) == len(pool) else f"{len(shown)} of {len(pool)} lessons"
    per_status = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
    columns = ("id", "kind", "status", "round", COUNTERS, "text", "answer")
    table = _table(f"{head} in {loc} ({per_status})", *columns)
    for x in shown:
        table.add_row(
            x.id, x.kind, x.status, str(x.round), _counters(x), Text(shorten(x.text, 120)), Text(x.answer)
        )
    console.print(table)


@_command("show")
def memory_show(loc: Location, ref: LessonRef) -> None:
    """Show one lesson whole: content, where it came from, its counters and its full history."""
    store = open_location(loc)
    x = _find(store, ref, loc)
    p = x.provenance
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    rows = [
        ("id", x.id),
        ("kind", x.kind),
        ("status", f"{x.status} ({x.reason})" if x.reason else x.status),
        ("text", x.text),
        ("answer", x.answer or "-"),
        ("scope", x.scope or "-"),
        ("tags", ", ".join(x.tags) or "-"),
        (
            "counters",
            f"helped {x.helped} · hurt {x.hurt} · shown {x.retrieved} "
            f"(credited through round {x.credited_round})",
        ),
        ("round", str(p.round)),
        ("sources", ", ".join(p.source_task_ids) or "-"),
        ("teacher", p.teacher_model or "-"),
        ("diagnosis", p.diagnosis or "-"),
        ("prompt hash", p.prompt_hash or "-"),
        ("created", x.created_at or "-"),
        ("updated", x.updated_at or "-"),
        ("embedded with", x.embedding_model or "-"),
    ]
    for key, value in rows:
        fields.add_row(key, Text(value))
    console.print(fields)
    history = _table(f"history ({len(x.history)} steps)", "#", "status", "round", "reason", "at")
    for i, change in enumerate(x.history, start=1):
        round_text = "-" if change.round is None else str(change.round)
        history.add_row(str(i), change.status, round_text, Text(change.reason), change.at or "-")
    console.print(history)


@_command("search")
def memory_search(
    loc: Location,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="what to look for, e.g. a task input")],
    kind: KindOption = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="how many hits")] = 5,
    all_: Annotated[bool, typer.Option("--all", help="search every status, not only active lessons")] = False,
) -> None:
    """The lessons most similar to TEXT, as the student would retrieve them (only active by default)."""
    store = open_location(loc)
    hits = store.search_many([text], kind=kind, k=k, where=ANY if all_ else None)[0]
    scope = "lessons" if all_ else "active lessons"
    columns = ("#", "similarity", "id", "kind", *(["status"] if all_ else []), "text", "answer")
    table = _table(f"{len(hits)} {scope} nearest to {text!r} in {loc}", *columns)
    for rank, (x, score) in enumerate(hits, start=1):
        status = [x.status] if all_ else []
        table.add_row(
            str(rank), f"{score:.3f}", x.id, x.kind, *status, Text(shorten(x.text, 120)), Text(x.answer)
        )
    console.print(table)


@_command("retire")
def memory_retire(
    loc: Location,
    ref: LessonRef,
    reason: Annotated[str, typer.Option(help="why, kept in the lesson's history")] = "retired by a person",
) -> None:
    """Stop showing a lesson to the student; the record and its history stay."""
    store = open_location(loc)
    x = _find(store, ref, loc)
    if x.status == "retired":
        console.print(Text(f"{x.id} is already retired ({x.reason}); nothing changed"))
        return
    round_no = _next_round(store)
    store.set_status([x.id], "retired", reason, round=round_no)
    console.print(Text(f"{x.id}: {x.status} -> retired from round {round_no} ({reason})"))


@_command("edit")
def memory_edit(
    loc: Location,
    ref: LessonRef,
    text: Annotated[str | None, typer.Option(help="the new text")] = None,
    answer: Annotated[str | None, typer.Option(help="the new answer (examples only)")] = None,
) -> None:
    """Rewrite a lesson: ids come from content, so the edit is a new lesson and the old one retires.

    The new lesson takes the same admission path as the loop's: refused if it quotes a held-out
    item, active at once with ``memory.verify: off``, else a candidate the next round verifies."""
    store = open_location(loc)
    old = _find(store, ref, loc)
    if answer is not None and old.kind == "strategy":
        raise DataError("a strategy has no answer; change its --text")
    new_text = (old.text if text is None else text).strip()
    new_answer = (old.answer if answer is None else answer).strip()
    if not new_text:
        raise DataError("a lesson needs a text")
    new_id = lesson_id(old.kind, new_text, new_answer, old.rationale)
    if new_id == old.id:
        raise DataError(f"nothing to change in {old.id}: give a different --text or --answer")
    round_no = _next_round(store)
    admission, _ = _admission(loc)
    new = Lesson(
        id=new_id,
        kind=old.kind,
        text=new_text,
        answer=new_answer,
        rationale=old.rationale,
        scope=old.scope,
        tags=old.tags,
        provenance=old.provenance,
    ).with_status("candidate", f"edited from {old.id}", round=round_no)
    new = new.model_copy(update={"created_at": new.updated_at})
    screened, refused = admission.screen([new], round=round_no)
    if refused:
        raise DataError(f"the edit is {screened[0].reason}; nothing changed")
    # The new lesson is written before the old one retires: an interruption never loses the lesson.
    # An edit may recreate a lesson stored before (e.g. undoing an edit): that one comes back.
    done = admission.admit(store, [new], round=round_no, why=f"edited from {old.id}")
    store.set_status([old.id], "retired", f"edited into {new.id}", round=round_no)
    status = "active" if new.id in done.active or not done.pending else "candidate (verified next round)"
    console.print(Text(f"new {new.id} ({status} from round {round_no}): edited from {old.id}"))
    console.print(Text(f"old {old.id} ({old.status} -> retired): edited into {new.id}"))


@_command("export")
def memory_export(
    loc: Location,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write here, not to stdout")] = None,
    fmt: Annotated[
        Literal["jsonl", "markdown"],
        typer.Option("--format", help="jsonl: every record, lossless; markdown: a playbook to read"),
    ] = "jsonl",
) -> None:
    """Write the memory out: JSONL for `tutelage memory import`, or a Markdown playbook for people."""
    store = open_location(loc)
    title = loc.resolve().name
    data = export_jsonl(store) if fmt == "jsonl" else playbook_markdown(store.all(), title=title)
    if output is None:
        typer.echo(data, nl=False)  # only the data on stdout, so it can be piped or redirected
        return
    _write(output, data)
    console.print(Text(f"wrote {store.count()} lessons ({fmt}) to {output}"))


def _write(path: Path, data: str) -> None:
    try:
        runfiles.write_text(path, data)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror}") from None


@_command("import")
def memory_import(
    loc: Location,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a JSONL export (`tutelage memory export`)")],
) -> None:
    """Add the lessons of an export through the memory's admission path; a new folder becomes a bare store.

    Provenance, counters and history are kept; the status is decided here, as for the loop's own
    lessons: a lesson quoting one of the run's held-out items is refused (stored retired, with the
    item named), the rest are active at once with ``memory.verify: off``, else candidates the next
    round verifies. Lessons the export had retired or pending are stored as they were. A lesson
    already present is left as it is (a retired one comes back as a candidate)."""
    # Parse everything before opening (or creating) the store: a bad row writes nothing.
    lessons = read_jsonl(file)
    store = open_location(loc, create=True)
    admission, note = _admission(loc)
    round_no = _next_round(store)
    # What the export had in use is admitted afresh; what it had retired or pending stays as it was.
    used = [x for x in lessons if x.status == "active"]
    incoming = [x.with_status("candidate", f"imported from {file.name}", round=round_no) for x in used]
    done = admission.admit(store, incoming, round=round_no, why=f"imported from {file.name}")
    kept = store.add([x for x in lessons if x.status != "active"])
    present = len(lessons) - len(done.written) - done.refused - len(kept)
    parts = [f"added {len(done.written) + len(kept)}", f"already present {present}"]
    if done.refused:
        parts.append(f"refused {done.refused} (quote a held-out item)")
    if done.pending:
        parts.append(f"{len(done.pending)} wait as candidates for the next round's check")
    console.print(Text(", ".join(parts) + f" in {loc}" + (f" ({note})" if note else "")))
