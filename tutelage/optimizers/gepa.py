"""``gepa``: dspy.GEPA whose reflection writes lessons: the teacher's strategies go into the memory,
and each new instruction is the incumbent plus the active strategies most relevant to its failures.

The metric's feedback on a wrong answer is the teacher's diagnosis (``ctx.feedback``); a right answer
gets a fixed line and no teacher call. A teacher reply that does not parse adds nothing; only a
systemic failure (endpoint down, budget spent) raises, after the search has stopped calling models.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import dspy

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.signatures import Reflect
from tutelage.agents.student import StudentProgram
from tutelage.agents.teacher import parse_reply
from tutelage.errors import ConfigError
from tutelage.evals.graders import feedback_for
from tutelage.evals.harness import Attempt
from tutelage.evals.suites import Task
from tutelage.memory.lesson import Lesson
from tutelage.memory.query import LessonFilter
from tutelage.optimizers._guard import Breaker, Guarded
from tutelage.optimizers.base import CompileContext, Compiled, dspy_examples

__all__ = ["CORRECT", "RULES", "Gepa", "LessonProposer", "compose", "split_rules"]

CORRECT = "Correct."
RULES = "\n\nRules learned from past mistakes:\n"

# Small teachers follow a format only when shown one; this demo is about no suite in particular.
_DEMO = (
    "Task: What is the capital of Australia?\nStudent answer: Sydney\n"
    "Feedback: The correct answer is Canberra. The student named the best-known city.",
    "DIAGNOSIS: The student answered with the most familiar name instead of the one asked for.\n"
    "STRATEGY: Answer exactly what the question asks, not the most familiar related name.",
)


def compose(base: str, rules: Sequence[str]) -> str:
    """An instruction: ``base``, then the rules as a bulleted block (none: ``base`` alone)."""
    return base if not rules else base + RULES + "\n".join(f"- {r}" for r in rules)


def split_rules(instruction: str) -> tuple[str, list[str]]:
    """The inverse of ``compose``: the base instruction and the rules appended to it."""
    base, _, block = instruction.partition(RULES)
    return base, [line[2:].strip() for line in block.splitlines() if line.startswith("- ")]


def feedback_metric(ctx: CompileContext, breaker: Breaker | None = None) -> Callable[..., dspy.Prediction]:
    """GEPA's metric: the suite's score, and the teacher's diagnosis of a wrong answer as feedback.

    The teacher is asked only when GEPA asks for feedback (``pred_name`` set), once per distinct
    (task, answer) of the compile.
    """
    guard = breaker or Breaker()
    said: dict[tuple[str, str], str] = {}

    def metric(
        gold: dspy.Example,
        pred: dspy.Prediction,
        trace: Any = None,
        pred_name: Any = None,
        pred_trace: Any = None,
    ) -> dspy.Prediction:
        answer = str(getattr(pred, "answer", "") or "")
        score = ctx.metric(answer, str(gold.answer))
        if score >= 1.0:
            return dspy.Prediction(score=score, feedback=CORRECT)
        if pred_name is None:  # scoring only: GEPA reads feedback from the reflection call alone
            return dspy.Prediction(score=score, feedback="")
        task = Task(id=str(gold.get("task_id", "")), input=str(gold.task), answer=str(gold.answer))
        if (task.id, answer) not in said:
            guard.check()
            raw = str(getattr(pred, "raw", "") or "")
            attempt = Attempt(
                task.id, answer, score, list(getattr(pred, "lesson_ids", []) or []), raw=raw or None
            )
            try:
                said[task.id, answer] = ctx.feedback(task, attempt).strip()
            except Exception as exc:
                if (err := guard.trip(exc, role="teacher")) is not None:
                    raise err from None
                said[task.id, answer] = ""
        # The grader says what it read and why that is wrong; the teacher says what to do about it.
        graded = feedback_for(ctx.metric, answer, task.answer)
        return dspy.Prediction(score=score, feedback=f"Grader: {graded}. {said[task.id, answer]}".strip())

    return metric


class LessonProposer:
    """GEPA's ``instruction_proposer`` (its ProposalFn protocol), reading and writing the lesson memory.

    From the failures in the reflective dataset it asks the teacher for general strategies
    (``DIAGNOSIS:``/``STRATEGY:`` lines), writes them to ``ctx.memory`` as ``strategy`` lessons tagged
    ``gepa`` through the run's admission path (leakage guard, verification), and returns the
    incumbent's base instruction plus the ``k`` active strategies most relevant to those failures.
    Without a memory it appends the parsed strategies (the last ``k`` kept). A component whose
    instruction would not change is left out of the reply, so GEPA spends no metric calls on it.
    ``records`` holds one row per proposal.
    """

    def __init__(
        self,
        ctx: CompileContext,
        *,
        tasks: Sequence[Task] = (),
        k: int = 3,
        max_failures: int = 5,
        breaker: Breaker | None = None,
    ) -> None:
        self.ctx = ctx
        self.k = k
        self.max_failures = max_failures
        self.breaker = breaker or Breaker()
        self.ids = {t.input: t.id for t in tasks}
        self.predict = dspy.Predict(Reflect)
        self.predict.demos = [dspy.Example(failures=_DEMO[0], reply=_DEMO[1])]
        self.records: list[dict[str, Any]] = []

    def __call__(
        self,
        candidate: dict[str, str],
        reflective_dataset: Mapping[str, Sequence[Mapping[str, Any]]],
        components_to_update: list[str],
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in components_to_update:
            rows = [r for r in reflective_dataset.get(name, ()) if r.get("Feedback") != CORRECT]
            if not rows:
                continue
            text = self._propose(candidate[name], rows[: self.max_failures])
            if text != candidate[name]:
                out[name] = text
        return out

    def _propose(self, current: str, rows: Sequence[Mapping[str, Any]]) -> str:
        failures = "\n\n".join(_render(r) for r in rows)
        reply, error = self._ask(failures)
        parsed, diagnosis, strategies = parse_reply(reply)
        # A small teacher may copy the format demo's rule: that is no lesson about these failures.
        strategies = [s for s in dict.fromkeys(strategies) if s not in _DEMO[1]]
        sources = tuple(dict.fromkeys(i for r in rows if (i := self.ids.get(_task(r)))))
        added = self._remember(strategies, diagnosis, self._hash(failures), sources)
        base, shown = split_rules(current)
        rules = self._rules("\n".join([failures, *strategies]), shown, strategies)
        text = compose(base, rules)
        self.records.append(
            {
                "kind": "proposal",
                "failures": len(rows),
                "parsed": parsed,
                "strategies": strategies,
                "lessons_added": added,
                "rules": rules,
                "fallback": error or (None if strategies else "no usable strategy in the teacher's reply"),
                "unchanged": text == current,
                **({} if strategies else {"reply": reply[:300]}),
            }
        )
        return text

    def _ask(self, failures: str) -> tuple[str, str | None]:
        self.breaker.check()
        try:
            with dspy.context(lm=self.ctx.teacher_lm, adapter=PlainChatAdapter()):
                return str(self.predict(failures=failures).reply), None
        except Exception as exc:
            if (err := self.breaker.trip(exc, role="teacher")) is not None:
                raise err from None
            return "", f"{exc.__class__.__name__}: {str(exc)[:160]}"

    def _hash(self, failures: str) -> str:
        demos = [dict(d) for d in self.predict.demos]
        blob = json.dumps([self.predict.signature.instructions, demos, failures], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def _remember(
        self, strategies: list[str], diagnosis: str, prompt_hash: str, sources: tuple[str, ...]
    ) -> list[str]:
        """Write the strategies through the run's admission path; the ids now active."""
        ctx = self.ctx
        if ctx.memory is None or not strategies:
            return []
        lessons = []
        for text in strategies:
            lesson = Lesson.make(
                kind="strategy",
                text=text,
                round=ctx.round,
                teacher_model=ctx.teacher_model,
                diagnosis=diagnosis,
                prompt_hash=prompt_hash,
                scope=ctx.scope,
                tags=("gepa",),
                reason="written by GEPA's reflection",
            )
            provenance = lesson.provenance.model_copy(update={"source_task_ids": sources})
            lessons.append(lesson.model_copy(update={"provenance": provenance}))
        return ctx.write_lessons(lessons)

    def _rules(self, query: str, shown: list[str], fresh: list[str]) -> list[str]:
        memory = self.ctx.memory
        if memory is None:
            return list(dict.fromkeys([*shown, *fresh]))[-self.k :] if self.k else []
        where = LessonFilter(scope=self.ctx.scope)
        return [x.text for x in memory.search(query, kind="strategy", k=self.k, where=where)]


