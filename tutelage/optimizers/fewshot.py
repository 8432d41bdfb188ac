"""``fewshot``: choose how many lessons of each kind the student sees, by measured accuracy.

Tries every policy of ``search_policies`` (examples shown, strategies shown, whether the teacher's
synthetic and worked examples may be among the examples), or else every (examples, strategies) pair of
``search_k`` x ``search_strategies``, on a train minibatch
whose items are never written to memory (the trainset and the valset together: nothing is learned
from them, they only score), and keeps the best; ties go to fewer lessons (a shorter, cheaper
prompt). An empty list keeps the program's current setting for that kind.
"""

from __future__ import annotations

from typing import ClassVar

from tutelage.agents.student import StudentProgram
from tutelage.evals.suites import Task
from tutelage.optimizers.base import CompileContext, Compiled

__all__ = ["FewShot"]


class FewShot:
    name: ClassVar[str] = "fewshot"

    def compile(
        self, student: StudentProgram, *, trainset: list[Task], valset: list[Task], ctx: CompileContext
    ) -> Compiled:
        grid = sorted(
            _policies(student, ctx),
            key=lambda p: (p[0] + p[1], p[2], p),  # ties: fewer lessons, gold only
        )
        items = [*trainset, *valset]
        best, best_score, trials = student, -1.0, []
        for k, s, teacher in grid:
            candidate = student.with_policy(k_examples=k, k_strategies=s, teacher_examples=teacher)
            tag = f"k{k}" + (f"-s{s}" if s else "") + ("" if teacher else "-gold")
            value = ctx.score(candidate, items, tag)
            trials.append(
                {
                    "k_examples": k,
                    "k_strategies": s,
                    "teacher_examples": teacher,
                    "score": value,
                    "n": len(items),
                }
            )
            if value > best_score:
                best, best_score = candidate, value
        return Compiled(best, trials)


def _policies(student: StudentProgram, ctx: CompileContext) -> set[tuple[int, int, bool]]:
    """``loop.search_policies`` as given, else the grid ``search_k`` x ``search_strategies``."""
    if ctx.config.search_policies:
        return {(p.k_examples, p.k_strategies, p.teacher_examples) for p in ctx.config.search_policies}
    depths = ctx.config.search_k or (student.k_examples,)
    strategies = ctx.config.search_strategies or (student.k_strategies,)
    if ctx.memory is not None and not ctx.memory.count(kind="strategy", status="active"):
        strategies = (0,)  # nothing to show yet (or the teacher is off): no prompt to measure
    return {(k, s, student.teacher_examples) for k in depths for s in strategies}
