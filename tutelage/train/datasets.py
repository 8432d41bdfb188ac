"""Fine-tune data sets: the SFT and preference files each round writes, their union, strict format checks.

Each round writes two JSONL files under ``finetune/round_N/`` of the run directory:

- ``sft.jsonl`` in the OpenAI chat fine-tuning format, which is also TRL's conversational
  language-modeling format (SFTTrainer, Unsloth): ``{"messages": [system, user, assistant]}``. Rows are
  the round's example lessons that were active when it ended (a failure's gold example, labelled
  ``verified_example`` only when ``memory.verify`` checked it, else ``gold_example``; the teacher's
  worked and synthetic examples), and the student's own correct answers of the round.
- ``preference.jsonl`` in TRL's conversational preference format (DPOTrainer): ``{"prompt": [system,
  user], "chosen": [assistant: the gold answer], "rejected": [assistant: the student's wrong answer]}``,
  from the round's failures the teacher diagnosed. OpenAI's own DPO upload format is a different
  shape (``input``, ``preferred_output``, ``non_preferred_output``).

Provenance rides in one extra top-level key, ``metadata``: a flat object of strings (source, task_id,
round, lesson_id, teacher_model; lesson_id is "" when no lesson made the row). Why that key and shape:
TRL reads only the keys of its formats (``is_conversational`` and ``apply_chat_template`` look at
messages/prompt/chosen/rejected/completion/label and ignore the rest; the Trainer drops unused
columns), and one flat string type per field keeps the Arrow schema of ``datasets`` uniform. OpenAI's
published validation script checks the keys *inside* each message (an extra one there is an error)
and never the top-level keys; OpenPipe, which takes the OpenAI format, documents an optional
top-level ``metadata`` object of strings. OpenAI does not document whether its server accepts an extra
top-level key, so ``export_finetune(..., metadata=False)`` (``--no-metadata``) writes the bare format.

Every round file keeps four rules: only that round's journals and lessons are read (old teacher output
is never reused as training signal); a row for a held-out task, or one whose text the leakage guard
flags, is dropped; one row per prompt and answer; rewriting a round gives the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from tutelage import runfiles
from tutelage.agents.teacher import Diagnosis
from tutelage.errors import DataError, RunDirError
from tutelage.evals.harness import Attempt, load_journal
from tutelage.evals.suites import Suite, Task
from tutelage.memory._leakage import LeakageGuard
from tutelage.memory.lesson import DEMO_KINDS
from tutelage.memory.query import LessonFilter
from tutelage.memory.store import LessonStore
from tutelage.rundir import RunPaths

__all__ = [
    "export_finetune",
    "finetune_dir",
    "held_out",
    "training_rows",
    "validate_preference_row",
    "validate_sft_row",
    "write_round_sets",
]

META = "metadata"
PROVENANCE = ("source", "task_id", "round", "lesson_id", "teacher_model")
SOURCES = (
    "gold_example",  # a failed train item with its gold answer (memory.verify=off: not checked)
    "verified_example",  # the same, after its lesson passed memory.verify
    "worked_example",  # the teacher's worked solution of a failure (reaches the gold answer)
    "synthetic_example",  # an input the teacher wrote near the confusion, with its answer
    "student_trace",
    "teacher_correction",
)
Row = dict[str, Any]
_ROUND_DIR = re.compile(r"round_(\d+)")


def finetune_dir(paths: RunPaths, round_no: int) -> Path:
    return paths.root / "finetune" / f"round_{round_no}"


def held_out(suite: Suite) -> frozenset[str]:
    """Ids no training row may come from: the whole test file, the scored test slice and the dev split."""
    return frozenset(t.id for t in [*suite.guarded(), *suite.test, *suite.dev])


# -- format checks -------------------------------------------------------------------------------


def _messages(value: object, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: expected a non-empty list of messages")
    for i, message in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ValueError(f"{at}: expected an object with exactly the keys role and content")
        if message["role"] not in ("system", "user", "assistant"):
            raise ValueError(f"{at}.role: {message['role']!r} is not system, user or assistant")
        if not isinstance(message["content"], str) or not message["content"].strip():
            raise ValueError(f"{at}.content: expected a non-empty string")
    return value


def _conversation(value: object, where: str, *, last: str) -> None:
    """An optional system message first, then user and assistant turns alternating, ending with ``last``."""
    roles = [m["role"] for m in _messages(value, where)]
    start = 1 if roles[0] == "system" else 0
    if start == len(roles):
        raise ValueError(f"{where}: a system message and no turn after it")
    for i in range(start, len(roles)):
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if roles[i] != expected:
            raise ValueError(f"{where}[{i}].role: expected {expected!r}, got {roles[i]!r}")
    if roles[-1] != last:
        raise ValueError(f"{where}: the last message must be the {last}'s, not the {roles[-1]}'s")


def _answer(value: object, where: str) -> str:
    if not isinstance(value, list) or len(value) != 1:
        raise ValueError(f"{where}: expected exactly one assistant message")
    message = _messages(value, where)[0]
    if message["role"] != "assistant":
        raise ValueError(f"{where}[0].role: expected 'assistant', got {message['role']!r}")
    return message["content"]


def _row(row: object, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ValueError("expected a JSON object")
    if missing := [k for k in keys if k not in row]:
        raise ValueError(f"missing key {missing[0]!r}")
    if extra := sorted(set(row) - {*keys, META}):
        raise ValueError(f"unexpected key {extra[0]!r}")
    if META in row:
        meta = row[META]
        if not isinstance(meta, dict) or sorted(meta) != sorted(PROVENANCE):
            raise ValueError(f"{META}: expected exactly the keys {', '.join(PROVENANCE)}")
        if not all(isinstance(v, str) for v in meta.values()):
            raise ValueError(f"{META}: every value must be a string")
        if meta["source"] not in SOURCES:
            raise ValueError(f"{META}.source: {meta['source']!r} is not one of {', '.join(SOURCES)}")
    return row


def validate_sft_row(row: object) -> None:
    """Raise ``ValueError`` unless ``row`` is one SFT example: ``messages`` (an optional system message,
    then user and assistant turns alternating, the assistant's last; non-empty string contents) and an
    optional ``metadata`` provenance object."""
    _conversation(_row(row, ("messages",))["messages"], "messages", last="assistant")


def validate_preference_row(row: object) -> None:
    """Raise ``ValueError`` unless ``row`` is one preference pair: a ``prompt`` that ends with a user
    turn, ``chosen`` and ``rejected`` single assistant turns with different answers, optional ``metadata``."""
    checked = _row(row, ("prompt", "chosen", "rejected"))
    _conversation(checked["prompt"], "prompt", last="user")
    if _answer(checked["chosen"], "chosen") == _answer(checked["rejected"], "rejected"):
        raise ValueError("chosen and rejected are the same answer")


# -- writing a round -----------------------------------------------------------------------------


def _key(row: Row) -> str:
    """What makes two rows duplicates: everything but the provenance."""
    return json.dumps({k: v for k, v in row.items() if k != META}, sort_keys=True, ensure_ascii=False)


def _texts(row: Row) -> list[str]:
    """The user and assistant contents of a row (what could quote a test item)."""
    turns = [turn for key in ("messages", "prompt", "chosen", "rejected") for turn in row.get(key, [])]
    return [m["content"] for m in turns if m["role"] != "system"]


class _Rows:
    """One file's rows in order: held-out and leaking rows dropped first, then duplicates."""

    def __init__(self, guard: LeakageGuard, held_out: Collection[str]) -> None:
        self.guard, self.held_out = guard, held_out
        self.rows: list[Row] = []
        self.seen: set[str] = set()
        self.leakage = self.duplicates = 0

    def offer(self, row: Row) -> None:
        if row[META]["task_id"] in self.held_out or self.guard.check(*_texts(row)) is not None:
            self.leakage += 1
        elif (key := _key(row)) in self.seen:
            self.duplicates += 1
        else:
            self.seen.add(key)
            self.rows.append(row)


def _provenance(source: str, task_id: str, round_no: int, lesson_id: str, teacher: str) -> dict[str, str]:
    return dict(zip(PROVENANCE, (source, task_id, str(round_no), lesson_id, teacher), strict=True))


def _turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _write_jsonl(path: Path, rows: Iterable[Row]) -> None:
    """Write rows atomically (a temp file, then a rename), with LF line ends on every platform.

    ASCII JSON: a raw U+2028 or U+0085 inside a string would end the line for some JSONL readers.
    """
    runfiles.write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode("ascii"))


