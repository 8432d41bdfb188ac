"""The compile node: run the configured optimizer on the search items, save the program it compiles.

The search items (train items never written to memory) split into the optimizer's trainset and a
distinct validation set (``loop.val_size``). Every model call made while compiling is recorded in
``rounds/round_N/compile-calls.jsonl`` and replayed from it when a killed compile resumes, so the
resumed compile pays for nothing twice and makes the same choices. Lessons an optimizer writes (GEPA's
strategies) take the loop's admission path: leakage guard, then ``memory.verify``.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from tutelage.agents.student import StudentProgram
from tutelage.agents.teacher import Teacher
from tutelage.backends import CallJournal, replayed
from tutelage.config import WEIGHT_OPTIMIZERS
from tutelage.errors import ConfigError
from tutelage.evals.harness import Attempt
from tutelage.evals.suites import Task
from tutelage.loop._lesson_nodes import candidate_check
from tutelage.loop._nodes import _evaluate, _shuffled_train, load_program, timed
from tutelage.loop._nodes import student_lm as lm_for
from tutelage.loop._state import LoopState, RunContext
from tutelage.loop._train_node import charge, train_base
from tutelage.memory.lesson import Lesson
from tutelage.optimizers import CompileContext, build_optimizer
from tutelage.train import trainer
from tutelage.train.dspy_provider import FinetuneProvider

__all__ = ["compile_program"]


def _finetune_provider(ctx: RunContext, r: int) -> FinetuneProvider:
    if ctx.adapters is None:
        raise ConfigError(
            f"loop.optimizer {ctx.config.loop.optimizer} trains adapters, and student.provider "
            f"{ctx.config.student.provider!r} cannot serve them"
        )
    return FinetuneProvider(
        trainer(ctx.config.train.trainer),
        base=train_base(ctx),
        host=ctx.adapters,
        out_dir=ctx.paths.root / "rounds" / f"round_{r}" / "optimizer" / "finetune",
        options=ctx.config.train.model_dump(),
        seed=ctx.config.seed + r,
        name=f"{ctx.paths.thread_id}-round-{r}",
        progress=lambda step, total, _: ctx.reporter.update(step, total),
        on_trained=lambda adapter: charge(ctx, adapter),
    )


@timed
def compile_program(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Run the configured DSPy optimizer; save the program the student uses next round as JSON."""
    ctx, r = runtime.context, state["round"]
    loop = ctx.config.loop
    incumbent = load_program(ctx, state["program_path"])
    path = ctx.paths.program(r)
    if loop.moves(r) == "weights":  # this round moves the weights only: the incumbent's program
        incumbent.save_json(path, round=r, optimizer="none", trials=[])
        return {"candidate_path": str(path.relative_to(ctx.paths.root)), "k_examples": incumbent.k_examples}
    search = _shuffled_train(ctx)[-loop.search_size :]
    val = min(loop.validation_size, len(search) - 1)
    trainset, valset = search[: len(search) - val], search[len(search) - val :]
    journal = CallJournal(ctx.paths.journal(r, "compile-calls"))
    student_lm = replayed(lm_for(ctx, incumbent), journal)
    teacher_lm = replayed(ctx.teacher_lm, journal) if ctx.teacher_lm is not None else None

    def score(program: StudentProgram, tasks: list[Task], tag: str) -> float:
        journal = ctx.paths.journal(r, f"compile-{tag}")
        return _evaluate(ctx, program, tasks, journal, f"round {r}: compile ({tag})")

    teacher = Teacher(ctx.suite.teacher_demo)

    def feedback(task: Task, attempt: Attempt) -> str:
        if teacher_lm is None:
            return ""
        diag = teacher.diagnose(task, attempt, lm=teacher_lm)
        return diag.diagnosis or diag.raw or (diag.error or "")

    def admit(lessons: list[Lesson]) -> list[str]:
        check = candidate_check(ctx, state, "verify the optimizer's lessons")
        return ctx.admission.admit(ctx.memory, lessons, round=r, check=check).active

    optimizer = build_optimizer(loop.optimizer)
    compile_ctx = CompileContext(
        student_lm=student_lm,
        teacher_lm=teacher_lm,
        metric=ctx.suite.metric,
        score=score,
        feedback=feedback,
        config=loop,
        memory=ctx.memory,
        seed=ctx.config.seed + r,
        round=r,
        scope=ctx.suite.name,
        teacher_model=ctx.config.teacher.model,
        work_dir=ctx.paths.root / "rounds" / f"round_{r}" / "optimizer",
        threads=ctx.config.student.concurrency,
        admit=admit,
    )
    if loop.optimizer in WEIGHT_OPTIMIZERS:  # DSPy's weight optimizers train through the run's trainer
        compile_ctx.finetune = _finetune_provider(ctx, r)
    compiled = optimizer.compile(incumbent, trainset=trainset, valset=valset, ctx=compile_ctx)
    if loop.optimizer not in WEIGHT_OPTIMIZERS:  # the weights move in train_weights, not here
        compiled.program.adapter = incumbent.adapter
    compiled.program.save_json(path, round=r, optimizer=optimizer.name, trials=compiled.trials)
    update: dict[str, Any] = {
        "candidate_path": str(path.relative_to(ctx.paths.root)),
        "k_examples": compiled.program.k_examples,
    }
    adapter = compiled.program.adapter
    if loop.optimizer in WEIGHT_OPTIMIZERS and adapter is not None and adapter != incumbent.adapter:
        # reported as the round's weights training (metrics.json, the report, the round line)
        update["train"] = {"adapter": adapter, "data": {"dspy": adapter["meta"].get("examples", 0)}}
    return update
