"""Opening a lesson memory by where it lives: a run directory, or a bare store folder.

A run directory (it has ``config.yaml``) opens its memory as the run does, with the run's embedder,
collection and Chroma server. Any other folder is a bare store: the ``lessons`` collection embedded
with the packaged MiniLM (``default_embedder``).
"""

from __future__ import annotations

from pathlib import Path

from tutelage.config import EmbedderConfig, MemoryConfig, RunConfig, load_config
from tutelage.errors import RunDirError
from tutelage.memory.embed import Embedder, build_embedder
from tutelage.memory.store import STORES, LessonStore, open_store, store_class, store_kind_at
from tutelage.rundir import RunPaths

__all__ = ["default_embedder", "open_location", "open_run_memory"]

COLLECTION = "lessons"


def open_run_memory(paths: RunPaths, cfg: RunConfig, embedder: Embedder | None = None) -> LessonStore:
    """A run's lesson store, as ``cfg.memory`` says: under the run folder, or on the store's server."""
    return open_store(cfg.memory, path=paths.memory, embedder=embedder or build_embedder(cfg.memory.embedder))


def default_embedder() -> Embedder:
    """The embedder of a bare store: the packaged all-MiniLM-L6-v2 (loaded on first use)."""
    return build_embedder(EmbedderConfig())


def _run_root(path: Path) -> Path | None:
    if (path / "config.yaml").is_file():
        return path
    if path.name == "memory" and (path.parent / "config.yaml").is_file():
        return path.parent  # a run's memory folder is opened as the run opens it
    return None


def open_location(path: Path, *, create: bool = False, embedder: Embedder | None = None) -> LessonStore:
    """The lesson store at ``path``: a run directory's memory, or a bare store folder.

    With ``create``, a missing or empty folder becomes a new bare store; otherwise a folder that is
    neither a run directory nor a store is refused, so a mistyped path never leaves a store behind.

    Example:
        >>> store = open_location(Path("runs/quickstart"))  # doctest: +SKIP
        >>> store = open_location(Path("shared-lessons"), create=True)  # doctest: +SKIP
    """
    root = _run_root(path)
    if root is not None:
        paths = RunPaths(root)
        return open_run_memory(paths, load_config(paths.config), embedder)
    fresh = not path.exists() or (path.is_dir() and not any(path.iterdir()))
    kind = store_kind_at(path) if path.is_dir() else None
    if kind is None and not (create and fresh):
        if not path.exists():
            raise RunDirError(f"{path} does not exist")
        markers = ", ".join(store_class(name).marker for name in STORES)
        raise RunDirError(f"{path} is neither a run directory (config.yaml) nor a lesson store ({markers})")
    path.mkdir(parents=True, exist_ok=True)
    cfg = MemoryConfig(store=kind or MemoryConfig().store)
    return open_store(cfg, path=path, embedder=embedder or default_embedder(), collection=COLLECTION)
