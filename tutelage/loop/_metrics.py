"""``metrics.json``: what a run measured, written from the loop state after every decision."""

from __future__ import annotations

from typing import Any

from tutelage import runfiles
from tutelage.agents.ledger import Ledger
from tutelage.rundir import RunPaths

__all__ = ["write_metrics"]


def write_metrics(paths: RunPaths, state: dict[str, Any]) -> dict[str, Any]:
    """Write ``metrics.json`` from the loop state (atomically); return what was written."""
    ledger = Ledger(paths.ledger)
    data = {
        "rounds": state.get("rounds", []),
        "test_accuracy": {"before": state.get("test_before"), "after": state.get("test_after")},
        "dev_accuracy": {"start": state.get("dev_start"), "kept": state.get("dev_incumbent")},
        "kept_round": state.get("incumbent_round"),
        "test_seconds": state.get("test_seconds", {}),
        "stop_reason": state.get("stop_reason"),
        "cost": ledger.totals(),
        "wall_seconds": round(ledger.recorded_seconds(), 1),
    }
    runfiles.write_json(paths.metrics, data)
    return data