def write_round_sets(
    paths: RunPaths,
    round_no: int,
    *,
    tasks: Mapping[str, Task],
    memory: LessonStore,
    guard: LeakageGuard,
    instructions: str,
    held_out_ids: Collection[str],
    teacher_model: str,
    verified: bool = False,
) -> dict[str, int]:
    """Write ``finetune/round_N/{sft,preference}.jsonl`` from round N's journals and lessons only.

    Call it at the end of the round, after curation. SFT rows: the example lessons written in round N
    (from a task the student failed this round) that were active when it ended, then the attempts of
    round N that scored 1.0. Preference rows: round N's failed attempts with a teacher diagnosis (no
    teacher error), the gold answer chosen and the student's answer rejected; an empty or errored
    answer, or one equal to the gold answer, makes no pair. ``instructions`` is every row's system
    message: the suite's instruction keeps one system prompt across rounds.

    Returns:
        Rows written (``sft``, ``preference``) and rows dropped (``duplicates``, ``leakage``: a
        held-out task or a text the guard flags; ``skipped``: no usable answer or unknown task).

    Example:
        >>> write_round_sets(ctx.paths, r, tasks=ctx.tasks, memory=ctx.memory, guard=ctx.guard,
        ...     instructions=ctx.suite.instruction, held_out_ids=held_out(ctx.suite),
        ...     teacher_model=ctx.config.teacher.model)  # doctest: +SKIP
        {'sft': 12, 'preference': 9, 'duplicates': 1, 'leakage': 0, 'skipped': 2}
    """
    system = instructions.strip()
    if not system:
        raise ValueError("fine-tune rows need the student's instructions as their system message")
    held = frozenset(held_out_ids)
    attempts: dict[str, Attempt] = load_journal(paths.journal(round_no, "attempts"), Attempt)
    diagnoses: dict[str, Diagnosis] = load_journal(paths.journal(round_no, "teacher"), Diagnosis)
    sft, preference = _Rows(guard, held), _Rows(guard, held)
    skipped = 0

    # Active at the end of round N (a later retirement does not change this round's file), written in
    # round N from one of its failures: an imported or edited lesson is not this round's signal.
    lessons = memory.all(LessonFilter(kind=DEMO_KINDS, status=None, as_of_round=round_no))
    label = {
        "example": "verified_example" if verified else "gold_example",
        "worked": "worked_example",
        "synthetic": "synthetic_example",
    }
    for lesson in lessons:
        source = lesson.provenance.source_task_ids[0] if lesson.provenance.source_task_ids else ""
        failed_here = source in attempts and attempts[source].score < 1.0
        if lesson.round != round_no or lesson.active_from != round_no or not failed_here:
            continue
        if not lesson.text.strip() or not lesson.reply.strip():
            skipped += 1
            continue
        teacher = lesson.provenance.teacher_model or teacher_model
        messages = [_turn("system", system), _turn("user", lesson.text), _turn("assistant", lesson.reply)]
        meta = _provenance(label[lesson.kind], source, round_no, lesson.id, teacher)
        if lesson.provenance.step is not None:  # the agent's step the teacher wrote it about
            meta["step"] = str(lesson.provenance.step)
        sft.offer({"messages": messages, META: meta})

    for attempt in sorted(attempts.values(), key=lambda a: a.task_id):
        task, answer = tasks.get(attempt.task_id), attempt.answer.strip()
        if attempt.score == 1.0:
            if task is None or attempt.error or not answer:
                skipped += 1
                continue
            messages = [_turn("system", system), _turn("user", task.input), _turn("assistant", answer)]
            meta = _provenance("student_trace", task.id, round_no, "", teacher_model)
            sft.offer({"messages": messages, META: meta})
        elif attempt.task_id in diagnoses:
            diag = diagnoses[attempt.task_id]
            if task is None or diag.error or attempt.error or not answer or answer == task.answer.strip():
                skipped += 1
                continue
            meta = _provenance("teacher_correction", task.id, round_no, "", teacher_model)
            preference.offer(
                {
                    "prompt": [_turn("system", system), _turn("user", task.input)],
                    "chosen": [_turn("assistant", task.answer.strip())],
                    "rejected": [_turn("assistant", answer)],
                    META: meta,
                }
            )

    for row in sft.rows:
        validate_sft_row(row)
    for row in preference.rows:
        validate_preference_row(row)
    out = finetune_dir(paths, round_no)
    _write_jsonl(out / "sft.jsonl", sft.rows)
    _write_jsonl(out / "preference.jsonl", preference.rows)
    return {
        "sft": len(sft.rows),
        "preference": len(preference.rows),
        "duplicates": sft.duplicates + preference.duplicates,
        "leakage": sft.leakage + preference.leakage,
        "skipped": skipped,
    }


