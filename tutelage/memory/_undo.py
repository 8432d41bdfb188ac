"""Before-images: what every lesson a round touched looked like before the round touched it.

The store writes a lesson's record here (``null`` for a lesson the round created) before its first
change of the round: status, counters, merges, sources, everything. Rolling the round back puts the
images back, so the next round starts from exactly the memory the rejected round found. The file is
append-only JSONL and written before the store, so a kill between the two loses nothing: an image
without its change restores a record that never changed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tutelage import runfiles
from tutelage.memory.lesson import Lesson

__all__ = ["UndoLog"]


class UndoLog:
    """One round's before-images at ``path`` (one line per lesson, the first change only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._imaged: set[str] = set(self.images())

    def images(self) -> dict[str, Lesson | None]:
        """Lesson id -> its record before the round (None: the round created it)."""
        out: dict[str, Lesson | None] = {}
        if not self.path.is_file():
            return out
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill: its change never reached the store
            if row["id"] not in out:
                before = row.get("before")
                out[row["id"]] = Lesson.model_validate(before) if before is not None else None
        return out

    def before(self, ids: list[str], known: dict[str, Lesson]) -> None:
        """Image every id not imaged yet: its stored record (``known``) or None if it is new."""
        with self._lock:
            fresh = [i for i in dict.fromkeys(ids) if i not in self._imaged]
            if not fresh:
                return
            rows = []
            for i in fresh:
                record = known.get(i)
                image = None if record is None else record.model_dump(mode="json")
                rows.append(json.dumps({"id": i, "before": image}))
            runfiles.append_lines(self.path, rows)
            self._imaged.update(fresh)
