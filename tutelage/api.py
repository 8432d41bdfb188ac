"""The Python API: run or resume the loop, and load a trained student into your own code.

Example:
    >>> import tutelage
    >>> result = tutelage.run(tutelage.load_config(None, ["loop.rounds=1"]))  # doctest: +SKIP
    >>> with tutelage.Student.load(result.run_dir) as student:  # doctest: +SKIP
    ...     student("I still have not received my new card")
    'card_arrival'
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from types import TracebackType
from typing import Any

import dspy

from tutelage.agents.student import StudentProgram, make_solver
from tutelage.backends import build_lm, open_endpoints, routed
from tutelage.config import RunConfig, load_config
from tutelage.errors import ConfigError, RunDirError
from tutelage.evals.graders import JudgeGrader
from tutelage.evals.report import write_run_report
from tutelage.evals.suites import Task, bind_judge, load_suite
from tutelage.loop.progress import Reporter
from tutelage.loop.runner import RunResult, resume_run, start_run
from tutelage.memory.embed import Embedder
from tutelage.memory.location import open_run_memory
from tutelage.memory.store import LessonStore
from tutelage.rundir import RunPaths
from tutelage.train import Adapter

__all__ = ["RunResult", "Student", "load_memory", "resume", "run"]


def run(
    config: RunConfig | str | Path | None = None,
    *,
    reporter: Reporter | None = None,
    embedder: Embedder | None = None,
) -> RunResult:
    """Run the self-improvement loop; ``config`` is a RunConfig, a YAML path, or None for the quickstart."""
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    return start_run(cfg, reporter=reporter, embedder=embedder, finish=write_run_report)


def resume(
    run_dir: str | Path, *, reporter: Reporter | None = None, embedder: Embedder | None = None
) -> RunResult:
    """Continue a killed run from its last checkpoint."""
    return resume_run(run_dir, reporter=reporter, embedder=embedder, finish=write_run_report)


def kept_program(paths: RunPaths) -> Path:
    """The program the run keeps: ``metrics.json``'s kept round, never an undecided or rolled-back one.

    Before any round has been decided (no ``metrics.json`` yet) it is the starting program, round 0:
    a compiled candidate is kept only once dev has decided for it.
    """
    try:
        kept = json.loads(paths.metrics.read_text()).get("kept_round")
    except (OSError, ValueError):
        kept = None
    chosen = paths.program(kept if isinstance(kept, int) else 0)
    if not chosen.is_file():
        raise RunDirError(f"{paths.root} has no kept program yet ({chosen.name} is missing)")
    return chosen


def load_memory(run_dir: str | Path, *, embedder: Embedder | None = None) -> LessonStore:
    """A run's lesson store, e.g. to hand its lessons to your own agent.

    Example:
        >>> memory = tutelage.load_memory("runs/quickstart")  # doctest: +SKIP
        >>> tool = tutelage.tools.memory_search_tool(memory)  # tool.invoke({"query": "card not arrived"})
    """
    paths = RunPaths(Path(run_dir))
    paths.require()
    return open_run_memory(paths, load_config(paths.config), embedder)


class Student:
    """A trained student: the run's compiled program and lesson memory, callable on a task input.

    Holds the embedded server open while in use when the run's student is ``local``; close it with
    ``close()`` or a ``with`` block.
    """

    def __init__(
        self, program: StudentProgram, lm: dspy.LM, stack: contextlib.ExitStack, metric: Any
    ) -> None:
        self.program = program
        self._lm = lm
        self._stack = stack
        self._solve = make_solver(program, lm=lm, metric=metric)

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        *,
        lm: dspy.LM | None = None,
        program: str | Path | None = None,
        embedder: Embedder | None = None,
        round: int | None = None,
    ) -> Student:
        """Load ``run_dir``'s kept program (or ``program``) over its curated memory.

        ``round=r`` replays round ``r`` exactly: that round's program, and only the lessons that were
        active then. ``lm`` replaces the run's student LM.
        """
        paths = RunPaths(Path(run_dir))
        paths.require()
        cfg = load_config(paths.config)
        memory = open_run_memory(paths, cfg, embedder)
        if round is not None and not paths.program(round).is_file():
            raise RunDirError(f"{paths.root} has no program for round {round}")
        chosen = (
            Path(program) if program else paths.program(round) if round is not None else kept_program(paths)
        )
        compiled = StudentProgram.load_json(chosen, memory=memory, as_of_round=round)
        stack = contextlib.ExitStack()
        suite = load_suite(cfg.suite)
        judged = isinstance(suite.metric, JudgeGrader)  # scoring needs the run's teacher as judge
        if lm is None or judged:
            endpoints = stack.enter_context(
                open_endpoints(cfg if judged else cfg.model_copy(update={"teacher": cfg.student}))
            )
            given, lm = lm, lm or build_lm(cfg.student, endpoints.student)
            suite = bind_judge(suite, build_lm(cfg.teacher, endpoints.teacher)) if judged else suite
            if given is None and compiled.adapter is not None:  # it answers with its trained weights
                if endpoints.adapters is None:
                    stack.close()
                    raise ConfigError(
                        f"student.provider {cfg.student.provider!r} cannot serve the program's adapter "
                        f"{compiled.adapter['name']!r}"
                    )
                lm = routed(lm, endpoints.adapters.serve(Adapter.from_json(compiled.adapter)))
        return cls(compiled, lm, stack, suite.metric)

    def predict(self, text: str, *, gold: str = "") -> dict[str, Any]:
        """Answer ``text``; the result names the lessons the student was shown (and a score if ``gold``)."""
        attempt = self._solve(Task(id="adhoc", input=text, answer=gold))
        return {
            "answer": attempt.answer,
            "lesson_ids": attempt.lesson_ids,
            "score": attempt.score if gold else None,
            "error": attempt.error,
        }

    def __call__(self, text: str) -> str:
        return str(self.predict(text)["answer"])

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Student:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    paths = RunPaths(Path(run_dir))
    paths.require()
    if not paths.metrics.is_file():
        raise RunDirError(f"{paths.root} has no metrics.json yet")
    return json.loads(paths.metrics.read_text())  # type: ignore[no-any-return]