# -- the union of all rounds ---------------------------------------------------------------------


def _read_rows(path: Path, validate: Callable[[object], None]) -> list[Row]:
    """The rows of one file, each validated; the first bad one fails with ``file:line``."""
    rows: list[Row] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    # JSONL lines end at LF only (str.splitlines would also split at U+2028 inside a string).
    lines = text.removesuffix("\n").split("\n") if text else []
    for line_no, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
            validate(row)
        except ValueError as exc:  # json.JSONDecodeError is one
            problem = f"not JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise DataError(f"{path}:{line_no}: {problem}") from None
        rows.append(row)
    return rows


def _held_out(paths: RunPaths) -> tuple[LeakageGuard, frozenset[str]]:
    """The run's own leakage guard (as the loop builds it) and held-out ids, from its config."""
    from tutelage.config import load_config
    from tutelage.evals.suites import load_suite

    cfg = load_config(paths.config)
    suite = load_suite(cfg.suite)
    guard = LeakageGuard(
        ((t.id, t.input) for t in suite.guarded()),
        n=cfg.memory.leakage_ngram,
        threshold=cfg.memory.leakage_threshold,
    )
    return guard, held_out(suite)


def export_finetune(run_dir: Path, out_dir: Path | None = None, *, metadata: bool = True) -> dict[str, int]:
    """Write the union of every round's fine-tune sets to ``out_dir/{sft,preference}.jsonl``.

    Rounds are read in order and a row equal to an earlier one (provenance aside) is dropped, so each
    row keeps the provenance of the round that first produced it. Every row is validated and checked
    again against the run's held-out items; a bad or leaking row fails with ``file:line`` and nothing
    is written. ``metadata=False`` leaves provenance out (the bare OpenAI/TRL format).

    Returns:
        ``rounds`` read, rows written (``sft``, ``preference``), ``duplicates`` dropped.

    Example:
        >>> export_finetune(Path("runs/quickstart"))  # doctest: +SKIP
        {'rounds': 3, 'sft': 41, 'preference': 27, 'duplicates': 5}
    """
    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        raise RunDirError(f"{paths.root} does not exist")
    paths.require()
    rounds = sorted(
        (int(m.group(1)), d)
        for d in (paths.root / "finetune").glob("round_*")
        if d.is_dir() and (m := _ROUND_DIR.fullmatch(d.name))
    )
    if not rounds:
        raise RunDirError(
            f"{paths.root} has no fine-tune sets yet (finetune/round_N/ is written as rounds end)"
        )
    guard, held = _held_out(paths)
    duplicates = 0
    union: dict[str, list[Row]] = {}
    for name, validate in (("sft", validate_sft_row), ("preference", validate_preference_row)):
        seen: set[str] = set()
        union[name] = []
        for _, folder in rounds:
            path = folder / f"{name}.jsonl"
            if not path.is_file():
                continue
            for line_no, row in enumerate(_read_rows(path, validate), start=1):
                task_id = row.get(META, {}).get("task_id", "")
                if task_id in held:
                    raise DataError(f"{path}:{line_no}: a row for held-out item {task_id}")
                if (leak := guard.check(*_texts(row))) is not None:
                    raise DataError(f"{path}:{line_no}: the row quotes held-out item {leak.task_id}")
                if (key := _key(row)) in seen:
                    duplicates += 1
                    continue
                seen.add(key)
                union[name].append(row if metadata else {k: v for k, v in row.items() if k != META})
    out = Path(out_dir) if out_dir is not None else paths.root / "finetune" / "all"
    for name, rows in union.items():
        _write_jsonl(out / f"{name}.jsonl", rows)
    sizes = {name: len(rows) for name, rows in union.items()}
    return {
        "rounds": len(rounds),
        "sft": sizes["sft"],
        "preference": sizes["preference"],
        "duplicates": duplicates,
    }


