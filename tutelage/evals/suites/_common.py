"""Helpers every loader shares: finding its data folder, reading JSON files, building its grader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tutelage.config import SuiteConfig
from tutelage.errors import ConfigError, DataError, TutelageError
from tutelage.evals.graders import Grader, get_grader
from tutelage.evals.graders.judge import JudgeGrader

__all__ = ["GENERIC_DEMO", "data_folder", "grader_for", "read_json", "read_jsonl"]

GENERIC_DEMO = (
    "Task: What is the capital of Australia?\nStudent answer: Sydney\nCorrect answer: Canberra",
    "DIAGNOSIS: The student answered with the best-known city instead of the seat of government.\n"
    "STRATEGY: When asked for a capital, recall the seat of government; it is often not the largest city.\n"
    "EXAMPLE: What is the capital of Canada? => Ottawa\n"
    "EXAMPLE: What is the capital of Turkey? => Ankara",
)


def data_folder(cfg: SuiteConfig, name: str, marker: str, contents: str) -> Path:
    """The folder of suite ``name`` under ``suite.data_dir``: ``data_dir/name`` or ``data_dir`` itself.

    ``marker`` is a file or folder the right one holds; ``contents`` says in words what it must hold.
    """
    if not cfg.data_dir:
        raise DataError(
            f"suite {name!r} reads its data from disk: set suite.data_dir to a folder holding {contents} "
            f"(for example --set suite.data_dir=../shared/benchmarks)"
        )
    base = Path(cfg.data_dir).expanduser()
    for folder in (base / name, base):
        if (folder / marker).exists():
            return folder
    raise DataError(f"suite {name!r}: {base} does not hold {contents} (looked for {base / name / marker})")


def read_json(path: Path) -> Any:
    """A JSON file's content; a missing or malformed file is a ``DataError`` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; a bad line is a ``DataError`` naming it."""
    try:
        # utf-8-sig: a byte-order mark is read past, as the CSV reader does.
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    rows = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
        rows.append((line_no, row))
    return rows


def grader_for(cfg: SuiteConfig, default: str, **options: Any) -> Grader:
    """The suite's grader: ``suite.metric`` when set, else ``default`` with the suite's options."""
    name = cfg.metric or default
    if name == "judge":  # bound to the teacher's LM once the run or eval opens its endpoint
        return JudgeGrader(rubric=cfg.rubric or "", unbound=True)
    try:
        return get_grader(name, **(options if name == default else {}))
    except TutelageError:
        raise
    except (ValueError, TypeError, ImportError, AttributeError) as exc:
        raise ConfigError(f"suite.metric {name!r}: {exc}") from None
