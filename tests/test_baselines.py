"""Baseline students: what each one sends the model, and that the whole-train store is built once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tutelage.agents import StudentProgram, make_solver
from tutelage.backends import build_lm
from tutelage.config import RoleConfig, SuiteConfig
from tutelage.errors import ConfigError
from tutelage.evals.baselines import build_baseline, train_store_path
from tutelage.evals.harness import accuracy, run_tasks
from tutelage.evals.suites import Suite, Task, load_suite
from tutelage.testing import HashEmbedder, ScriptedServer, last_demo_answer


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(SuiteConfig(train_size=300, dev_size=10, test_size=20))


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(last_demo_answer, model="student") as srv:
        yield srv


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.texts += len(texts)
        return super().embed(texts)


def ask(server: ScriptedServer, program: StudentProgram, suite: Suite, tasks: list[Task]) -> list[Any]:
    """Run ``program`` on ``tasks`` against the scripted server; return the chat requests it sent."""
    lm = build_lm(RoleConfig(provider="openai", model="student", api_base=server.api_base), server.api_base)
    before = len(server.chat_requests())
    run_tasks(make_solver(program, lm=lm, metric=suite.metric), tasks, concurrency=1)
    return server.chat_requests()[before:]


def demo_pairs(request: dict[str, Any]) -> list[tuple[str, str]]:
    """The (user, assistant) demo turns of a request: every turn between the system and the question."""
    turns = request["messages"][1:-1]
    users, answers = turns[0::2], turns[1::2]
    assert [m["role"] for m in users] == ["user"] * len(users)
    assert [m["role"] for m in answers] == ["assistant"] * len(answers)
    return [(u["content"], a["content"]) for u, a in zip(users, answers, strict=True)]


def test_zero_shot_sends_the_instruction_and_the_question_only(server: ScriptedServer, suite: Suite) -> None:
    [request] = ask(server, build_baseline("zero-shot", suite), suite, suite.test[:1])
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][0]["content"].startswith(suite.instruction.split(":")[0])
    assert request["messages"][1]["content"] == suite.test[0].input


def test_fewshot_random_shows_eight_seeded_train_items(
    server: ScriptedServer, suite: Suite, tmp_path: Path
) -> None:
    train = {(t.input, t.answer) for t in suite.train}
    tasks = suite.test[:3]
    seed0 = [
        demo_pairs(r) for r in ask(server, build_baseline("fewshot-random", suite, seed=0), suite, tasks)
    ]
    again = [
        demo_pairs(r) for r in ask(server, build_baseline("fewshot-random", suite, seed=0), suite, tasks)
    ]
    seed1 = [
        demo_pairs(r) for r in ask(server, build_baseline("fewshot-random", suite, seed=1), suite, tasks)
    ]
    assert all(len(d) == 8 for d in [*seed0, *seed1])
    assert all(set(d) <= train for d in [*seed0, *seed1])
    assert seed0[0] == seed0[1] == seed0[2]  # fixed demos: the same for every task
    assert seed0 == again
    assert set(seed0[0]) != set(seed1[0])

    program = build_baseline("fewshot-random", suite, seed=0)
    program.save_json(tmp_path / "fewshot.json")
    reloaded = StudentProgram.load_json(tmp_path / "fewshot.json", memory=None)
    assert [demo_pairs(r) for r in ask(server, reloaded, suite, tasks[:1])] == seed0[:1]


def test_retrieval_train_shows_the_nearest_train_items(
    server: ScriptedServer, suite: Suite, tmp_path: Path
) -> None:
    embedder = HashEmbedder()
    program = build_baseline("retrieval-train", suite, embedder=embedder, store_dir=tmp_path)
    assert program.memory is not None and program.memory.count() == len({t.input for t in suite.train})
    sources = suite.train[:: len(suite.train) // 20][:20]
    near = [Task(f"near-{t.id}", f"Hello, {t.input}", t.answer) for t in sources]
    requests = ask(server, program, suite, near)
    assert all(len(demo_pairs(r)) == 8 for r in requests)
    # The most similar item is the last demo turn, nearest the question: a retrieval student that
    # repeats it gets a near-duplicate of a train item right.
    lm = build_lm(RoleConfig(provider="openai", model="student", api_base=server.api_base), server.api_base)
    attempts = run_tasks(make_solver(program, lm=lm, metric=suite.metric), near, concurrency=1)
    assert accuracy(attempts).accuracy >= 0.9
    zero = run_tasks(
        make_solver(build_baseline("zero-shot", suite), lm=lm, metric=suite.metric), near, concurrency=1
    )
    assert accuracy(zero).accuracy < 0.2


def test_retrieval_train_store_is_built_once_and_reused(
    server: ScriptedServer, suite: Suite, tmp_path: Path
) -> None:
    first = CountingEmbedder()
    build_baseline("retrieval-train", suite, embedder=first, store_dir=tmp_path)
    assert first.texts >= len({t.input for t in suite.train})
    second = CountingEmbedder()
    program = build_baseline("retrieval-train", suite, embedder=second, store_dir=tmp_path)
    assert second.texts == 0
    assert [p.name for p in tmp_path.iterdir()] == [train_store_path(suite, second, tmp_path).name]
    [request] = ask(server, program, suite, suite.test[:1])
    assert len(demo_pairs(request)) == 8

    other = load_suite(SuiteConfig(train_size=200, dev_size=10, test_size=20))
    build_baseline("retrieval-train", other, embedder=CountingEmbedder(), store_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2  # another train split gets a store of its own


def test_unknown_baseline_and_missing_store_settings_are_config_errors(suite: Suite) -> None:
    with pytest.raises(ConfigError, match="unknown baseline"):
        build_baseline("oracle", suite)
    with pytest.raises(ConfigError, match="embedder"):
        build_baseline("retrieval-train", suite)