def _task(row: Mapping[str, Any]) -> str:
    inputs = row.get("Inputs")
    return str(inputs.get("task", "")) if isinstance(inputs, Mapping) else ""


def _render(row: Mapping[str, Any]) -> str:
    outputs = row.get("Generated Outputs")
    answer = outputs.get("answer", "") if isinstance(outputs, Mapping) else outputs
    return (
        f"Task: {_task(row)[:400]}\nStudent answer: {str(answer)[:200] or '(no answer)'}\n"
        f"Feedback: {str(row.get('Feedback', ''))[:400]}"
    )


def _trial_rows(best: Any, proposer: LessonProposer) -> list[dict[str, Any]]:
    result = best.detailed_results
    rows: list[dict[str, Any]] = [
        {
            "kind": "candidate",
            "candidate": i,
            "instruction": program.predictors()[0].signature.instructions,
            "score": round(float(result.val_aggregate_scores[i]), 4),
            "parents": list(result.parents[i]),
            "found_at_metric_calls": result.discovery_eval_counts[i],
        }
        for i, program in enumerate(result.candidates)
    ]
    summary = {
        "kind": "summary",
        "metric_calls": result.total_metric_calls,
        "full_evals": result.num_full_val_evals,
        "chosen": result.best_idx,
        "proposals": len(proposer.records),
        "fallbacks": sum(1 for r in proposer.records if r["fallback"]),
    }
    return [*proposer.records, *rows, summary]


