"""Failpoints: kill this process at a named moment of a named loop node (the kill matrix, bench/chaos).

Off unless ``TUTELAGE_FAILPOINT`` is set, as ``node:when`` or ``node:when:n``:

- ``start``: as the node begins, before it has done anything;
- ``middle``: at the node's ``n``-th step (default 1), where a step is a model call recorded in the
  ledger or a write to the lesson store, so it lands between two pieces of the node's work;
- ``end``: after the node has returned its update and before LangGraph has checkpointed it.

The process then dies by SIGKILL, as from the OOM killer or a power cut: no handler runs.
This module imports nothing from tutelage, so every layer may call it.
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["ENV", "enter", "hit", "step"]

ENV = "TUTELAGE_FAILPOINT"

_lock = threading.Lock()
_node = ""
_steps = 0


def _target() -> tuple[str, str, int] | None:
    raw = os.environ.get(ENV, "")
    if not raw:
        return None
    node, _, rest = raw.partition(":")
    when, _, n = rest.partition(":")
    return node, when or "start", int(n) if n.isdigit() else 1


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def enter(node: str) -> None:
    """A node begins: count its steps from zero (and die here for ``node:start``)."""
    global _node, _steps
    with _lock:
        _node, _steps = node, 0
    hit(node, "start")


def hit(node: str, when: str) -> None:
    """Die when the failpoint names this moment."""
    target = _target()
    if target is not None and target[:2] == (node, when):
        _die()


def step() -> None:
    """One piece of the current node's work is done (a model call, a memory write)."""
    global _steps
    target = _target()
    if target is None:
        return
    with _lock:
        _steps += 1
        now = (_node, "middle", _steps)
    if now == target:
        _die()
