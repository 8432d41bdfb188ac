from pathlib import Path

import pytest

from tutelage.errors import ConfigError
from tutelage.memory import ChromaLessonStore, Lesson, OpenAIEmbedder
from tutelage.testing import HashEmbedder, ScriptedServer
from tutelage.tools import memory_search_tool


def _example(text: str, answer: str, round_no: int = 1) -> Lesson:
    return Lesson.make(
        kind="example", text=text, answer=answer, round=round_no, source_task_id="train-1", teacher_model="t"
    )


def test_writing_the_same_lesson_twice_is_a_no_op(tmp_path: Path) -> None:
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    lesson = _example("my card has not arrived yet", "card_arrival")
    assert store.add([lesson, lesson]) == [lesson.id]
    assert store.add([lesson]) == []
    assert store.count() == 1


def test_search_is_kind_aware_and_nearest_first(tmp_path: Path) -> None:
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    store.add(
        [
            _example("my card has not arrived yet", "card_arrival"),
            _example("how do I change my pin", "change_pin"),
            Lesson.make(
                kind="strategy", text="look at the action", round=1, source_task_id="x", teacher_model="t"
            ),
        ]
    )
    hits = store.search("when will my card arrive", kind="example", k=2)
    assert [h.answer for h in hits] == ["card_arrival", "change_pin"]
    assert [h.kind for h in store.search("card", kind="strategy", k=5)] == ["strategy"]
    assert store.count("example") == 2


def test_memory_survives_reopening_and_refuses_another_embedding_model(tmp_path: Path) -> None:
    ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder()).add([_example("pin", "change_pin")])
    assert ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder()).all()[0].answer == "change_pin"
    with pytest.raises(ConfigError, match="embedded with 'hash-128'"):
        ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder(dim=64))


def test_openai_embedder_over_http_feeds_the_store(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        embedder = OpenAIEmbedder(api_base=server.api_base, model="emb")
        store = ChromaLessonStore(tmp_path / "m", embedder=embedder)
        store.add(
            [_example("my card has not arrived yet", "card_arrival"), _example("change pin", "change_pin")]
        )
        assert store.search("card arrived", kind="example", k=1)[0].answer == "card_arrival"
        assert any(r.get("model") == "emb" for r in server.requests)


def test_memory_search_tool_is_a_langchain_tool_returning_lessons(tmp_path: Path) -> None:
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    store.add([_example("my card has not arrived yet", "card_arrival")])
    tool = memory_search_tool(store, k_examples=1, k_strategies=1)
    assert tool.name == "search_lessons"
    assert "card_arrival" in tool.invoke({"query": "card not arrived"})
