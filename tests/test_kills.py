"""Issue 13: the kill matrix. SIGKILL at the start, the middle and the end of every node of a round
(the failpoints in ``tutelage.failpoints``), then `tutelage resume`: the run ends exactly where an
uninterrupted run ends (scores, decisions, every lesson and its status)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import tutelage
from tutelage.failpoints import ENV
from tutelage.testing import ScriptedServer, last_demo_answer, run_cli, run_fingerprint

from .conftest import scripted_config, teacher_reply

pytestmark = pytest.mark.slow  # 41 killed child processes: about seven minutes on two cores

NODES = [
    "start", "test_before", "sample_batch", "attempt", "grade", "diagnose", "write_lessons",
    "verify_lessons", "curate", "compile", "evaluate_dev", "monitor", "decide", "finetune_sets",
    "record_round", "test_after",
]  # fmt: skip
# Nodes that call a model or write lessons, and the step to die after (write_lessons writes one batch).
MIDDLE = ["start:middle:2", "test_before:middle:2", "attempt:middle:2", "diagnose:middle:2"]
MIDDLE += ["write_lessons:middle:1", "compile:middle:2", "evaluate_dev:middle:2", "monitor:middle:2"]
MIDDLE += ["test_after:middle:2"]
POINTS = (
    [(n, "start") for n in NODES] + [tuple(m.split(":", 1)) for m in MIDDLE] + [(n, "end") for n in NODES]
)
SMALL = ("suite.train_size=40", "suite.dev_size=10", "suite.test_size=12", "loop.rounds=1")
SMALL += ("loop.batch_size=12", "loop.search_size=4", "loop.search_k=[1, 2]", "loop.search_strategies=[0]")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    with ScriptedServer(last_demo_answer) as student, ScriptedServer(teacher_reply) as teacher:
        yield student, teacher


def _config(tmp_path: Path, servers: tuple[ScriptedServer, ScriptedServer]) -> Path:
    student, teacher = servers
    cfg = scripted_config(
        tmp_path,
        student.api_base,
        teacher.api_base,
        *SMALL,
        "memory.embedder.provider=openai",  # the scripted server embeds: no model to load per process
        f"memory.embedder.api_base={student.api_base}",
    )
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, servers: Any) -> dict[str, Any]:
    path = _config(tmp_path_factory.mktemp("straight"), servers)
    result = tutelage.run(tutelage.load_config(path))
    return run_fingerprint(result.run_dir)


@pytest.mark.parametrize(("node", "when"), POINTS, ids=[f"{n}:{w}" for n, w in POINTS])
def test_a_kill_at_any_moment_of_any_node_resumes_to_the_uninterrupted_result(
    tmp_path: Path, servers: Any, uninterrupted: dict[str, Any], node: str, when: str
) -> None:
    path = _config(tmp_path, servers)
    assert run_cli(["run", str(path)], env={ENV: f"{node}:{when}"}) == -9, "the failpoint never fired"
    run_dir = tutelage.load_config(path).run_dir
    tutelage.resume(run_dir)  # in this process: the kill was the child's, the resume is the user's
    assert run_fingerprint(run_dir) == uninterrupted
