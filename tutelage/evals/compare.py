"""Per-item scores from run directories, eval folders or journals, and the paired comparison of two.

A score source is one of:

- a run directory (``config.yaml``): its test journal ``evals/test_{before,after}.jsonl``, or on the
  dev split the dev journal of the starting program (``before``) or of the kept program (``after``);
- an eval folder written by ``tutelage eval --out DIR`` (``DIR/journal.jsonl``);
- a ``.jsonl`` journal of Attempt rows, given directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tutelage.config import SuiteConfig, load_config
from tutelage.errors import DataError, RunDirError, TutelageError
from tutelage.evals.harness import Attempt, load_journal
from tutelage.evals.stats import (
    Interval,
    PairedComparison,
    bootstrap_ci,
    holm,
    paired_by_slice,
    paired_compare,
)
from tutelage.evals.suites import Task, load_suite

__all__ = [
    "GOLD",
    "Comparison",
    "Split",
    "When",
    "compare",
    "journal_path",
    "load_attempts",
    "load_scores",
    "slice_tags",
    "suite_tags",
    "task_tags",
]

Split = Literal["test", "dev"]
When = Literal["before", "after"]
GOLD = "answer"  # the slice key that groups items by their gold answer (an intent, a label)


def _kept_round(root: Path) -> int:
    try:
        return int(json.loads((root / "metrics.json").read_text()).get("kept_round") or 0)
    except (OSError, ValueError, TypeError):
        return 0


def journal_path(
    source: Path, *, split: Split = "test", when: When = "after", round_no: int | None = None
) -> Path:
    """The journal a score source stands for (see the module docstring); ``round_no`` picks a round's
    dev journal of a run directory.

    Raises:
        RunDirError: the source does not exist, is of no known kind, or lacks the journal asked for.
    """
    if source.is_file():
        return source
    if not source.exists():
        raise RunDirError(f"{source} does not exist")
    if (source / "config.yaml").is_file():
        if round_no is not None:
            path = source / "rounds" / f"round_{round_no}" / "dev.jsonl"
        elif split == "test":
            path = source / "evals" / f"test_{when}.jsonl"
        else:
            kept = 0 if when == "before" else _kept_round(source)
            path = source / "rounds" / f"round_{kept}" / "dev.jsonl"
        if not path.is_file():
            raise RunDirError(f"{source} has no {path.relative_to(source)} (the run has not scored it yet)")
        return path
    if (source / "journal.jsonl").is_file():
        _check_eval_split(source, split)
        return source / "journal.jsonl"
    raise RunDirError(f"{source} is neither a run directory (config.yaml) nor an eval folder (journal.jsonl)")


def _check_eval_split(folder: Path, split: Split) -> None:
    try:
        held = json.loads((folder / "summary.json").read_text()).get("split")
    except (OSError, ValueError, AttributeError):
        return
    if held is not None and held != split:
        raise DataError(f"{folder} holds a {held} evaluation, not {split} (pass --split {held})")


def load_attempts(
    source: Path, *, split: Split = "test", when: When = "after", round_no: int | None = None
) -> dict[str, Attempt]:
    """Item id -> Attempt, from a score source.

    Raises:
        RunDirError: no such source or journal. DataError: the journal holds no readable row.
    """
    path = journal_path(source, split=split, when=when, round_no=round_no)
    attempts: dict[str, Attempt] = load_journal(path, Attempt)
    if not attempts:
        raise DataError(f"{path} holds no scored items")
    return attempts


def load_scores(
    source: Path, *, split: Split = "test", when: When = "after", round_no: int | None = None
) -> dict[str, float]:
    """Item id -> score, from a run directory, an eval folder or a journal file.

    Example:
        >>> load_scores(Path("runs/quickstart"))  # doctest: +SKIP
        {'test-1703': 1.0, ...}
    """
    return {i: a.score for i, a in load_attempts(source, split=split, when=when, round_no=round_no).items()}


def task_tags(task: Task) -> Mapping[str, str]:
    """A task's slice tags, plus its gold answer under ``GOLD``."""
    return {**dict(getattr(task, "tags", None) or {}), GOLD: task.answer}


def _same_items(cfg: SuiteConfig) -> str:
    """What decides which item an id names: the suite (and its file), and BBH's prompt style."""
    where = cfg.path or (cfg.hf.path if cfg.name == "hf" else "") or ""
    return cfg.name + (f" {where}" if where else "") + (f" {cfg.style}" if cfg.name == "bbh" else "")


