"""Every file tutelage writes into a run folder (or an eval folder) is written here, and only here.

Today a run folder is a local folder; an object-store backend replaces this one module. Whole files
are replaced atomically (a kill leaves the old file or the new one, never half of one); journals and
ledgers grow a line at a time (a kill may tear only the last line, which their readers skip).

What libraries write themselves is not routed here: LangGraph's SQLite checkpoints, Chroma's
embedded store, and a trainer's saved weights (``save_pretrained``); an object-store backend would
stage those in a local folder and upload it.

Example:
    >>> from tutelage import runfiles
    >>> runfiles.write_json(paths.metrics, {"rounds": []})  # doctest: +SKIP
    >>> runfiles.append_lines(paths.ledger, ['{"role": "student"}'])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "Appender",
    "append_lines",
    "appending",
    "child_log",
    "copy_file",
    "copy_tree",
    "remove_tree",
    "write_bytes",
    "write_json",
    "write_text",
]


def _landed(path: Path) -> Path:
    """Every write ends here with the path it wrote (the one place a backend or a test observes)."""
    return path


def write_bytes(path: Path, data: bytes, *, fsync: bool = False) -> Path:
    """Replace ``path`` with ``data`` atomically (a temporary file beside it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("wb") as sink:
        sink.write(data)
        if fsync:
            sink.flush()
            os.fsync(sink.fileno())
    os.replace(tmp, path)
    return _landed(path)


def write_text(path: Path, text: str, *, fsync: bool = False) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_json(path: Path, obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Replace ``path`` with ``obj`` as JSON atomically."""
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys))


def _torn(path: Path) -> bool:
    """The file ends in a line a kill tore off (no newline): the next line must not be glued to it."""
    try:
        with path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except (FileNotFoundError, OSError):  # missing, or empty (seek before the start)
        return False


def append_lines(path: Path, lines: Iterable[str]) -> Path:
    """Append ``lines`` (each without its newline) to ``path``, creating it and its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = _torn(path)
    with path.open("a", encoding="utf-8") as sink:
        sink.write(("\n" if torn else "") + "".join(f"{line}\n" for line in lines))
    return _landed(path)


class Appender:
    """A journal held open while a phase appends to it: each ``line`` is written and flushed."""

    def __init__(self, sink: IO[str]) -> None:
        self._sink = sink

    def line(self, text: str) -> None:
        self._sink.write(text + "\n")
        self._sink.flush()


@contextlib.contextmanager
def appending(path: Path) -> Iterator[Appender]:
    """Hold ``path`` open for appending lines (a phase's journal), creating it and its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = _torn(path)
    with path.open("a", encoding="utf-8") as sink:
        if torn:
            sink.write("\n")
        _landed(path)
        yield Appender(sink)


def child_log(path: Path) -> IO[bytes]:
    """A file a child process (a model server) writes its output into; the caller closes it once the
    child has it. (An object-store backend would upload it when the run ends.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = path.open("ab")
    _landed(path)
    return sink


def copy_file(source: Path, dest: Path) -> Path:
    """Copy one file into the folder (its metadata too)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return _landed(Path(shutil.copy2(source, dest)))


def copy_tree(source: Path, dest: Path) -> Path:
    """Copy a folder into the folder (merging into what is there)."""
    copied = Path(shutil.copytree(source, dest, dirs_exist_ok=True))
    for path in copied.rglob("*"):
        if path.is_file():
            _landed(path)
    return copied


def remove_tree(path: Path) -> None:
    """Remove a folder and everything in it (a run that failed before it began, an old eval)."""
    shutil.rmtree(path, ignore_errors=True)
