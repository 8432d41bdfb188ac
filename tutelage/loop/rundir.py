"""The run directory: where every artifact of a run lives, and the metrics and report written there."""

from __future__ import annotations

import json
import platform
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from tutelage.agents.ledger import Ledger
from tutelage.config import RunConfig
from tutelage.errors import RunDirError
from tutelage.memory.lesson import Lesson, reason_category
from tutelage.memory.playbook import playbook_markdown

__all__ = ["RunPaths", "new_run_dir", "write_metrics", "write_report"]


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def memory(self) -> Path:
        return self.root / "memory"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints.sqlite"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    def program(self, round_no: int) -> Path:
        return self.root / "programs" / f"round_{round_no}.json"

    def journal(self, round_no: int, name: str) -> Path:
        return self.root / "rounds" / f"round_{round_no}" / f"{name}.jsonl"

    def test_journal(self, when: str) -> Path:
        return self.root / "evals" / f"test_{when}.jsonl"

    def write_config(self, cfg: RunConfig) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        versions = {"python": platform.python_version()}
        for pkg in (
            "tutelage",
            "dspy",
            "langgraph",
            "chromadb",
            "litellm",
            "xllamacpp",
            "sentence-transformers",
        ):
            try:
                versions[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                continue
        (self.root / "versions.json").write_text(json.dumps(versions, indent=2))

    def require(self) -> None:
        if not self.config.is_file():
            raise RunDirError(f"{self.root} is not a tutelage run directory (no config.yaml)")


def new_run_dir(cfg: RunConfig) -> RunPaths:
    """``runs/<name>``, or ``runs/<name>-2``, ``-3``... when that name is taken."""
    base = Path(cfg.runs_dir)
    candidate, n = base / cfg.name, 1
    while candidate.exists():
        n += 1
        candidate = base / f"{cfg.name}-{n}"
    return RunPaths(candidate)


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
    tmp = paths.metrics.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(paths.metrics)
    return data


def _memory_section(lessons: list[Lesson]) -> list[str]:
    """Status counts, why lessons were refused, rejected or retired, and the lessons that helped most."""
    status = Counter(x.status for x in lessons)
    lines = [
        "## Lesson memory",
        "",
        f"{status['active']} active, {status['retired']} retired or rejected, {status['candidate']} pending "
        f"({len(lessons)} stored). The whole playbook: `playbook.md`.",
    ]
    reasons = Counter(reason_category(x.reason) for x in lessons if x.status == "retired")
    if reasons:
        lines += ["", "| why not active | lessons |", "|---|---:|"]
        lines += [f"| {reason} | {n} |" for reason, n in reasons.most_common(8)]
    best = sorted((x for x in lessons if x.helped), key=lambda x: (x.hurt - x.helped, x.id))[:5]
    if best:
        lines += ["", "Lessons that helped most:", ""]
        lines += [
            f'- `{x.id}` {x.kind} "{x.text[:80]}"{" -> " + x.answer if x.answer else ""}: '
            f"helped {x.helped}, hurt {x.hurt}, shown {x.retrieved}"
            for x in best
        ]
    return lines


def _cost_section(metrics: dict[str, Any]) -> list[str]:
    """Tokens, money, calls and failures per role, per round and in total (sums of ``ledger.jsonl``)."""
    lines = [
        "## Cost",
        "",
        "| round | role | calls | failures | tokens in | tokens out | USD | LM seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(str(r["round"]), r.get("cost", {})) for r in metrics["rounds"]]
    for label, cost in [*rows, ("total (incl. start and test)", metrics.get("cost", {}))]:
        for role, c in sorted(cost.items()):
            lines.append(
                f"| {label} | {role} | {c['calls']} | {c['failures']} | {c['tokens_in']:,} "
                f"| {c['tokens_out']:,} | {c['usd']:.4f} | {c['seconds']:.0f} |"
            )
    lines += ["", f"Wall time: {metrics.get('wall_seconds', 0):.0f} s. Every call: `ledger.jsonl`."]
    return lines


def write_report(paths: RunPaths, cfg: RunConfig, metrics: dict[str, Any], lessons: list[Lesson]) -> None:
    """``report.md`` (per-round table, test accuracy, memory summary) and ``playbook.md``."""
    test = metrics["test_accuracy"]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    active = sum(x.status == "active" for x in lessons)
    lines = [
        f"# tutelage run `{paths.root.name}`",
        "",
        f"Suite **{cfg.suite.name}**; student `{cfg.student.model}` ({cfg.student.provider}); "
        f"teacher `{cfg.teacher.model}` ({cfg.teacher.provider}); optimizer `{cfg.loop.optimizer}`; "
        f"verified writes `{cfg.memory.verify}`.",
        "",
        f"**Held-out test accuracy: {pct(test['before'])} before round 1 -> {pct(test['after'])} "
        f"after the last round.** Active lessons: {active}.",
        "",
        "| round | train acc (attempts) | failures diagnosed | lessons written | refused (leakage) "
        "| rejected (verify) | retired (curation) | rolled back | active | k examples | dev acc "
        "| kept | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in metrics["rounds"]:
        lines.append(
            f"| {row['round']} | {pct(row.get('train_accuracy'))} | {row.get('diagnosed', 0)} "
            f"| {row.get('lessons_added', 0)} | {row.get('lessons_refused', 0)} "
            f"| {row.get('lessons_rejected', 0)} | {row.get('lessons_retired', 0)} "
            f"| {row.get('lessons_rolled_back', 0)} | {row['lessons']} "
            f"| {row.get('k_examples', '-')} | {pct(row.get('dev_accuracy'))} "
            f"| {'yes' if row.get('accepted') else 'no'} | {row['seconds']:.0f} |"
        )
    dev = metrics.get("dev_accuracy", {})
    lines += [
        "",
        f"Stopped: {metrics.get('stop_reason') or 'running'}. Dev accuracy {pct(dev.get('start'))} with the "
        f"starting program, {pct(dev.get('kept'))} with the kept one (round {metrics.get('kept_round')}).",
        "",
        "Decisions (paired on the same dev items):",
        "",
        *(f"- round {row['round']}: {row.get('decision')}" for row in metrics["rounds"]),
        *(f"- round {row['round']}: **{row['flag']}**" for row in metrics["rounds"] if row.get("flag")),
        "",
        *_cost_section(metrics),
        "",
        *_memory_section(lessons),
        "",
    ]
    paths.report.write_text("\n".join(lines))
    (paths.root / "playbook.md").write_text(playbook_markdown(lessons, title=f"run {paths.root.name}"))
