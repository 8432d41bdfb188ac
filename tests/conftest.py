"""Shared fixtures: offline environment, clean DSPy settings, scripted endpoints and small configs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from tutelage.config import RunConfig, load_config  # noqa: E402
from tutelage.testing import HashEmbedder, ScriptedServer, last_demo_answer  # noqa: E402

TEACHER_REPLY = (
    "DIAGNOSIS: The student copied a similar example.\nSTRATEGY: Look at the action the customer asks for."
)


@pytest.fixture(autouse=True)
def _clean_dspy() -> Iterator[None]:
    """No cached answer may make a test pass, and no test leaks settings into the next."""
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    yield
    dspy.settings.configure(lm=None, adapter=None)


def shared_benchmarks() -> Path:
    """Where the offline benchmark data lives: ``$TUTELAGE_BENCHMARKS``, else ``shared/benchmarks`` beside
    any folder above this checkout (``../shared`` on the reference machine, wherever CI clones it), else
    the reference machine's ``/work/shared/benchmarks``."""
    if env := os.environ.get("TUTELAGE_BENCHMARKS"):
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "benchmarks").is_dir():
            return parent / "shared" / "benchmarks"
    return Path("/work/shared/benchmarks")


def teacher_reply(request: dict[str, Any]) -> str:
    return TEACHER_REPLY


@pytest.fixture
def student_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(last_demo_answer, model="student") as server:
        yield server


@pytest.fixture
def teacher_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(teacher_reply, model="teacher") as server:
        yield server


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


def scripted_config(tmp_path: Path, student: str, teacher: str, *extra: str) -> RunConfig:
    """A small two-round Banking77 run against scripted endpoints."""
    return load_config(
        None,
        [
            f"runs_dir={tmp_path / 'runs'}",
            "name=scripted",
            "student.provider=openai",
            f"student.api_base={student}",
            "student.model=student",
            "teacher.provider=openai",
            f"teacher.api_base={teacher}",
            "teacher.model=teacher",
            "suite.train_size=120",
            "suite.dev_size=20",
            "suite.test_size=40",
            "loop.rounds=2",
            "loop.batch_size=30",
            "loop.search_size=6",
            "loop.search_k=[1, 2]",
            "loop.search_policies=null",  # the grid above, not the quickstart's two policies
            *extra,
        ],
    )
