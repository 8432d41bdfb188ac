"""The weights node: in a round whose ``loop.schedule`` entry moves the weights, train an adapter.

It trains on the fine-tune sets of the kept rounds plus this one (``train.data`` picks the rows),
from the base model each time, and writes the adapter into the round's candidate program, so dev
judges (program, adapter) together and ``decide`` keeps or rolls back both. A killed training resumes
from its last checkpoint; a finished one is never trained again (its record is on disk).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from tutelage import runfiles
from tutelage.agents.student import StudentProgram
from tutelage.backends.local import embedded_model_path
from tutelage.loop._lesson_nodes import write_sets
from tutelage.loop._nodes import load_program, timed
from tutelage.loop._state import LoopState, RunContext
from tutelage.train import Adapter, trainer
from tutelage.train.datasets import training_rows

__all__ = ["charge", "train_base", "train_weights"]


def train_base(ctx: RunContext) -> str:
    """What the trainer starts from: ``train.base``, else the student's own weights."""
    cfg = ctx.config
    if cfg.train.base:
        return cfg.train.base
    if cfg.train.trainer == "openai" or cfg.student.provider != "local":
        return cfg.student.model
    return str(Path(cfg.student.model_path).expanduser() if cfg.student.model_path else embedded_model_path())


def charge(ctx: RunContext, adapter: Adapter) -> None:
    """One ``trainer`` row in the cost ledger for a training that ran (tokens trained, seconds)."""
    meta = adapter.meta
    ctx.ledger.record("trainer", {"prompt_tokens": meta.get("tokens") or 0}, float(meta.get("seconds") or 0))


def _kept_rounds(state: LoopState) -> list[int]:
    return [row["round"] for row in state.get("rounds", []) if row.get("accepted")]


def _retrieved(program: StudentProgram) -> Callable[[str, str], list[dict[str, Any]]]:
    """Each row's prompt as ``program`` asks it, over this round's memory, its own lessons hidden."""
    return lambda task, task_id: program.request(task, hide=task_id or None)


@timed
def train_weights(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Train this round's adapter and name it in the candidate program (rounds that move weights)."""
    ctx, r = runtime.context, state["round"]
    if ctx.config.loop.moves(r) == "prompt" or not state.get("candidate_path"):
        return {}  # (a weight optimizer's adapter, if compile trained one, stays the round's)
    out_dir = ctx.paths.root / "rounds" / f"round_{r}" / "train"
    record = out_dir / "adapter-record.json"
    candidate = load_program(ctx, str(state["candidate_path"]))
    if record.is_file():  # trained before a kill: never pay for it twice
        done = json.loads(record.read_text())
        adapter = Adapter.from_json(done["adapter"])
        data = done["data"]
    else:
        # This round's rows as they stand before the decision (``finetune_sets`` rewrites them after).
        write_sets(ctx, r)
        rows, data = training_rows(
            ctx.paths,
            [*_kept_rounds(state), r],
            kinds=ctx.config.train.data,
            instructions=candidate.predict.signature.instructions,
            prompt=_retrieved(candidate) if ctx.config.train.prompts == "retrieved" else None,
        )
        if not rows:
            return {"train": {"skipped": f"no training rows of kinds {', '.join(ctx.config.train.data)}"}}
        runfiles.write_text(out_dir / "data.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
        options = {**ctx.config.train.model_dump(), "name": f"{ctx.paths.thread_id}-round-{r}"}
        label = f"round {r}: train weights ({ctx.config.train.trainer}, {len(rows)} rows)"
        ctx.reporter.phase(label, 0)
        adapter = trainer(ctx.config.train.trainer).train(
            train_base(ctx),
            data=out_dir / "data.jsonl",
            out_dir=out_dir,
            seed=ctx.config.seed + r,
            options=options,
            progress=lambda step, total, _: ctx.reporter.update(step, total),
        )
        charge(ctx, adapter)
        runfiles.write_json(record, {"adapter": adapter.to_json(), "data": data})
    candidate.adapter = adapter.to_json()
    meta = json.loads((ctx.paths.root / str(state["candidate_path"])).read_text()).get("meta", {})
    candidate.save_json(ctx.paths.root / str(state["candidate_path"]), **meta)
    return {"train": {"adapter": adapter.to_json(), "data": data}}
