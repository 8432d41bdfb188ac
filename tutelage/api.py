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

from tutelage.agents.lm import build_lm, open_endpoints
from tutelage.agents.student import StudentProgram, make_solver
from tutelage.config import RunConfig, load_config
from tutelage.errors import RunDirError
from tutelage.evals.suites import Task, load_suite
from tutelage.loop.progress import Reporter
from tutelage.loop.rundir import RunPaths
from tutelage.loop.runner import RunResult, open_memory, resume_run, start_run
from tutelage.memory.embed import Embedder

__all__ = ["RunResult", "Student", "resume", "run"]


def run(
    config: RunConfig | str | Path | None = None,
    *,
    reporter: Reporter | None = None,
    embedder: Embedder | None = None,
) -> RunResult:
    """Run the self-improvement loop; ``config`` is a RunConfig, a YAML path, or None for the quickstart."""
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    return start_run(cfg, reporter=reporter, embedder=embedder)


def resume(
    run_dir: str | Path, *, reporter: Reporter | None = None, embedder: Embedder | None = None
) -> RunResult:
    """Continue a killed run from its last checkpoint."""
    return resume_run(run_dir, reporter=reporter, embedder=embedder)


def latest_program(paths: RunPaths) -> Path:
    """The program the run would use next: the highest-numbered round's JSON."""
    programs = sorted((paths.root / "programs").glob("round_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    if not programs:
        raise RunDirError(f"{paths.root} has no compiled program yet")
    return programs[-1]


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
    ) -> Student:
        """Load ``run_dir``'s latest program (or ``program``) and memory; ``lm`` replaces its student LM."""
        paths = RunPaths(Path(run_dir))
        paths.require()
        cfg = load_config(paths.config)
        memory = open_memory(paths, cfg, embedder)
        compiled = StudentProgram.load_json(
            Path(program) if program else latest_program(paths), memory=memory
        )
        stack = contextlib.ExitStack()
        if lm is None:
            endpoints = stack.enter_context(open_endpoints(cfg.model_copy(update={"teacher": cfg.student})))
            lm = build_lm(cfg.student, endpoints.student)
        return cls(compiled, lm, stack, load_suite(cfg.suite).metric)

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