def _suite_config(source: Path) -> SuiteConfig | None:
    """The suite a score source was scored on: a run's config, or an eval folder's ``eval.json``."""
    folder = source if source.is_dir() else source.parent
    for candidate in (folder, folder.parent):
        if (candidate / "config.yaml").is_file():
            return load_config(candidate / "config.yaml").suite
        if (candidate / "eval.json").is_file():
            try:
                return SuiteConfig.model_validate(json.loads((candidate / "eval.json").read_text())["suite"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


def slice_tags(
    tasks: list[Task], key: str | None = None, *, preferred: tuple[str, ...] = ()
) -> tuple[str, dict[str, str]]:
    """The slice key used and item id -> slice name. The key is ``key``, by default the first of
    ``preferred`` (the suite's ``slice_keys``), else the first tag key of any task, else ``GOLD``.

    Raises:
        DataError: no task carries the tag ``key``.
    """
    tagged = [task_tags(t) for t in tasks]
    if key is None:
        key = (preferred[0] if preferred else None) or next(
            (k for tags in tagged for k in tags if k != GOLD), GOLD
        )
    found = {t.id: tags[key] for t, tags in zip(tasks, tagged, strict=True) if key in tags}
    if not found:
        known = sorted({k for tags in tagged for k in tags})
        raise DataError(f"no item has a slice tag {key!r}; known: {', '.join(known)}")
    return key, found


def suite_tags(source: Path, key: str | None = None) -> tuple[str, dict[str, str]] | str:
    """Slice tags of every item of the source's suite, or why there are none (a one-line note)."""
    try:
        cfg = _suite_config(source)
        if cfg is None:
            return f"no config.yaml or eval.json next to {source}: no slices"
        suite = load_suite(cfg)
    except TutelageError as exc:
        return f"suite not loadable ({exc}): no slices"
    tasks = list({t.id: t for t in [*suite.train, *suite.dev, *suite.test, *suite.held_out]}.values())
    return slice_tags(tasks, key, preferred=tuple(getattr(suite, "slice_keys", ())))


@dataclass(frozen=True)
class Comparison:
    """B against A: each score on the shared items with its interval, the paired test, item counts,
    and per-slice paired deltas (with Holm-adjusted p-values, same order as ``slices``)."""

    a: str
    b: str
    split: str
    score_a: Interval
    score_b: Interval
    paired: PairedComparison
    only_a: int
    only_b: int
    slice_key: str | None = None
    slices: dict[str, PairedComparison] = field(default_factory=dict)
    slice_p_holm: list[float] = field(default_factory=list)
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "split": self.split,
            "score_a": asdict(self.score_a),
            "score_b": asdict(self.score_b),
            "paired": self.paired.as_dict(),
            "summary": self.paired.describe(),
            "items": {"shared": self.paired.n, "only_a": self.only_a, "only_b": self.only_b},
            "slice_key": self.slice_key,
            "slices": {
                name: {**c.as_dict(), "p_holm": p}
                for (name, c), p in zip(self.slices.items(), self.slice_p_holm, strict=True)
            },
            "note": self.note,
        }


def compare(
    a: Path,
    b: Path,
    *,
    split: Split = "test",
    slice_key: str | None = None,
    slices: bool = True,
    n_boot: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Pair two score sources on their shared item ids; slices come from A's suite.

    Raises:
        RunDirError, DataError: a source cannot be read, or the two share no item.
    """
    sa, sb = load_scores(a, split=split), load_scores(b, split=split)
    suite_a, suite_b = _suite_config(a), _suite_config(b)
    if suite_a is not None and suite_b is not None and _same_items(suite_a) != _same_items(suite_b):
        # Item ids are per suite ("test-3" exists in Banking77 and GSM8K): pairing them would be noise.
        raise DataError(
            f"{a} and {b} were scored on different suites or splits "
            f"({_same_items(suite_a)} against {_same_items(suite_b)}); nothing to pair"
        )
    shared = set(sa) & set(sb)
    if not shared:
        raise DataError(
            f"{a} and {b} share no item ids ({len(sa)} and {len(sb)} items); were they scored on the "
            "same suite and split?"
        )
    paired = paired_compare(sa, sb, n_boot=n_boot, seed=seed)
    ids = sorted(shared)
    score_a = bootstrap_ci([sa[i] for i in ids], n_boot=n_boot, seed=seed)
    score_b = bootstrap_ci([sb[i] for i in ids], n_boot=n_boot, seed=seed)
    key, per_slice, note = None, {}, None
    if slices:
        tags = suite_tags(a, slice_key)
        if isinstance(tags, str):
            note = tags
        else:
            key, per_slice = tags[0], paired_by_slice(sa, sb, tags[1], n_boot=n_boot, seed=seed)
    return Comparison(
        a=str(a),
        b=str(b),
        split=split,
        score_a=score_a,
        score_b=score_b,
        paired=paired,
        only_a=len(set(sa) - shared),
        only_b=len(set(sb) - shared),
        slice_key=key,
        slices=per_slice,
        slice_p_holm=holm([c.p_value for c in per_slice.values()]),
        note=note,
    )