# -- what the weights are trained on -------------------------------------------------------------

GOLD_SOURCES = frozenset({"gold_example", "verified_example", "worked_example", "synthetic_example"})


def training_rows(
    paths: RunPaths,
    rounds: Iterable[int],
    *,
    kinds: Collection[str],
    instructions: str,
    prompt: Callable[[str, str], list[dict[str, Any]]] | None = None,
) -> tuple[list[Row], dict[str, int]]:
    """The prompt-completion rows a round's adapter is trained on, from the SFT sets of ``rounds``.

    ``kinds``: ``gold`` (gold, verified, worked and synthetic examples), ``correct`` (the student's
    correct answers: made with no lesson shown, or, with ``prompt``, any of them), ``context`` (with
    bare prompts, its correct answers made *with* lessons shown: context distillation, the answer
    becomes the target of the prompt without them).

    ``prompt(task, task_id)`` renders a row's prompt messages: the program's own request with what it
    retrieves (``StudentProgram.request``, the row's own lessons hidden), so the weights learn to
    answer the way the student is asked at test time. Without it every prompt is ``instructions`` as
    system message and the task as user turn, what the student sends with no lesson retrieved. The
    rows were leakage-checked when their round wrote them; a prompt seen twice keeps its first answer.

    ``preference`` (alone) gives DPO rows instead, from the preference sets: the prompt rendered the
    same way, the gold answer ``chosen`` and the student's wrong answer ``rejected``.

    Returns:
        The rows, and how many of each kind were taken.
    """
    if "preference" in kinds:
        if set(kinds) != {"preference"}:
            raise ValueError("preference rows (DPO) do not mix with gold, correct or context rows")
        return _preference_rows(paths, rounds, instructions=instructions, prompt=prompt)
    rows: list[Row] = []
    counts = dict.fromkeys(("gold", "correct", "context"), 0)
    seen: set[str] = set()
    for round_no in sorted(set(rounds)):
        path = finetune_dir(paths, round_no) / "sft.jsonl"
        if not path.is_file():
            continue
        attempts: dict[str, Attempt] = load_journal(paths.journal(round_no, "attempts"), Attempt)
        for row in _read_rows(path, validate_sft_row):
            meta = row.get(META, {})
            if meta.get("source") in GOLD_SOURCES:
                kind = "gold"
            elif meta.get("source") == "student_trace":
                shown = attempts.get(meta.get("task_id", ""))
                # with lessons shown, a bare prompt distils them (context); a retrieved one shows them
                lessons_shown = shown is not None and bool(shown.lesson_ids)
                kind = "context" if lessons_shown and prompt is None else "correct"
            else:
                continue
            user, answer = row["messages"][-2]["content"], row["messages"][-1]["content"]
            if kind not in kinds or user in seen:
                continue
            seen.add(user)
            counts[kind] += 1
            bare = [_turn("system", instructions.strip()), _turn("user", user)]
            rows.append(
                {
                    "prompt": prompt(user, meta.get("task_id", "")) if prompt else bare,
                    "completion": [_turn("assistant", answer)],
                }
            )
    return rows, counts


def _preference_rows(
    paths: RunPaths,
    rounds: Iterable[int],
    *,
    instructions: str,
    prompt: Callable[[str, str], list[dict[str, Any]]] | None,
) -> tuple[list[Row], dict[str, int]]:
    rows: list[Row] = []
    seen: set[str] = set()
    for round_no in sorted(set(rounds)):
        path = finetune_dir(paths, round_no) / "preference.jsonl"
        if not path.is_file():
            continue
        for row in _read_rows(path, validate_preference_row):
            user, task_id = row["prompt"][-1]["content"], row.get(META, {}).get("task_id", "")
            if user in seen:
                continue
            seen.add(user)
            bare = [_turn("system", instructions.strip()), _turn("user", user)]
            rows.append(
                {
                    "prompt": prompt(user, task_id) if prompt else bare,
                    "chosen": row["chosen"],
                    "rejected": row["rejected"],
                }
            )
    return rows, {"preference": len(rows)}
