"""What every ``tutelage`` command shares: the consoles, the error guard and quiet library logging."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tutelage.errors import TutelageError

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cluster scheduler, ``kill``, ``timeout``): stops the run as Ctrl-C does."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _guard(fn: Callable[[], T], *, resume: str = "tutelage resume RUN_DIR") -> T:
    """One clear line and a non-zero exit for every TutelageError; Ctrl-C and SIGTERM say how to
    continue (exit 130 and 143, as a shell reports those signals)."""
    previous = None
    # Not in the main thread (a caller's own harness), signal() raises: SIGTERM is left alone there.
    with contextlib.suppress(ValueError):
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return fn()
    except TutelageError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except Terminated:
        err_console.print(f"terminated; continue with `{resume}`")
        raise typer.Exit(143) from None
    except KeyboardInterrupt:
        err_console.print(f"interrupted; continue with `{resume}`")
        raise typer.Exit(130) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _env() -> None:
    # The CLI shows progress itself; library warnings (e.g. a truncated small-model reply) stay in logs.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("dspy", "LiteLLM", "litellm", "httpx", "sentence_transformers", "chromadb"):
        logging.getLogger(name).setLevel(logging.ERROR)
