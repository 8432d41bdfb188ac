"""Transfer: a run's lessons and compiled program, given to a student model the run never trained.

The strategy-teaching and ExpeL papers report whether what one student learned helps another. Here
that is two cached evaluations of the new student on the same items, paired: alone (zero-shot), and
with run A's memory and kept program; and, for reference, run A's own student on those items.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tutelage import runfiles
from tutelage.config import load_config
from tutelage.errors import ConfigError
from tutelage.evals.harness import Attempt, load_journal
from tutelage.evals.runner import EvalSummary, evaluate
from tutelage.evals.stats import Interval, PairedComparison, bootstrap_ci, paired_compare
from tutelage.loop.progress import Reporter

__all__ = ["Transfer", "transfer"]


@dataclass(frozen=True)
class Transfer:
    """The new student alone and taught by run A, paired; run A's own student on the same items."""

    student: str
    alone: EvalSummary
    taught: EvalSummary
    paired: PairedComparison
    source_student: str
    source: Interval | None  # run A's student with its kept program (test split only)
    adapter_left_out: str | None = None  # run A's adapter: weights for its own base, not transferred


def _scores(out: str) -> dict[str, float]:
    return {i: float(a.score) for i, a in load_journal(Path(out) / "journal.jsonl", Attempt).items()}


def transfer(
    run_dir: Path,
    overrides: list[str],
    *,
    split: str = "test",
    limit: int | None = None,
    reporter: Reporter | None = None,
) -> Transfer:
    """Evaluate run ``run_dir``'s lessons and program with the student ``overrides`` describe.

    Args:
        run_dir: the run whose memory and kept program are transferred.
        overrides: config changes naming the other student, e.g. ``["student.model=qwen2.5-1.5b",
            "student.provider=openai", "student.api_base=http://gpu:8000/v1"]``.

    Raises:
        ConfigError: the overrides leave the run's own student unchanged.

    Example:
        >>> t = transfer(Path("runs/quickstart"), ["student.model=other"])  # doctest: +SKIP
        >>> print(t.paired.describe())  # doctest: +SKIP
    """
    from tutelage.rundir import RunPaths

    paths = RunPaths(run_dir)
    paths.require()
    source_cfg = load_config(paths.config)
    cfg = load_config(paths.config, overrides)
    who = ("provider", "model", "api_base")
    if all(getattr(cfg.student, key) == getattr(source_cfg.student, key) for key in who):
        raise ConfigError(
            "transfer needs another student: pass --set student.model=... (and student.provider, "
            "student.api_base)"
        )
    common = {"split": split, "limit": limit, "reporter": reporter}
    alone = evaluate(cfg, baseline="zero-shot", **common)  # type: ignore[arg-type]
    program, dropped = _without_adapter(paths, Path(cfg.runs_dir) / "evals" / "transfer")
    taught = evaluate(cfg, run_dir=run_dir, program=program, **common)  # type: ignore[arg-type]
    a, b = _scores(alone.out), _scores(taught.out)
    source = None
    if split == "test" and paths.test_journal("after").is_file():
        own = {i: float(a.score) for i, a in load_journal(paths.test_journal("after"), Attempt).items()}
        shared = [own[i] for i in b if i in own]
        source = bootstrap_ci(shared) if shared else None
    return Transfer(
        cfg.student.model, alone, taught, paired_compare(a, b), source_cfg.student.model, source, dropped
    )


def _without_adapter(paths: Any, out: Path) -> tuple[Path | None, str | None]:
    """The kept program as it transfers: an adapter is weights for run A's base, so it stays behind.

    Returns the program to evaluate (None: the kept one as it is) and the adapter left out.
    """
    from tutelage.api import kept_program

    source = kept_program(paths)
    data = json.loads(source.read_text())
    if not data.get("adapter"):
        return None, None
    name = data["adapter"]["name"]
    data["adapter"] = None
    program = runfiles.write_json(out / f"{paths.root.name}-{source.stem}-no-adapter.json", data)
    return program, name
