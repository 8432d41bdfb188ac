"""How good can example retrieval be over a memory? A k-NN label vote of held-out items, no model calls.

For each held-out item, the ``k`` nearest example lessons (by the run's embedder) vote on its label;
the top-1 and majority-vote accuracies, and how often the gold label is among the ``k``, bound what a
student that copies its retrieved demos can reach. Rows:

- whole train: every train item (``--baseline`` retrieval over the whole train split);
- random P%: seeded random subsets of train, the size-matched control for a run's memory;
- with ``RUN_DIR``: the run's active example lessons at its kept round, and as counterfactuals the
  failures alone and every item its rounds attempted (what ``memory.examples`` ``failed`` and
  ``attempted`` would store).

    .venv/bin/python bench/coverage.py                           # quickstart suite: train and random subsets
    .venv/bin/python bench/coverage.py runs/anchors/runs/anchors-fewshot \\
        --items runs/anchors/baselines/zero-shot.jsonl   # a run's memory, on the bench's test items

Only label suites make sense here (the vote compares answers as strings). Embeds once (~30 s for
Banking77's train split on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

import tutelage  # noqa: F401  (first: sets the offline LiteLLM/HF/telemetry defaults)
from tutelage.api import kept_program, load_memory
from tutelage.config import load_config
from tutelage.evals.suites import Task, load_suite
from tutelage.memory.embed import build_embedder
from tutelage.memory.query import LessonFilter
from tutelage.rundir import RunPaths


def unit(vectors: list[list[float]]) -> npt.NDArray[np.float32]:
    m = np.asarray(vectors, dtype=np.float32)
    out: npt.NDArray[np.float32] = m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-12)
    return out


def vote(
    queries: npt.NDArray[np.float32],
    gold: list[str],
    keys: npt.NDArray[np.float32],
    labels: list[str],
    k: int,
) -> tuple[int, int, int]:
    """(top-1 right, majority of k right, gold among the k) over the queries."""
    sims = queries @ keys.T
    top1 = major = within = 0
    for q, row in enumerate(sims):
        near = [labels[j] for j in np.argsort(-row)[:k]]
        top1 += near[0] == gold[q]
        major += Counter(near).most_common(1)[0][0] == gold[q]
        within += gold[q] in near
    return top1, major, within


def attempted_ids(paths: RunPaths, upto: int) -> tuple[set[str], set[str]]:
    """(every attempted train id, those answered wrong at least once) over rounds 1..upto."""
    seen: set[str] = set()
    failed: set[str] = set()
    for r in range(1, upto + 1):
        journal = paths.journal(r, "attempts")
        if journal.exists():
            for line in journal.read_text().splitlines():
                row = json.loads(line)
                seen.add(row["task_id"])
                if row["score"] < 1.0:
                    failed.add(row["task_id"])
    return seen, failed


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", nargs="?", type=Path, help="a run directory (default: suite rows only)")
    parser.add_argument(
        "--config", type=Path, default=None, help="config when no run dir (default: quickstart)"
    )
    parser.add_argument(
        "--items", type=Path, default=None, help="a journal whose task ids are the items to vote on"
    )
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--fractions", default="0.1,0.25,0.5", help="random train subsets, comma-separated")
    args = parser.parse_args(list(argv) if argv is not None else None)

    cfg = load_config(args.run_dir / "config.yaml" if args.run_dir else args.config)
    suite = load_suite(cfg.suite)
    by_id: dict[str, Task] = suite.by_id()
    items = suite.test
    if args.items:
        items = [by_id[json.loads(line)["task_id"]] for line in args.items.read_text().splitlines()]
    embedder = build_embedder(cfg.memory.embedder)
    train = list(suite.train)
    keys = unit(embedder.embed([t.input for t in train]))
    queries = unit(embedder.embed([t.input for t in items]))
    gold = [t.answer for t in items]
    row_of = {t.id: n for n, t in enumerate(train)}
    n = len(items)
    print(f"suite {suite.name}: {n} held-out items, {len(train):,} train items, k={args.k}")
    print(f"{'memory':<34} {'items':>7} {'% train':>8} {'top-1':>7} {'vote':>7} {'gold in k':>10}")

    def row(name: str, ids: Iterable[str]) -> None:
        idx = np.array(sorted({row_of[i] for i in ids if i in row_of}), dtype=int)
        if not len(idx):
            print(f"{name:<34} {0:>7}")
            return
        top1, major, within = vote(queries, gold, keys[idx], [train[j].answer for j in idx], args.k)
        share = len(idx) / len(train)
        print(
            f"{name:<34} {len(idx):>7,} {share:>8.1%} {top1 / n:>7.0%} {major / n:>7.0%} {within / n:>10.0%}"
        )

    row("whole train", row_of)
    for frac in (float(f) for f in args.fractions.split(",") if f.strip()):
        ids = random.Random(cfg.seed).sample(list(row_of), int(frac * len(train)))
        row(f"random {frac:.0%} of train", ids)
    if args.run_dir:
        paths = RunPaths(args.run_dir)
        kept = int(json.loads(paths.metrics.read_text()).get("kept_round") or 0)
        memory = load_memory(args.run_dir, embedder=embedder)
        examples = memory.all(LessonFilter(kind="example", as_of_round=kept))
        row(
            f"run memory (round {kept}, {kept_program(paths).name})",
            (s for x in examples for s in x.provenance.source_task_ids),
        )
        seen, failed = attempted_ids(paths, kept)
        row(f"its failures alone (rounds 1-{kept})", failed)
        row(f"all it attempted (rounds 1-{kept})", seen)


if __name__ == "__main__":
    main()
