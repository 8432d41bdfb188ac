"""Helpers for whole-run tests: run the CLI in a child process and fingerprint what a run ended with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_fingerprint(run_dir: str | Path, embedder: Any = None) -> dict[str, Any]:
    """What a run ended with, to compare a killed-and-resumed run with an uninterrupted one: the test
    and dev scores, each round's decision and lesson count, and every lesson's id and status."""
    from tutelage.config import load_config
    from tutelage.memory.location import open_run_memory
    from tutelage.rundir import RunPaths

    paths = RunPaths(Path(run_dir))
    metrics = json.loads(paths.metrics.read_text())
    memory = open_run_memory(paths, load_config(paths.config), embedder)
    return {
        "test": metrics["test_accuracy"],
        "dev": metrics["dev_accuracy"],
        "rounds": [
            (r["round"], r.get("dev_accuracy"), r.get("decision"), r["lessons"]) for r in metrics["rounds"]
        ],
        "lessons": sorted((x.id, x.status) for x in memory.all()),
    }


def run_cli(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    kill_after: float | None = None,
    timeout: float = 600.0,
) -> int:
    """Run ``python -m tutelage.cli ARGS`` in a child process; with ``kill_after``, SIGKILL it after
    that many seconds. Returns its exit status (``-9`` when it was killed)."""
    import os
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "tutelage.cli", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=kill_after if kill_after is not None else timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode
