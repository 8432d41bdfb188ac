"""Contract tests for the lesson store, run over every registered store (``memory.store.STORES``) and a
real `chroma run` server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tutelage.config import MemoryConfig
from tutelage.errors import ConfigError, EndpointError
from tutelage.memory import (
    Lesson,
    LessonFilter,
    LessonStore,
    OpenAIEmbedder,
    export_jsonl,
    open_store,
    playbook_markdown,
    read_jsonl,
)
from tutelage.memory._curate import rollback_round
from tutelage.memory._undo import UndoLog
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.memory.store import STORES
from tutelage.testing import ChromaServer, HashEmbedder, ScriptedServer
from tutelage.tools import memory_search_tool

StoreFactory = Callable[..., LessonStore]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with ChromaServer(tmp_path_factory.mktemp("chroma-server")) as server:
        yield server


@pytest.fixture(params=[*sorted(STORES), "chroma-server"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory of stores of one registered kind; the same ``name`` reopens the same store."""

    def make(name: str = "main", embedder: HashEmbedder | None = None) -> LessonStore:
        embedder = embedder or HashEmbedder()
        if request.param == "chroma-server":
            server: ChromaServer = request.getfixturevalue("chroma_server")
            cfg = MemoryConfig(url=server.url, collection=f"{name}-{tmp_path.name}")
            return open_store(cfg, path=None, embedder=embedder)
        return open_store(MemoryConfig(store=request.param), path=tmp_path / name, embedder=embedder)

    return make


def _example(text: str, answer: str, round_no: int = 1, status: str = "active") -> Lesson:
    lesson = Lesson.make(
        kind="example",
        text=text,
        answer=answer,
        round=round_no,
        source_task_id=f"train-{uuid.uuid4().hex[:4]}",
        teacher_model="t",
        scope="banking77",
    )
    return lesson.with_status("active", "test", round=round_no) if status == "active" else lesson


def _strategy(text: str, round_no: int = 1) -> Lesson:
    lesson = Lesson.make(kind="strategy", text=text, round=round_no, teacher_model="t", scope="banking77")
    return lesson.with_status("active", "test", round=round_no)


def test_writing_the_same_lesson_twice_is_a_no_op(make_store: StoreFactory) -> None:
    store = make_store()
    lesson = _example("my card has not arrived yet", "card_arrival")
    assert store.add([lesson, lesson]) == [lesson.id]
    assert store.add([lesson.with_status("retired", "again")]) == []
    assert store.count() == 1
    assert store.get([lesson.id])[0].status == "active"


def test_search_is_kind_aware_nearest_first_and_sees_only_active_lessons(make_store: StoreFactory) -> None:
    store = make_store()
    store.add(
        [
            _example("my card has not arrived yet", "card_arrival"),
            _example("how do I change my pin", "change_pin"),
            _example("my card has not arrived yet, where is it", "card_arrival", status="candidate"),
            _strategy("look at the action"),
        ]
    )
    hits = store.search("when will my card arrive", kind="example", k=3)
    assert [h.answer for h in hits] == ["card_arrival", "change_pin"]
    assert [h.kind for h in store.search("card", kind="strategy", k=5)] == ["strategy"]
    assert store.count("example") == 3 and store.count("example", "active") == 2


def test_memory_survives_reopening_and_refuses_another_embedding_model(make_store: StoreFactory) -> None:
    make_store("reopen").add([_example("pin", "change_pin")])
    assert make_store("reopen").all()[0].answer == "change_pin"
    with pytest.raises(ConfigError, match="embedded with 'hash-128'"):
        make_store("reopen", HashEmbedder(dim=64))


def test_status_changes_keep_their_reasons_and_content_is_fixed_by_the_id(make_store: StoreFactory) -> None:
    store = make_store()
    lesson = _example("my card has not arrived yet", "card_arrival")
    store.add([lesson])
    store.set_status([lesson.id], "retired", "bad record: helped 0, hurt 4", round=2)
    stored = store.get([lesson.id])[0]
    assert stored.status == "retired" and stored.reason == "bad record: helped 0, hurt 4"
    assert [c.status for c in stored.history] == ["candidate", "active", "retired"]
    assert store.search("card arrived", kind="example", k=2) == []
    with pytest.raises(ValueError, match="content is fixed"):
        store.put([stored.model_copy(update={"answer": "card_delivery_estimate"})])


def test_a_past_round_replays_with_the_lessons_active_then(make_store: StoreFactory) -> None:
    store = make_store()
    early = _example("my card has not arrived yet", "card_arrival", round_no=1)
    late = _example("my card has still not arrived", "card_arrival", round_no=3)
    store.add([early, late])
    store.set_status([early.id], "retired", "merged", round=3)

    def replay(r: int) -> set[str]:
        return {x.id for x in store.search("card arrive", k=5, where=LessonFilter(as_of_round=r))}

    assert replay(1) == {early.id} and replay(2) == {early.id}
    assert replay(3) == {late.id}
    assert {x.id for x in store.search("card arrive", k=5)} == {late.id}


def test_mmr_trades_similarity_for_diversity(make_store: StoreFactory) -> None:
    store = make_store()
    store.add(
        [
            _example("card not arrived", "card_arrival"),
            _example("card not arrived yet", "card_arrival"),
            _example("card not arrived still", "card_arrival"),
            _example("card pin arrived blocked", "pin_blocked"),
        ]
    )
    plain = store.search("card not arrived", kind="example", k=2)
    diverse = store.search("card not arrived", kind="example", k=2, mmr=0.3)
    assert {x.answer for x in plain} == {"card_arrival"}
    assert {x.answer for x in diverse} == {"card_arrival", "pin_blocked"}


def test_export_import_export_is_identical_across_backends(make_store: StoreFactory, tmp_path: Path) -> None:
    source = make_store("source")
    strategy = _strategy("Look at the action the customer asks for, not only the object.")
    source.add(
        [_example("my card has not arrived yet", "card_arrival"), strategy, _example("pin?", "change_pin")]
    )
    source.put([source.get([strategy.id])[0].with_counts(retrieved=3, helped=2, hurt=1, credited_round=1)])
    source.set_status([strategy.id], "retired", "edited by a person", round=None)
    first = export_jsonl(source)
    (tmp_path / "lessons.jsonl").write_text(first)

    target = make_store("empty")
    # A raw copy at the store level is lossless (the CLI's import admits lessons afresh instead).
    assert len(target.add(read_jsonl(tmp_path / "lessons.jsonl"))) == 3
    assert export_jsonl(target) == first
    assert target.add(read_jsonl(tmp_path / "lessons.jsonl")) == []


def test_a_rolled_back_round_leaves_the_memory_as_it_found_it_and_a_retired_lesson_can_return(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    store = make_store()
    kept = _example("my card has not arrived yet", "card_arrival", round_no=1)
    store.add([kept])
    before = store.all()
    store.undo = UndoLog(tmp_path / "undo-2.jsonl")  # round 2 changes one lesson and writes another
    store.put([kept.with_counts(retrieved=2, helped=0, hurt=2, credited_round=2)])
    new = Lesson.make(kind="strategy", text="read the verb", round=2, scope="banking77")
    store.add([new])
    assert rollback_round(store, store.undo, "round 2 rolled back", round=2) == 2
    store.undo = None
    assert store.get([kept.id]) == before
    assert store.get([new.id])[0].status == "retired"
    # Written again as a candidate in a later round, the retired lesson comes back.
    again = Lesson.make(kind="strategy", text="read the verb", round=3, scope="banking77")
    assert store.add([again]) == [new.id]
    assert store.get([new.id])[0].status == "candidate"


def test_an_unknown_store_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="memory.store 'redis' is not one of: chroma, jsonl"):
        open_store(MemoryConfig(store="redis"), path=tmp_path, embedder=HashEmbedder())


def test_the_playbook_groups_by_scope_and_kind_with_counters_and_reasons(make_store: StoreFactory) -> None:
    store = make_store()
    keep = _strategy("Look at the action the customer asks for.")
    gone = _example("where is my card", "card_arrival")
    store.add([keep, gone, _example("my card has not arrived", "card_arrival")])
    store.put([keep.with_counts(retrieved=5, helped=4, hurt=1, credited_round=1)])
    store.set_status([gone.id], "retired", "bad record: helped 0, hurt 3", round=2)
    text = playbook_markdown(store.all(), title="quickstart")
    assert "## Scope: banking77" in text and "### Strategies (1)" in text and "#### `card_arrival`" in text
    assert "helped 4 · hurt 1 · shown 5" in text
    assert f"`{gone.id}` (example, retired)" in text and "bad record: helped 0, hurt 3" in text


def test_unreachable_chroma_server_is_one_clear_error() -> None:
    with pytest.raises(EndpointError, match=r"Chroma server at http://127\.0\.0\.1:9"):
        ChromaLessonStore(url="http://127.0.0.1:9", embedder=HashEmbedder())
    with pytest.raises(ConfigError, match="memory.url must look like"):
        ChromaLessonStore(url="localhost:8000", embedder=HashEmbedder())


def test_openai_embedder_over_http_feeds_the_store(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        embedder = OpenAIEmbedder(api_base=server.api_base, model="emb")
        store = ChromaLessonStore(tmp_path / "m", embedder=embedder)
        store.add(
            [_example("my card has not arrived yet", "card_arrival"), _example("change pin", "change_pin")]
        )
        assert store.search("card arrived", kind="example", k=1)[0].answer == "card_arrival"
        assert any(r.get("model") == "emb" for r in server.requests)


def test_the_search_tool_gives_a_users_agent_the_active_lessons(make_store: StoreFactory) -> None:
    store = make_store()
    store.add([_example("my card has not arrived yet", "card_arrival"), _strategy("read the verb first")])
    tool = memory_search_tool(store, k_examples=1, k_strategies=1)
    assert tool.name == "search_lessons"
    reply = tool.invoke({"query": "card not arrived"})
    assert "card_arrival" in reply and "read the verb first" in reply


def test_a_narrow_filter_still_finds_its_lesson_among_many_closer_ones(make_store: StoreFactory) -> None:
    store = make_store()
    crowd = [_example(f"card not arrived {i}", "card_arrival") for i in range(100)]
    rare = Lesson.make(kind="example", text="pin blocked", answer="pin_blocked", round=1, scope="other")
    store.add([*crowd, rare.with_status("active", "test", round=1)])
    hits = store.search("card not arrived", k=1, where=LessonFilter(scope="other"))
    assert [x.id for x in hits] == [rare.id]
    assert len(store.search("card not arrived", k=3, where=LessonFilter(scope="banking77"))) == 3


def test_the_token_budget_keeps_the_most_relevant_lessons_of_each_kind() -> None:
    from tutelage.memory.query import fit_budget

    examples = [_example("word " * 20, f"label_{i}") for i in range(3)]  # ~30 tokens each
    strategies = [_strategy("short rule number " + str(i)) for i in range(3)]  # ~6 tokens each
    kept_examples, kept_strategies = fit_budget([examples, strategies], 70)
    assert kept_examples == examples[:2] and kept_strategies == strategies  # interleaved by rank
    assert fit_budget([examples, strategies], 1) == [examples[:1], []]  # never an empty prompt
    assert fit_budget([examples, strategies], None) == [examples, strategies]


def test_a_memory_in_the_first_store_format_fails_with_one_clear_message(tmp_path: Path) -> None:
    from tutelage.errors import DataError

    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    store._col.add(ids=["ex-1"], embeddings=[[1.0] * 128], metadatas=[{"kind": "example", "round": 1}])
    with pytest.raises(DataError, match="first store format"):
        store.all()


def test_a_large_batch_of_queries_stays_under_sqlites_variable_limit(tmp_path: Path) -> None:
    # A 300-item round curates ~600 new lessons at once: 600 queries x 96 hits overflowed SQLite.
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    lessons = [
        Lesson.make(kind="example", text=f"lesson number {i} about cards", answer="a") for i in range(400)
    ]
    store.add(x.with_status("active", "ok", round=1) for x in lessons)
    queries = [f"query {i} about cards" for i in range(600)]
    hits = store.search_many(queries, kind="example", k=4)
    assert len(hits) == 600 and all(len(row) == 4 for row in hits)
    assert hits[7] == store.search_many([queries[7]], kind="example", k=4)[0]