class Gepa:
    """``dspy.GEPA`` with the teacher as reflection model and the lesson memory as its notebook.

    Budgeted by ``config.metric_calls`` (student rollouts scored), seeded with ``ctx.seed``. GEPA's own
    ``log_dir`` is not used: it checkpoints its state with pickle, and a compile must leave only JSON.

    Settings come from ``loop.gepa`` (``k_rules``: strategies appended to a proposed instruction;
    ``minibatch``: failures reflected on per step; ``max_failures``: failures per proposal); the
    student is scored with ``ctx.threads`` concurrent calls (the student role's ``concurrency``).

    Example:
        >>> compiled = Gepa().compile(program, trainset=train, valset=val, ctx=ctx)  # doctest: +SKIP
        >>> print(compiled.program.predict.signature.instructions)  # doctest: +SKIP
    """

    name: ClassVar[str] = "gepa"

    def compile(
        self, student: StudentProgram, *, trainset: list[Task], valset: list[Task], ctx: CompileContext
    ) -> Compiled:
        if ctx.teacher_lm is None:
            raise ConfigError("loop.optimizer gepa reflects with the teacher, and the teacher is off")
        settings = ctx.config.gepa
        valset = valset or trainset
        breaker = Breaker()
        proposer = LessonProposer(
            ctx,
            tasks=[*trainset, *valset],
            k=settings.k_rules,
            max_failures=settings.max_failures,
            breaker=breaker,
        )
        optimizer = dspy.GEPA(
            metric=feedback_metric(ctx, breaker),
            max_metric_calls=ctx.config.metric_calls,
            reflection_lm=ctx.teacher_lm,
            instruction_proposer=proposer,
            reflection_minibatch_size=min(settings.minibatch, len(trainset)),
            use_merge=False,  # one instruction: there is nothing to merge across candidates
            num_threads=max(1, ctx.threads),
            track_stats=True,
            seed=ctx.seed,
        )
        with dspy.context(lm=ctx.student_lm):
            best = optimizer.compile(
                Guarded(student.deepcopy(), breaker),
                trainset=dspy_examples(trainset),
                valset=dspy_examples(valset),
            )
        breaker.check()
        program: StudentProgram = best.program
        program.instructions = program.predict.signature.instructions
        return Compiled(program, _trial_rows(best, proposer))
