"""Lesson memory: records, embedders, the Chroma-backed store, credit, curation and export."""

from tutelage.memory.admit import Admission
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.memory.curate import Curation, Outcome, apply_credit, credit, curate
from tutelage.memory.embed import Embedder, OpenAIEmbedder, SentenceTransformerEmbedder, build_embedder
from tutelage.memory.leakage import LeakageGuard
from tutelage.memory.lesson import Lesson, LessonKind, LessonStatus, Provenance, StatusChange, lesson_id
from tutelage.memory.playbook import export_jsonl, playbook_markdown, read_jsonl
from tutelage.memory.query import LessonFilter

__all__ = [
    "Admission",
    "ChromaLessonStore",
    "Curation",
    "Embedder",
    "LeakageGuard",
    "Lesson",
    "LessonFilter",
    "LessonKind",
    "LessonStatus",
    "OpenAIEmbedder",
    "Outcome",
    "Provenance",
    "SentenceTransformerEmbedder",
    "StatusChange",
    "apply_credit",
    "build_embedder",
    "credit",
    "curate",
    "export_jsonl",
    "lesson_id",
    "playbook_markdown",
    "read_jsonl",
]
