"""Benchmark distilling into the weights: the same test items, seven students, one table.

One loop run (``loop.schedule: [prompt]``: memory and compiled program, today's loop) makes the memory
and the fine-tune sets; LoRA adapters are then trained on that run's kept fine-tune sets with the
``peft`` trainer, and every row is scored on the same held-out test items:

- zero-shot: the instruction alone, base weights;
- memory only: the run's kept program over its memory, base weights;
- weights and memory: LoRA on the run's gold examples and the student's correct answers, each
  prompt holding what the kept program retrieves for it (its own lessons hidden; ``train.prompts:
  retrieved``), served under the kept program and its memory;
- weights only: LoRA on the same rows with bare prompts (instruction and task), no retrieval;
- bare-trained weights and memory: that bare-prompt adapter under the memory (the ablation of
  training on retrieved prompts);
- context-distilled weights: LoRA that also learns the answers the student got right *with* lessons
  as targets of the prompt without them, no retrieval at test;
- whole-train retrieval (k=8): the 8 nearest train items, from a store holding the whole train split.

It prints accuracy with a 95% interval, training examples and seconds, student and teacher calls, and
the paired sign tests of "weights and memory" against "memory only" and against the bare-trained
adapter on the same items. ``--skip-bare`` and ``--skip-context`` leave out the adapters of those rows.

    .venv/bin/python bench/distill.py --quick     # 40 test items, one small round, 8 training steps
    .venv/bin/python bench/distill.py             # 300 test items, the quickstart's 3 rounds

Writes under ``--dir`` (default ``runs/distill-bench``): the run, the adapters, each row's eval journal,
and the table as JSON. Never run it beside another llama.cpp server (2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import tutelage  # before dspy/transformers: sets the offline LiteLLM/HF/telemetry defaults
from tutelage.agents.student import StudentProgram
from tutelage.api import kept_program
from tutelage.backends.local import embedded_model_path
from tutelage.config import load_config
from tutelage.evals.harness import Attempt, load_journal
from tutelage.evals.runner import evaluate
from tutelage.evals.stats import paired_sign_test
from tutelage.memory.location import open_run_memory
from tutelage.rundir import RunPaths
from tutelage.train import trainer
from tutelage.train.datasets import training_rows


def _train(
    run: Path, out: Path, kinds: tuple[str, ...], options: dict[str, Any], seed: int, *, retrieved: bool
) -> Any:
    """An adapter on the kept rounds' fine-tune sets of ``run`` (rows of ``kinds``), trained once.

    ``retrieved``: each prompt is the kept program's request with what it retrieves from the run's
    memory for that row (its own lessons hidden), as the loop's ``train.prompts: retrieved`` does.
    """
    paths = RunPaths(run)
    metrics = json.loads(paths.metrics.read_text())
    kept = [r["round"] for r in metrics["rounds"] if r["accepted"]] or [r["round"] for r in metrics["rounds"]]
    memory = open_run_memory(paths, load_config(paths.config)) if retrieved else None
    program = StudentProgram.load_json(kept_program(paths), memory=memory)
    rows, counts = training_rows(
        paths,
        kept,
        kinds=kinds,
        instructions=program.predict.signature.instructions,
        prompt=(lambda task, task_id: program.request(task, hide=task_id or None)) if retrieved else None,
    )
    out.mkdir(parents=True, exist_ok=True)
    record = out / "adapter-record.json"
    if record.is_file():
        return json.loads(record.read_text())
    (out / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    began = time.perf_counter()
    adapter = trainer("peft").train(
        str(embedded_model_path()),
        data=out / "data.jsonl",
        out_dir=out,
        seed=seed,
        options={**options, "name": out.name},
        progress=lambda step, total, _: print(f"  {out.name}: step {step}/{total}", file=sys.stderr),
    )
    done = {"adapter": adapter.to_json(), "counts": counts, "seconds": round(time.perf_counter() - began, 1)}
    record.write_text(json.dumps(done, indent=2))
    return done


def _variant(run: Path, out: Path, *, adapter: dict[str, Any] | None, retrieval: bool) -> Path:
    """The run's kept program, with another adapter and/or no retrieval, saved as its own JSON."""
    data = json.loads(kept_program(RunPaths(run)).read_text())
    data["adapter"] = adapter
    if not retrieval:
        data.update(k_examples=0, k_strategies=0)
    out.write_text(json.dumps(data, indent=2))
    return out


