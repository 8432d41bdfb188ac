"""Checkpoints in SQLite: the run folder's ``checkpoints.sqlite`` by default, or ``sqlite:///path``."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

from tutelage.rundir import RunPaths

__all__ = ["SqliteCheckpoints"]


class SqliteCheckpoints:
    """A SQLite file of checkpoints; runs sharing one file keep apart by thread id."""

    def __init__(self, url: str | None, *, paths: RunPaths) -> None:
        self.file = Path(url.removeprefix("sqlite://")) if url else paths.checkpoints
        self.shared = url is not None
        self.thread_id = paths.thread_id

    def exists(self) -> bool:
        """The run has begun storing checkpoints: its own file exists, or a shared file has its rows."""
        if not self.file.is_file() or not self.shared:
            return self.file.is_file()
        with contextlib.closing(sqlite3.connect(self.file)) as conn:
            try:
                row = conn.execute(
                    "SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (self.thread_id,)
                ).fetchone()
            except sqlite3.OperationalError:  # created, but killed before its tables were made
                return False
        return row is not None

    @contextlib.contextmanager
    def open(self) -> Iterator[SqliteSaver]:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.file, check_same_thread=False)
        try:
            yield SqliteSaver(conn)
        finally:
            conn.close()
