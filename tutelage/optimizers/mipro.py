"""``mipro``: dspy.MIPROv2 with the teacher proposing instructions and the student scoring them.

Instruction-only by default: the student's demos come from retrieval, so no fixed demos are
bootstrapped. A proposal the teacher botches (an error, an empty or two-word reply) falls back to
the incumbent instruction and is recorded in the trials; only a systemic failure (endpoint down,
budget spent) raises, after the search has stopped calling models.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import dspy
from dspy.propose.grounded_proposer import TIPS, GroundedProposer
from dspy.teleprompt.mipro_optimizer_v2 import BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.student import StudentProgram
from tutelage.errors import ConfigError
from tutelage.evals.suites import Task
from tutelage.optimizers._guard import Breaker, Guarded
from tutelage.optimizers.base import CompileContext, Compiled, dspy_examples, float_metric

__all__ = ["Mipro"]


def _unusable(text: str) -> str | None:
    """Why a proposed instruction cannot be a candidate, or None if it can."""
    return "empty or too short" if len(text.split()) < 3 else None


class _MIPROv2(dspy.MIPROv2):
    """MIPROv2 whose proposal step survives a bad teacher and whose search stops on a dead endpoint."""

    def __init__(self, *, breaker: Breaker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.breaker = breaker
        self.proposals: list[dict[str, Any]] = []
        self.candidates: list[str] = []
        self.searched = False

    def _bootstrap_fewshot_examples(
        self, program: Any, trainset: list[Any], seed: int, teacher: Any, **kw: Any
    ) -> Any:
        if kw["max_bootstrapped_demos"] == 0 and kw["max_labeled_demos"] == 0:
            return None  # instruction-only: no student calls to build demos nobody will use
        return super()._bootstrap_fewshot_examples(program, trainset, seed, teacher, **kw)

    def _propose_instructions(
        self,
        program: Any,
        trainset: list[Any],
        demo_candidates: Any,
        view_data_batch_size: int,
        program_aware_proposer: bool,
        data_aware_proposer: bool,
        tip_aware_proposer: bool,
        fewshot_aware_proposer: bool,
        num_instruct_candidates: int,
    ) -> dict[int, list[str]]:
        proposer = GroundedProposer(
            program=program,
            trainset=trainset,
            prompt_model=self.prompt_model,
            view_data_batch_size=view_data_batch_size,
            program_aware=program_aware_proposer,
            use_dataset_summary=data_aware_proposer,
            use_task_demos=fewshot_aware_proposer,
            num_demos_in_context=BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT,
            use_tip=tip_aware_proposer,
            set_tip_randomly=tip_aware_proposer,
            use_instruct_history=False,
            set_history_randomly=False,
            rng=self.rng,
            init_temperature=self.init_temperature,
        )
        self.breaker.check()  # the data summary swallows errors; a dead teacher must not pass as one
        out: dict[int, list[str]] = {}
        for i, predictor in enumerate(program.predictors()):
            texts = [predictor.signature.instructions]
            for n in range(1, num_instruct_candidates):
                tip = self.rng.choice(list(TIPS)) if tip_aware_proposer else "none"
                proposer.use_tip = bool(TIPS[tip])
                sets = len(demo_candidates[i]) if demo_candidates else 1
                try:
                    text = str(
                        proposer.propose_instruction_for_predictor(
                            program=program,
                            predictor=predictor,
                            pred_i=i,
                            demo_candidates=demo_candidates,
                            demo_set_i=n % sets,
                            trial_logs={},
                            tip=TIPS[tip] or None,
                        )
                    ).strip()
                    problem = _unusable(text)
                except Exception as exc:
                    if (err := self.breaker.trip(exc, role="teacher")) is not None:
                        raise err from None
                    text, problem = "", f"{exc.__class__.__name__}: {str(exc)[:160]}"
                if problem is None and text not in texts:
                    texts.append(text)
                self.proposals.append(
                    {
                        "kind": "proposal",
                        "proposal": n,
                        "tip": tip,
                        "candidate": texts.index(text) if problem is None else 0,
                        "fallback": problem,
                        **({"reply": text[:300]} if problem else {}),
                    }
                )
            out[i] = texts
        self.candidates = out.get(0, [])
        return out

    def _optimize_prompt_parameters(
        self, program: Any, instruction_candidates: dict[int, list[str]], demo_candidates: Any, *args: Any
    ) -> Any:
        if not demo_candidates and all(len(c) == 1 for c in instruction_candidates.values()):
            return program.deepcopy()  # every proposal fell back: nothing to search
        self.searched = True
        return super()._optimize_prompt_parameters(program, instruction_candidates, demo_candidates, *args)

    def _perform_full_evaluation(
        self,
        trial_num: int,
        adjusted_num_trials: int,
        param_score_dict: dict[str, Any],
        fully_evaled_param_combos: dict[str, Any],
        evaluate: Any,
        valset: list[Any],
        trial_logs: dict[int, Any],
        total_eval_calls: int,
        score_data: list[Any],
        best_score: float,
        best_program: Any,
        *rest: Any,
    ) -> Any:
        # With few candidates, every one the minibatches tried may be fully scored already; MIPROv2
        # then raises "No valid program found". There is nothing left to score: keep the best.
        if all(key in fully_evaled_param_combos for key in param_score_dict):
            return best_score, best_program, total_eval_calls
        return super()._perform_full_evaluation(
            trial_num,
            adjusted_num_trials,
            param_score_dict,
            fully_evaled_param_combos,
            evaluate,
            valset,
            trial_logs,
            total_eval_calls,
            score_data,
            best_score,
            best_program,
            *rest,
        )


def _trial_rows(optimizer: _MIPROv2, best: Any, trials: int) -> list[dict[str, Any]]:
    """What was tried: each proposal, each candidate with its scores, and a summary."""
    candidates = optimizer.candidates
    rows: list[dict[str, Any]] = [
        {
            "kind": "candidate",
            "candidate": i,
            "source": "incumbent" if i == 0 else "teacher",
            "instruction": text,
            "minibatch_scores": [],
            "full_scores": [],
        }
        for i, text in enumerate(candidates)
    ]
    calls = 0
    for _, log in sorted(getattr(best, "trial_logs", {}).items()):
        calls = max(calls, int(log.get("total_eval_calls_so_far", 0)))
        full = "full_eval_score" in log
        program, score = (
            (log.get("full_eval_program"), log.get("full_eval_score"))
            if full
            else (log.get("mb_program"), log.get("mb_score"))
        )
        if program is None or score is None:
            continue
        text = program.predictors()[0].signature.instructions
        if text in candidates:
            key = "full_scores" if full else "minibatch_scores"
            rows[candidates.index(text)][key].append(round(float(score) / 100, 4))
    chosen = best.predictors()[0].signature.instructions
    summary = {
        "kind": "summary",
        "trials": trials if optimizer.searched else 0,
        "metric_calls": calls,
        "fallbacks": sum(1 for p in optimizer.proposals if p["fallback"]),
        "chosen": candidates.index(chosen) if chosen in candidates else None,
    }
    return [*optimizer.proposals, *rows, summary]


class Mipro:
    """``dspy.MIPROv2``: the teacher proposes ``candidates - 1`` instructions, the student scores them.

    The search runs ``config.trials`` Bayesian trials, seeded with ``ctx.seed``; a valset of 8 or more
    items is searched on minibatches of a third of it (at least 4), with periodic full evaluations.
    Both models see plain chat turns (``PlainChatAdapter``), so any reply of three words or more is a
    proposal; a proposal that repeats one joins it.

    Settings come from ``loop.mipro`` (``candidates``: instructions searched, the incumbent included,
    default two thirds of the trials; ``max_demos``: fixed demos bootstrapped from the student's own
    traces, 0 for instruction-only; ``data_aware``: the teacher summarises the train set first;
    ``temperature``: the teacher's, for proposals); the student is scored with ``ctx.threads``
    concurrent calls (the student role's ``concurrency``).

    Example:
        >>> compiled = Mipro().compile(program, trainset=train, valset=val, ctx=ctx)  # doctest: +SKIP
        >>> compiled.program.predict.signature.instructions  # doctest: +SKIP
    """

    name: ClassVar[str] = "mipro"

    def compile(
        self, student: StudentProgram, *, trainset: list[Task], valset: list[Task], ctx: CompileContext
    ) -> Compiled:
        if ctx.teacher_lm is None:
            raise ConfigError("loop.optimizer mipro proposes with the teacher, and the teacher is off")
        settings = ctx.config.mipro
        trials = ctx.config.trials
        valset = valset or trainset
        n = len(valset)
        batch = max(4, math.ceil(n / 3))
        minibatch = n >= 8
        breaker = Breaker()
        optimizer = _MIPROv2(
            breaker=breaker,
            metric=float_metric(ctx.metric),
            prompt_model=ctx.teacher_lm,
            task_model=ctx.student_lm,
            max_bootstrapped_demos=settings.max_demos,
            max_labeled_demos=0,
            auto=None,
            num_candidates=settings.candidates or max(2, math.ceil(trials * 2 / 3)),
            num_threads=max(1, ctx.threads),
            seed=ctx.seed,
            init_temperature=settings.temperature,
            track_stats=True,
            log_dir=str(ctx.work_dir / "mipro") if ctx.work_dir else None,
        )
        # The teacher's proposals go through the plain adapter too: any non-empty reply is a proposal.
        with dspy.context(adapter=PlainChatAdapter()):
            best = optimizer.compile(
                Guarded(student.deepcopy(), breaker),
                trainset=dspy_examples(trainset),
                valset=dspy_examples(valset),
                num_trials=trials,
                minibatch=minibatch,
                minibatch_size=batch if minibatch else n,
                minibatch_full_eval_steps=max(1, min(5, trials // 2)),
                program_aware_proposer=False,
                data_aware_proposer=settings.data_aware,
                fewshot_aware_proposer=settings.max_demos > 0,
                tip_aware_proposer=True,
                view_data_batch_size=10,
            )
        breaker.check()
        program: StudentProgram = best.program
        program.instructions = program.predict.signature.instructions
        return Compiled(program, _trial_rows(optimizer, best, trials))
