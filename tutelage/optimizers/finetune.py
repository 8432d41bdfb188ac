"""``finetune`` and ``better_together``: DSPy's own weight optimizers, training a LoRA adapter here.

``dspy.BootstrapFinetune`` runs the teacher program (the student's program on the teacher model; the
student's own when the teacher is off) on the trainset, keeps the traces the metric passes, and
fine-tunes the student's LM on them through ``lm.finetune``. ``dspy.BetterTogether`` runs a prompt
optimizer (``dspy.BootstrapFewShot``, two bootstrapped demos) and then that, keeping whichever
program scores best on the validation set. Both reach the weights through
``CompileContext.finetune``, a ``tutelage.train.dspy_provider.FinetuneProvider``: the run's trainer
(``train.*``) and the student backend's adapter serving, so no SGLang and no full fine-tune. The
compiled program names its adapter, and dev keeps or rolls back the pair like any round.

DSPy's rows are its own: the predictor's request from the trace, with the program's fixed demos
and without the retrieved lessons (DSPy's trace does not keep per-call demos).
"""

from __future__ import annotations

from typing import Any, ClassVar

import dspy

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.student import StudentProgram
from tutelage.errors import ConfigError, DataError
from tutelage.evals.suites import Task
from tutelage.optimizers.base import CompileContext, Compiled, dspy_examples, float_metric
from tutelage.train import Adapter

__all__ = ["BetterTogether", "BootstrapFinetune", "FinetuneChatAdapter"]


class FinetuneChatAdapter(dspy.ChatAdapter):  # type: ignore[misc]
    """The plain chat turns the student sends, as DSPy's fine-tuning rows.

    ``BootstrapFinetune`` formats its rows with its adapter and accepts only a ``ChatAdapter``; its
    field markers would teach the student a format it is never asked in.
    """

    def format(self, signature: Any, demos: list[dict[str, Any]], inputs: dict[str, Any]) -> Any:
        return PlainChatAdapter().format(signature, demos, inputs)

    def format_assistant_message_content(self, signature: Any, outputs: dict[str, Any], **_: Any) -> str:
        return "\n".join(str(outputs[n]) for n in signature.output_fields if outputs.get(n) is not None)

    def parse(self, signature: Any, completion: str) -> dict[str, Any]:
        parsed: dict[str, Any] = PlainChatAdapter().parse(signature, completion)
        return parsed


def _adapter_of(lm: Any, ctx: CompileContext) -> Adapter | None:
    """The adapter ``lm`` answers with: the provider job whose route it carries, if any."""
    for job in reversed(getattr(ctx.finetune, "jobs", [])):
        route = job.route
        if route is None or job.adapter is None:
            continue
        body = (getattr(lm, "kwargs", {}) or {}).get("extra_body") or {}
        named = route.model is None or str(lm.model).endswith(route.model)
        carried = all(body.get(k) == v for k, v in route.body.items())
        if named and carried and (route.model is not None or route.body):
            adapter: Adapter = job.adapter
            return adapter
    return None


def _prepared(student: StudentProgram, ctx: CompileContext) -> tuple[StudentProgram, StudentProgram | None]:
    if ctx.finetune is None:
        raise ConfigError(
            "this optimizer trains the student's weights, and the run has no fine-tuning provider "
            "(a train.trainer whose adapters the student's backend serves)"
        )
    program = student.deepcopy()
    program.predict.lm = ctx.student_lm.copy()
    program.predict.lm.provider = ctx.finetune
    teacher = None
    if ctx.teacher_lm is not None:
        teacher = student.deepcopy()
        teacher.predict.lm = ctx.teacher_lm
    return program, teacher


def _finished(
    compiled: StudentProgram, student: StudentProgram, ctx: CompileContext, **trial: Any
) -> Compiled:
    adapter = _adapter_of(compiled.predict.lm, ctx)
    compiled.predict.lm = None  # the program JSON names its adapter; the run serves it
    compiled.adapter = adapter.to_json() if adapter is not None else student.adapter
    rows = adapter.meta.get("examples") if adapter is not None else None
    return Compiled(compiled, [{**trial, "adapter": adapter.name if adapter else None, "rows": rows}])


class BootstrapFinetune:
    name: ClassVar[str] = "finetune"

    def compile(
        self, student: StudentProgram, *, trainset: list[Task], valset: list[Task], ctx: CompileContext
    ) -> Compiled:
        program, teacher = _prepared(student, ctx)
        optimizer = dspy.BootstrapFinetune(
            metric=float_metric(ctx.metric), adapter=FinetuneChatAdapter(), num_threads=max(1, ctx.threads)
        )
        try:
            with dspy.context(adapter=PlainChatAdapter()):
                compiled = optimizer.compile(program, trainset=dspy_examples(trainset), teacher=teacher)
        except DataError as exc:  # no trace passed the metric: nothing to train, the program stands
            return Compiled(student.deepcopy(), [{"n": len(trainset), "adapter": None, "skipped": str(exc)}])
        return _finished(compiled, student, ctx, n=len(trainset))


class BetterTogether:
    name: ClassVar[str] = "better_together"

    def __init__(self, strategy: str = "p -> w") -> None:
        self.strategy = strategy

    def compile(
        self, student: StudentProgram, *, trainset: list[Task], valset: list[Task], ctx: CompileContext
    ) -> Compiled:
        program, teacher = _prepared(student, ctx)
        metric = float_metric(ctx.metric)
        optimizer = dspy.BetterTogether(
            metric=metric,
            p=dspy.BootstrapFewShot(
                metric=metric, max_bootstrapped_demos=2, max_labeled_demos=0, max_rounds=1
            ),
            w=dspy.BootstrapFinetune(
                metric=metric, adapter=FinetuneChatAdapter(), num_threads=max(1, ctx.threads)
            ),
        )
        with dspy.context(lm=ctx.student_lm, adapter=PlainChatAdapter()):
            compiled = optimizer.compile(
                program,
                trainset=dspy_examples(trainset),
                valset=dspy_examples(valset),
                teacher=teacher,
                # BootstrapFewShot takes one teacher module, not BetterTogether's list of them
                optimizer_compile_args={"p": {"teacher": teacher}} if teacher is not None else None,
                strategy=self.strategy,
                num_threads=max(1, ctx.threads),
                seed=ctx.seed,
            )
        scores = [
            {"strategy": c.get("strategy") or "original", "score": c.get("score")}
            for c in getattr(compiled, "candidate_programs", [])
        ]
        failed = bool(getattr(compiled, "flag_compilation_error_occurred", False))  # it kept the best so far
        return _finished(compiled, student, ctx, n=len(trainset), candidates=scores, step_failed=failed)
