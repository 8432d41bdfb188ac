"""The run folder: where every artifact of a run lives (``RunPaths``), claimed and locked per process.

A small module at the bottom of the package: the loop writes through it, and the reports, the memory
commands and the eval harness read a run through it without importing the runner.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

from tutelage import runfiles
from tutelage.config import RunConfig
from tutelage.errors import RunDirError

__all__ = ["RunPaths", "new_run_dir"]


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def memory(self) -> Path:
        return self.root / "memory"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints.sqlite"

    @property
    def thread_id(self) -> str:
        """The run's id, under which its checkpoints are filed (``run_id``, written when it starts).

        A run folder from before run ids were kept filed its checkpoints under ``loop``.
        """
        try:
            return (self.root / "run_id").read_text(encoding="utf-8").strip() or "loop"
        except FileNotFoundError:
            return "loop"

    def claim_id(self) -> str:
        """Give a new run its id: its folder name and a random suffix, unique across machines."""
        run_id = f"{self.root.name}-{uuid.uuid4().hex[:12]}"
        runfiles.write_text(self.root / "run_id", run_id + "\n")
        return run_id

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    def program(self, round_no: int) -> Path:
        return self.root / "programs" / f"round_{round_no}.json"

    def journal(self, round_no: int, name: str) -> Path:
        return self.root / "rounds" / f"round_{round_no}" / f"{name}.jsonl"

    def test_journal(self, when: str) -> Path:
        return self.root / "evals" / f"test_{when}.jsonl"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for this process: a second process gets one clear line instead.

        An advisory ``flock`` on ``.lock``: the kernel releases it when the holder exits, however it
        exits (a SIGKILL leaves no stale lock behind).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise RunDirError(
                    f"{self.root} is in use by another tutelage process (pid {holder}); "
                    "wait for it to finish or stop it, then resume"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def write_config(self, cfg: RunConfig) -> None:
        runfiles.write_text(self.config, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        versions = {"python": platform.python_version()}
        for pkg in (
            "tutelage",
            "dspy",
            "langgraph",
            "chromadb",
            "litellm",
            "xllamacpp",
            "sentence-transformers",
        ):
            try:
                versions[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                continue
        runfiles.write_json(self.root / "versions.json", versions)

    def require(self) -> None:
        if not self.config.is_file():
            raise RunDirError(f"{self.root} is not a tutelage run directory (no config.yaml)")


def new_run_dir(cfg: RunConfig) -> RunPaths:
    """``runs/<name>``, or ``runs/<name>-2``, ``-3``... when that name is taken."""
    base = Path(cfg.runs_dir)
    base.mkdir(parents=True, exist_ok=True)
    candidate, n = base / cfg.name, 1
    while True:
        try:
            candidate.mkdir()  # atomic: two runs started at once never share a directory
            return RunPaths(candidate)
        except FileExistsError:
            n += 1
            candidate = base / f"{cfg.name}-{n}"
