"""Lesson memory: records, embedders and the Chroma-backed store."""

from tutelage.memory.chroma import ChromaLessonStore
from tutelage.memory.embed import Embedder, OpenAIEmbedder, SentenceTransformerEmbedder, build_embedder
from tutelage.memory.lesson import Lesson, LessonKind, lesson_id

__all__ = [
    "ChromaLessonStore",
    "Embedder",
    "Lesson",
    "LessonKind",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "build_embedder",
    "lesson_id",
]
