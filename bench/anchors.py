"""Benchmark tutelage against anchors: zero-shot, random few-shot and whole-train retrieval, one table.

Every row uses the same student model (the config's; the embedded SmolLM2-135M by default), the same
prompt format (``StudentProgram`` + ``PlainChatAdapter``, demos as chat turns, replies snapped to
the labels) and the same held-out test items, so rows differ only in which demos the student sees:

- zero-shot: the instruction alone;
- LabeledFewShot(8): 8 fixed train items, a seeded random sample;
- whole-train retrieval (k=8): the 8 train items nearest each task, from a store holding the whole
  train split (the upper bound for example retrieval; built once under ``--dir``/stores, then reused);
- tutelage + OPTIMIZER: ``tutelage.run`` with the config plus ``loop.optimizer=OPTIMIZER``, scored
  from its ``metrics.json`` (accuracy after the last round, cost totals, active lessons);
- with ``--teacher off,on``, each optimizer twice with the same seed: ``teacher: off`` (gold examples
  only, no teacher call) and the teacher on. The bench then prints the teacher's contribution on the
  same test items: the paired difference with its interval and McNemar p, and the marginal gain in
  points per million teacher tokens; and, per lesson kind, the active lessons with how often they
  were shown, helped and hurt.

    .venv/bin/python bench/anchors.py             # 3 baselines + tutelage with fewshot, mipro, gepa, none
    .venv/bin/python bench/anchors.py --quick     # smoke run: 20 test items, one tiny round
    .venv/bin/python bench/anchors.py --optimizers fewshot --rounds 5 --set memory.k_examples=8
    .venv/bin/python bench/anchors.py --optimizers '' --test-size 10   # baselines only, on 10 items
    .venv/bin/python bench/anchors.py --baselines zero-shot --optimizers fewshot --teacher off,on

Writes under ``--dir`` (default ``runs/anchors``): the tutelage runs, the baselines' per-item
journals, the cached whole-train stores, and the table as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import tutelage  # before dspy/chromadb/transformers: sets the offline LiteLLM/HF/telemetry defaults
from tutelage.agents.ledger import Ledger
from tutelage.agents.student import make_solver
from tutelage.api import load_memory
from tutelage.backends import build_lm, open_endpoints
from tutelage.config import RunConfig, load_config
from tutelage.errors import TutelageError
from tutelage.evals.baselines import BASELINES, build_baseline
from tutelage.evals.harness import Attempt, accuracy, load_journal, run_tasks
from tutelage.evals.suites import Suite, load_suite
from tutelage.memory.embed import Embedder, build_embedder
from tutelage.memory.query import LessonFilter

K = 8
OPTIMIZERS = "fewshot,mipro,gepa,none"
# Tiny sizes for a smoke run (--rounds, --test-size and --set still override them). The dev split
# is cut from train, so a quick run's train split (and its cached store) differs from a full run's.
QUICK = (
    "suite.test_size=20",
    "suite.dev_size=8",
    "loop.rounds=1",
    "loop.batch_size=12",
    "loop.search_size=6",
    "loop.search_k=[2, 4]",
    "loop.trials=2",
    "loop.metric_calls=12",
    "guards.monitor_size=4",
)
LABELS = {
    "zero-shot": "zero-shot",
    "fewshot-random": f"LabeledFewShot({K})",
    "retrieval-train": f"whole-train retrieval (k={K})",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Row:
    """One line of the table; ``None`` is a cell that was not measured (printed as ``-``)."""

    method: str
    kind: str  # "baseline" or "tutelage"
    name: str  # the baseline or the optimizer
    accuracy: float | None = None
    n: int | None = None
    failures: int | None = None
    student: dict[str, Any] | None = None  # calls, failures, tokens_in, tokens_out, usd, seconds
    teacher: dict[str, Any] | None = None
    seconds: float | None = None
    build_seconds: float | None = None
    lessons: int | None = None
    train_items: int | None = None  # the train items behind the memory (demos, store, example lessons)
    memory_fraction: float | None = None
    vs_retrieval: float | None = None
    run_dir: str | None = None
    teacher_on: bool = True
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)  # per lesson kind: active, shown, ...
    error: str | None = None
    notes: list[str] = field(default_factory=list)


# -- baselines ------------------------------------------------------------------------------------


class Progress:
    """A stderr line every ``every`` items: done/total, elapsed, seconds per item."""

    def __init__(self, label: str, every: int = 10) -> None:
        self.label, self.every = label, every
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if done and (done % self.every == 0 or done == total):
            spent = time.perf_counter() - self.start
            log(f"[{self.label}] {done}/{total} items, {spent:.0f}s ({spent / done:.2f} s/item)")


def run_baselines(
    cfg: RunConfig, suite: Suite, names: Sequence[str], embedder: Embedder, out: Path, seed: int
) -> list[Row]:
    rows: list[Row] = []
    journals = out / "baselines"
    journals.mkdir(parents=True, exist_ok=True)
    # One endpoint for the student only (the baselines have no teacher).
    with open_endpoints(cfg.model_copy(update={"teacher": cfg.student}), log_dir=out) as endpoints:
        for name in names:
            row = Row(LABELS[name], "baseline", name)
            rows.append(row)
            t0 = time.perf_counter()
            try:
                program = build_baseline(
                    name,
                    suite,
                    embedder=embedder,
                    store_dir=out / "stores",
                    seed=seed,
                    k=K,
                    snap_to_labels=cfg.suite.snap_to_labels,
                )
            except TutelageError as exc:
                row.error = str(exc)
                continue
            row.build_seconds = round(time.perf_counter() - t0, 1)
            if name == "fewshot-random":
                row.method += f", seed {seed}"
                row.lessons = len(program.predict.demos)
            elif name == "retrieval-train" and program.memory is not None:
                row.lessons = program.memory.count()
                row.notes.append(f"store {program.memory.path} ready in {row.build_seconds:.0f}s")
            else:
                row.lessons = 0
            row.train_items = row.lessons
            row.memory_fraction = row.lessons / len(suite.train) if suite.train else None
            log(f"[{name}] built in {row.build_seconds:.1f}s; scoring {len(suite.test)} test items")
            ledger = Ledger()
            ledger.at(0, "test")
            lm = build_lm(cfg.student, endpoints.student, name="student", ledger=ledger)
            journal = journals / f"{name}.jsonl"
            journal.unlink(missing_ok=True)  # a fresh measurement every time: no reused items
            t0 = time.perf_counter()
            attempts = run_tasks(
                make_solver(program, lm=lm, metric=suite.metric),
                suite.test,
                concurrency=cfg.student.concurrency,
                journal=journal,
                on_progress=Progress(name),
            )
            row.seconds = round(time.perf_counter() - t0, 1)
            result = accuracy(attempts)
            row.accuracy, row.n, row.failures = result.accuracy, result.n, result.failures
            row.student = ledger.totals().get("student", {})
            row.teacher = {"calls": 0, "tokens_in": 0, "tokens_out": 0}
            log(f"[{name}] {100 * result.accuracy:.1f}% on {result.n} items in {row.seconds:.0f}s")
    return rows


# -- tutelage runs --------------------------------------------------------------------------------


def lesson_kinds(lessons: Sequence[Any]) -> dict[str, dict[str, int]]:
    """Per lesson kind: active lessons, and (over every lesson of the kind) times shown, helped, hurt."""
    out: dict[str, dict[str, int]] = {}
    for x in lessons:
        row = out.setdefault(x.kind, {"active": 0, "shown": 0, "helped": 0, "hurt": 0})
        row["active"] += x.status == "active"
        row["shown"] += x.retrieved
        row["helped"] += x.helped
        row["hurt"] += x.hurt
    return dict(sorted(out.items()))


def run_tutelage(
    optimizer: str,
    config: Path | None,
    overrides: list[str],
    suite: Suite,
    embedder: Embedder,
    out: Path,
    *,
    teacher: bool = True,
    label_teacher: bool = False,
) -> Row:
    suffix = (
        "" if not label_teacher else (", teacher on" if teacher else ", teacher off (gold examples only)")
    )
    row = Row(f"tutelage + {optimizer}{suffix}", "tutelage", optimizer, teacher_on=teacher)
    t0 = time.perf_counter()
    try:
        cfg = load_config(
            config,
            [
                *overrides,
                f"runs_dir={out / 'runs'}",
                f"name=anchors-{optimizer}" + ("" if teacher else "-teacher-off"),
                f"loop.optimizer={optimizer}",
                *([] if teacher else ["teacher.provider=none"]),
            ],
        )
        from tutelage.optimizers import build_optimizer

        build_optimizer(cfg.loop.optimizer)  # fail in a second, not after the first test pass
        existing = cfg.run_dir
        if (existing / "checkpoints.sqlite").is_file():
            # A killed benchmark continues its runs (a finished one is only read back).
            if load_config(existing / "config.yaml") != cfg:
                raise TutelageError(f"{existing} was run with another config; remove it or use another --dir")
            log(f"[tutelage + {optimizer}] resuming {existing}")
            result = tutelage.resume(existing, embedder=embedder)
            row.notes.append(f"resumed from {existing}")
        else:
            log(f"[tutelage + {optimizer}] running {cfg.loop.rounds} round(s)")
            result = tutelage.run(cfg, embedder=embedder)
    except TutelageError as exc:
        row.error = str(exc)
        return row
    # The run's own wall time, summed over its sessions (a resumed run's is not this process's time).
    row.seconds = result.metrics.get("wall_seconds") or round(time.perf_counter() - t0, 1)
    row.run_dir = str(result.run_dir)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    row.accuracy = metrics.get("test_accuracy", {}).get("after")
    scored: dict[str, Attempt] = load_journal(result.run_dir / "evals" / "test_after.jsonl")
    row.n = len(scored) or len(suite.test)
    row.failures = sum(1 for a in scored.values() if a.error)
    if set(scored) and set(scored) != {t.id for t in suite.test}:
        row.notes.append("WARNING: scored other test items than the baselines")
    cost = metrics.get("cost")
    if isinstance(cost, dict):
        row.student, row.teacher = cost.get("student", {}), cost.get("teacher", {})
    rounds = metrics.get("rounds") or []
    if rounds:
        row.lessons = rounds[-1].get("lessons")
    # What share of train the memory holds: the train items its active example lessons came from
    # (strategies are the teacher's words, not train items; merged near-duplicates keep every source).
    memory = load_memory(result.run_dir, embedder=embedder)
    row.kinds = lesson_kinds(memory.all(LessonFilter(status=None)))
    examples = memory.all(LessonFilter(kind="example"))
    covered = {s for x in examples for s in x.provenance.source_task_ids} & {t.id for t in suite.train}
    row.train_items = len(covered)
    row.memory_fraction = len(covered) / len(suite.train) if suite.train else None
    row.notes.append(f"{len(examples):,} active example lessons from {len(covered):,} train items")
    log(f"[tutelage + {optimizer}] test {row.accuracy} after {len(rounds)} round(s) in {row.seconds:.0f}s")
    return row


# -- reporting ------------------------------------------------------------------------------------


def retrieval_accuracy(rows: Sequence[Row]) -> float | None:
    return next((r.accuracy for r in rows if r.name == "retrieval-train" and r.accuracy), None)


def add_ratios(rows: Sequence[Row]) -> None:
    """Each tutelage row's accuracy over whole-train retrieval's (1.0 on that row itself)."""
    best = retrieval_accuracy(rows)
    for row in rows:
        if best and row.accuracy is not None and (row.kind == "tutelage" or row.name == "retrieval-train"):
            row.vs_retrieval = row.accuracy / best


def machine_line(cfg: RunConfig) -> str:
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return (
        f"machine: {usable}/{cores} cores, python {platform.python_version()}, dspy {version('dspy')}, "
        f"chromadb {version('chromadb')}; student {cfg.student.provider}:{cfg.student.model} "
        f"(concurrency {cfg.student.concurrency}), teacher {cfg.teacher.provider}:{cfg.teacher.model}, "
        f"embedder {cfg.memory.embedder.provider}:{cfg.memory.embedder.model}"
    )


def test_items(cfg: RunConfig, suite: Suite) -> dict[str, Any]:
    ids = [t.id for t in suite.test]
    return {
        "suite": suite.name,
        "split": "test",
        "seed": cfg.suite.seed,  # the test file is shuffled with random.Random(seed + 1)
        "n": len(ids),
        "of": len(suite.held_out) or len(ids),
        "sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12],
        "ids": ids,
    }


def wilson(p: float, n: int, z: float = 1.96) -> float:
    """Half-width of the 95% Wilson score interval, in accuracy points (0-1)."""
    if n == 0:
        return float("nan")
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre + half - p, p - (centre - half))


def _cells(row: Row, train: int) -> tuple[str, ...]:
    def tokens(role: dict[str, Any] | None) -> str:
        return "-" if role is None else f"{role.get('tokens_in', 0) + role.get('tokens_out', 0):,}"

    acc = "-"
    if row.accuracy is not None and row.n:
        acc = f"{100 * row.accuracy:.1f}% ±{100 * wilson(row.accuracy, row.n):.0f} (n={row.n})"
    memory = "-"
    if row.lessons is not None:
        memory = f"{row.lessons:,}"
        if row.train_items is not None and train:
            memory += f" ({row.train_items:,}, {100 * row.train_items / train:.2f}%)"
    return (
        row.method,
        acc,
        "-" if row.student is None else f"{row.student.get('calls', 0):,}",
        tokens(row.teacher),
        "-" if row.seconds is None else f"{row.seconds:,.0f}s",
        memory,
        "-" if row.vs_retrieval is None else f"{row.vs_retrieval:.2f}x",
    )


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def report(rows: list[Row], items: dict[str, Any], train: int, wall: float) -> None:
    print(
        f"test items: {items['suite']} {items['split']} split shuffled with suite.seed={items['seed']}, "
        f"the first {items['n']} of {items['of']:,} ({', '.join(items['ids'][:4])}, ...; "
        f"sha256 {items['sha256']}); the same items for every row"
    )
    print_table(
        f"Anchors on {items['suite']}: the same student, prompt format and {items['n']} test items "
        f"(train split: {train:,} items)",
        (
            "method",
            "test accuracy",
            "student calls",
            "teacher tokens",
            "wall time",
            "memory: lessons (train items, %)",
            "acc / whole-train",
        ),
        [_cells(r, train) for r in rows],
    )
    print(
        "accuracy ± is the 95% Wilson half-width. student calls and teacher tokens are totals over a "
        "row (for tutelage: every round plus both held-out test passes); '-' = not measured (a run "
        "whose metrics.json has no cost yet). wall time: the test pass for a baseline (its build "
        "apart), the whole run for tutelage. memory: fixed demos, stored train items, or the active "
        "lessons after the last round, with the train items (and their share of the train split) "
        "that its example lessons came from."
    )
    best = retrieval_accuracy(rows)
    for row in rows:
        if row.kind == "tutelage" and row.accuracy is not None and row.vs_retrieval is not None:
            share = "-" if row.memory_fraction is None else f"{100 * row.memory_fraction:.2f}%"
            print(
                f"tutelage + {row.name}: {row.vs_retrieval:.2f}x whole-train retrieval's accuracy "
                f"({100 * row.accuracy:.1f}% vs {100 * (best or 0):.1f}%) with a memory of {share} "
                "of the train split"
            )
        for note in row.notes:
            print(f"{row.method}: {note}")
        if row.error:
            print(f"{row.method}: not measured: {row.error}")
    teacher_contribution(rows)
    print(f"total wall time: {wall:.0f}s")


def _after(row: Row) -> dict[str, float]:
    if row.run_dir is None:
        return {}
    journal: dict[str, Attempt] = load_journal(Path(row.run_dir) / "evals" / "test_after.jsonl")
    return {i: a.score for i, a in journal.items()}


def teacher_contribution(rows: Sequence[Row]) -> None:
    """For each optimizer run with the teacher off and on: what the teacher added, on the same items."""
    from tutelage.evals.stats import paired_compare

    for on in (r for r in rows if r.kind == "tutelage" and r.teacher_on and r.accuracy is not None):
        off = next((r for r in rows if r.kind == "tutelage" and not r.teacher_on and r.name == on.name), None)
        if off is None or off.accuracy is None:
            continue
        a, b = _after(off), _after(on)
        if not set(a) & set(b):
            continue
        c = paired_compare(a, b)
        tokens = (on.teacher or {}).get("tokens_in", 0) + (on.teacher or {}).get("tokens_out", 0)
        per_million = 100 * c.diff / (tokens / 1e6) if tokens else float("nan")
        print(
            f"\nteacher's contribution ({on.name}, same seed, the same {c.n} test items): "
            f"{100 * c.mean_a:.1f}% without -> {100 * c.mean_b:.1f}% with, "
            f"{100 * c.diff:+.1f} pts [95% CI {100 * c.low:+.1f}, {100 * c.high:+.1f}], McNemar "
            f"p={c.p_value:.3g} ({c.wins} fixed, {c.losses} broken); {tokens:,} teacher tokens: "
            f"{per_million:+.1f} pts per million teacher tokens"
        )
        header = ("lesson kind", "active", "shown", "helped", "hurt")
        table = [
            (kind, *(f"{v[k]:,}" for k in ("active", "shown", "helped", "hurt")))
            for kind, v in on.kinds.items()
        ]
        print_table(
            f"lessons by kind, teacher on ({on.name}; every status counted for shown/helped/hurt)",
            header,
            table,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=None, help="run config (default: the quickstart)")
    parser.add_argument(
        "--optimizers", default=OPTIMIZERS, help="comma-separated tutelage rows ('' for none)"
    )
    parser.add_argument(
        "--baselines", default=",".join(BASELINES), help="comma-separated baseline rows ('' for none)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="loop.rounds for the tutelage rows")
    parser.add_argument(
        "--teacher",
        default="on",
        help="'on', 'off' or 'off,on': rows with the teacher, without it (gold examples only), or both",
    )
    parser.add_argument("--test-size", type=int, default=None, help="held-out test items for every row")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override a.b=c")
    parser.add_argument(
        "--seed", type=int, default=None, help="LabeledFewShot sample seed (default: config seed)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 test items, one tiny round")
    parser.add_argument("--dir", type=Path, default=Path("runs/anchors"), help="output directory")
    parser.add_argument(
        "--out", type=Path, default=None, help="the table as JSON (default: DIR/anchors.json)"
    )
    args = parser.parse_args(argv)

    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    modes = [t.strip() for t in args.teacher.split(",") if t.strip()]
    if not modes or any(t not in ("on", "off") for t in modes):
        parser.error("--teacher takes on, off or off,on")
    teachers = [t == "on" for t in modes]
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        parser.error(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}")
    if (args.rounds is not None and args.rounds < 1) or (args.test_size is not None and args.test_size < 1):
        parser.error("--rounds and --test-size must be positive")
    overrides = [
        *(QUICK if args.quick else ()),
        *([f"loop.rounds={args.rounds}"] if args.rounds else []),
        *([f"suite.test_size={args.test_size}"] if args.test_size else []),
        *args.overrides,
    ]
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("tutelage").setLevel(logging.INFO)
    logging.getLogger("dspy").setLevel(logging.WARNING)  # an optimizer's per-trial lines
    logging.getLogger("dspy.clients.lm").setLevel(
        logging.ERROR
    )  # "truncated at max_tokens": tokens are counted

    started = time.perf_counter()
    try:
        cfg = load_config(args.config, overrides)
    except TutelageError as exc:
        parser.error(str(exc))
    suite = load_suite(cfg.suite)
    seed = cfg.seed if args.seed is None else args.seed
    items = test_items(cfg, suite)
    out: Path = args.dir
    out.mkdir(parents=True, exist_ok=True)
    print(machine_line(cfg))
    print(f"overrides: {' '.join(overrides) or '(none)'}")
    embedder = build_embedder(cfg.memory.embedder)

    # stdout is the report's: DSPy optimizers draw progress bars on sys.stdout, so they go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        rows = run_baselines(cfg, suite, baselines, embedder, out, seed) if baselines else []
        both = len(teachers) > 1
        rows += [
            run_tutelage(o, args.config, overrides, suite, embedder, out, teacher=t, label_teacher=both)
            for o in optimizers
            for t in teachers
        ]
    add_ratios(rows)

    wall = time.perf_counter() - started
    report(rows, items, len(suite.train), wall)
    path = args.out or out / "anchors.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "machine": machine_line(cfg),
                "overrides": overrides,
                "test_items": items,
                "train_size": len(suite.train),
                "rows": [asdict(r) for r in rows],
                "wall_seconds": round(wall, 1),
            },
            indent=2,
        )
    )
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
