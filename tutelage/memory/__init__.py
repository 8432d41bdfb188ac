"""Lesson memory: the lesson record, the ``LessonStore`` seam and its registry, embedders, export.

The loop's own memory operations (admission, credit, curation, rollback) live in their modules
(``tutelage.memory._admit``, ``.curate``) and are not part of the public surface.
"""

from tutelage.memory.embed import Embedder, OpenAIEmbedder, SentenceTransformerEmbedder, build_embedder
from tutelage.memory.lesson import Lesson, LessonKind, LessonStatus
from tutelage.memory.location import open_location
from tutelage.memory.playbook import export_jsonl, playbook_markdown, read_jsonl
from tutelage.memory.query import LessonFilter
from tutelage.memory.store import STORES, LessonStore, open_store

__all__ = [
    "STORES",
    "Embedder",
    "Lesson",
    "LessonFilter",
    "LessonKind",
    "LessonStatus",
    "LessonStore",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "build_embedder",
    "export_jsonl",
    "open_location",
    "open_store",
    "playbook_markdown",
    "read_jsonl",
]