def _scores(summary: Any) -> dict[str, float]:
    journal: dict[str, Attempt] = load_journal(Path(summary.out) / "journal.jsonl", Attempt)
    return {i: a.score for i, a in journal.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=None, help="a run config (default: the packaged quickstart)")
    parser.add_argument("--dir", default="runs/distill-bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="training steps per adapter")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--run", default=None, help="reuse this finished run instead of running the loop")
    parser.add_argument("--skip-context", action="store_true", help="do not train the context adapter")
    parser.add_argument(
        "--skip-bare", action="store_true", help="do not train the bare-prompt adapter (weights only)"
    )
    args = parser.parse_args(argv)
    root = Path(args.dir)
    test_size = args.test_size or (40 if args.quick else 300)
    quick = ["loop.rounds=1", "loop.batch_size=40", "suite.dev_size=40", "loop.diagnose_max=10"]
    cfg = load_config(
        args.config,
        [
            f"runs_dir={root}",
            "name=run",
            f"suite.test_size={test_size}",
            "loop.schedule=[prompt]",
            *(quick if args.quick else []),
            *args.overrides,
        ],
    )
    steps = args.steps or (8 if args.quick else 60)
    options = {**cfg.train.model_dump(), "max_steps": steps, "batch_size": 2, "gradient_accumulation": 4}
    started = time.perf_counter()
    run = Path(args.run) if args.run else cfg.run_dir
    if (
        not (run / "metrics.json").is_file()
        or json.loads((run / "metrics.json").read_text()).get("test_accuracy", {}).get("after") is None
    ):
        result = tutelage.run(cfg)
        run = result.run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    cost = metrics.get("cost", {})
    loop_calls = {role: cost.get(role, {}).get("calls", 0) for role in ("student", "teacher")}
    adapters = root / "adapters"
    both = _train(run, adapters / "retrieved", ("gold", "correct"), options, cfg.seed, retrieved=True)
    plain = (
        None
        if args.skip_bare
        else _train(run, adapters / "gold-correct", ("gold", "correct"), options, cfg.seed, retrieved=False)
    )
    context = (
        None
        if args.skip_context
        else _train(
            run, adapters / "context", ("gold", "correct", "context"), options, cfg.seed, retrieved=False
        )
    )
    programs = root / "programs"
    programs.mkdir(parents=True, exist_ok=True)
    on_memory = _variant(run, programs / "both.json", adapter=both["adapter"], retrieval=True)
    rows: list[tuple[str, dict[str, Any], Any]] = [
        ("zero-shot", {"baseline": "zero-shot"}, None),
        ("memory only", {"run_dir": run}, None),
        ("weights and memory", {"run_dir": run, "program": on_memory}, both),
    ]
    if plain is not None:
        bare = _variant(run, programs / "weights.json", adapter=plain["adapter"], retrieval=False)
        bare_on_memory = _variant(run, programs / "bare-both.json", adapter=plain["adapter"], retrieval=True)
        rows.insert(2, ("weights only", {"program": bare}, plain))
        rows.append(("bare-trained weights and memory", {"run_dir": run, "program": bare_on_memory}, plain))
    if context is not None:
        variant = _variant(run, programs / "context.json", adapter=context["adapter"], retrieval=False)
        rows.append(("context-distilled weights", {"program": variant}, context))
    rows.append(("whole-train retrieval (k=8)", {"baseline": "retrieval-train", "k": 8}, None))
    table = []
    scores: dict[str, dict[str, float]] = {}
    for name, how, trained in rows:
        summary = evaluate(cfg, split="test", out=root / "evals" / name.replace(" ", "-"), **how)
        scores[name] = _scores(summary)
        table.append(
            {
                "row": name,
                "accuracy": summary.score,
                "low": summary.low,
                "high": summary.high,
                "n": summary.n,
                "train_examples": trained["adapter"]["meta"]["examples"] if trained else 0,
                "train_seconds": trained["seconds"] if trained else 0.0,
                "student_calls": summary.n + (loop_calls["student"] if how.get("run_dir") else 0),
                "teacher_calls": loop_calls["teacher"] if how.get("run_dir") else 0,
            }
        )
    paired = paired_sign_test(scores["memory only"], scores["weights and memory"])
    if "bare-trained weights and memory" in scores:
        ablation = paired_sign_test(scores["bare-trained weights and memory"], scores["weights and memory"])
        said = ablation.describe().replace("dev items", "test items")
        print(f"retrieval-trained vs bare-trained weights, both under the memory: {said}")
    print(f"\nbench/distill.py: {test_size} test items, {time.perf_counter() - started:.0f} s in all")
    heads = ("accuracy", "95% interval", "examples", "train s", "student", "teacher")
    print(f"{'row':30} " + " ".join(f"{h:>{15 if 'interval' in h else 8}}" for h in heads))
    for row in table:
        interval = f"{100 * row['low']:.1f}-{100 * row['high']:.1f}"
        print(
            f"{row['row']:30} {100 * row['accuracy']:7.1f}% {interval:>15} {row['train_examples']:8d} "
            f"{row['train_seconds']:8.0f} {row['student_calls']:8d} {row['teacher_calls']:8d}"
        )
    said = paired.describe().replace("dev items", "test items")
    print(f"weights and memory vs memory only, same items: {said}")
    (root / "table.json").write_text(json.dumps({"rows": table, "paired": said}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
