"""``tutelage eval``: score a student on a suite split, cached per item on disk so a killed run resumes.

An evaluation is identified by what decides its answers: the suite settings, the split and its item
ids, the student model and generation settings, and the program or baseline shown to it (for a run's
memory: a digest of the program and of the exact lesson ids with their statuses). Its folder
(``--out``, by default ``RUNS_DIR/evals/<suite>-<split>-<who>-<digest>``) holds:

- ``eval.json``: that identity; a folder holding another evaluation is refused, never mixed;
- ``journal.jsonl``: one graded item per line, appended as items finish (a rerun skips them);
- ``summary.json``: the score with its 95% bootstrap interval, failures and per-slice scores.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tutelage import runfiles
from tutelage.agents.ledger import Ledger
from tutelage.agents.student import StudentProgram, make_solver
from tutelage.backends import build_lm, label_constraint, open_endpoints, routed
from tutelage.config import RunConfig, load_config
from tutelage.errors import ConfigError, DataError, RunDirError
from tutelage.evals.baselines import BASELINES, build_baseline
from tutelage.evals.graders import Grader, JudgeGrader
from tutelage.evals.graders.multilabel import micro_f1
from tutelage.evals.harness import Attempt, load_journal, run_tasks
from tutelage.evals.stats import Interval, bootstrap_ci, by_slice
from tutelage.evals.suites import Suite, Task, bind_judge, load_suite
from tutelage.loop.progress import LogReporter, Reporter
from tutelage.memory.query import LessonFilter
from tutelage.train import Adapter

__all__ = ["EvalSummary", "eval_overrides", "evaluate", "evaluate_student", "summarize"]

# Generation bounds per suite when the config leaves the student's at the quickstart's one-line label
# reply: chain-of-thought suites need room to reason, and must not stop at the first newline.
_REPLY = {
    "gsm8k": ("384", "[]"),
    "math500": ("768", "[]"),
    "bbh": ("384", '["\\n\\nQ:"]'),
    "nlupp": ("48", '["\\n"]'),
}


@dataclass(frozen=True)
class EvalSummary:
    """What ``tutelage eval`` prints and writes to ``summary.json``."""

    suite: str
    split: str
    student: str
    n: int
    score: float
    low: float
    high: float
    failures: int
    seconds: float
    out: str
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    resumed: int = 0  # items read back from the journal instead of asked again
    of: int = 0  # items in the whole split (the scored ones are a seeded sample when fewer)
    # How a closed label set was read: "constrained" (the endpoint's structured outputs chose one
    # label), "snapped" (a free reply read as the label it most resembles), or "" (no label set).
    decoding: str = ""
    snapped: int = 0  # replies that were not a label as written and were read as the nearest one
    # With "constrained": the same items with free replies snapped to a label (journal-free.jsonl).
    free_score: float | None = None
    free_snapped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def eval_overrides(suite: str | None, data_dir: str | None, overrides: Sequence[str]) -> list[str]:
    """Config overrides for ``tutelage eval SUITE``: the suite (a name or a JSONL/CSV path), its data
    folder, and the suite's generation bounds, all before the user's own ``--set`` (which win)."""
    out: list[str] = []
    if suite is not None:
        if suite.endswith((".jsonl", ".csv")):
            out += ["suite.name=file", f"suite.path={suite}"]
        else:
            out.append(f"suite.name={suite}")
            if suite in _REPLY and not any(
                o.startswith(("student.max_tokens=", "student.stop=")) for o in overrides
            ):
                tokens, stop = _REPLY[suite]
                out += [f"student.max_tokens={tokens}", f"student.stop={stop}"]
    if data_dir is not None:
        out.append(f"suite.data_dir={data_dir}")
    return [*out, *overrides]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _identity(cfg: RunConfig, split: str, tasks: list[Task], who: dict[str, Any]) -> dict[str, Any]:
    student = cfg.student.model_dump(mode="json", exclude={"concurrency", "timeout", "api_key_env"})
    return {
        "suite": cfg.suite.model_dump(mode="json"),
        "split": split,
        "items": _digest([t.id for t in tasks]),
        "n": len(tasks),
        "student": student,
        **who,
    }


def lessons_digest(memory: Any) -> str:
    """What a memory shows a student: the exact lesson ids with their statuses (a retired, edited or
    added lesson is another memory; a count would not tell)."""
    return _digest(sorted((x.id, x.status) for x in memory.all(LessonFilter(status=None))))


def _open_out(out: Path, identity: dict[str, Any], fresh: bool) -> None:
    """Claim ``out`` for this evaluation: resume one of the same identity, refuse another."""
    spec = out / "eval.json"
    if fresh and out.exists():
        if not spec.is_file():
            raise RunDirError(f"--fresh would delete {out}, which is not an evaluation folder")
        runfiles.remove_tree(out)
    if spec.is_file():
        try:
            old = json.loads(spec.read_text())
        except ValueError:
            raise RunDirError(f"{spec} is not JSON; remove it or pass another --out") from None
        if old != identity:
            keys = sorted(k for k in {*old, *identity} if old.get(k) != identity.get(k))
            raise RunDirError(
                f"{out} holds another evaluation (differs in: {', '.join(keys)}); "
                "pass another --out, or --fresh to replace it"
            )
    elif out.exists() and any(out.iterdir()):
        raise RunDirError(f"{out} exists and is not an evaluation folder; pass another --out")
    runfiles.write_json(spec, identity, sort_keys=True)


def score_ci(
    metric: Any, pairs: list[tuple[str, str]], scores: list[float], *, n_boot: int = 1000
) -> Interval:
    """The suite score with a 95% bootstrap interval over items.

    For the mean item score that is ``bootstrap_ci``; a grader with another ``aggregate`` (micro-F1)
    is recomputed on every resample, from its per-item counts when it has them.
    """
    if not isinstance(metric, Grader) or type(metric).aggregate is Grader.aggregate or not pairs:
        return bootstrap_ci(scores)
    counts = getattr(metric, "counts", None)
    if counts is not None:
        rows = [counts(p, g) for p, g in pairs]
        stat: Callable[[list[int]], float] = lambda idx: micro_f1([rows[i] for i in idx])  # noqa: E731
    else:
        stat = lambda idx: float(metric.aggregate([pairs[i] for i in idx]))  # noqa: E731
    rng = random.Random(0)
    n = len(pairs)
    draws = sorted(stat([rng.randrange(n) for _ in range(n)]) for _ in range(n_boot))
    point = stat(list(range(n)))
    low, high = draws[int(0.025 * (n_boot - 1))], draws[int(0.975 * (n_boot - 1))]
    return Interval(point, min(low, point), max(high, point), n)


def summarize(
    suite: Suite, tasks: list[Task], attempts: list[Attempt], *, seconds: float = 0.0
) -> dict[str, Any]:
    """Headline score (the grader's aggregate), its interval, failures and per-slice intervals."""
    gold = {t.id: t for t in tasks}
    pairs = [(a.answer, gold[a.task_id].answer) for a in attempts]
    interval = score_ci(suite.metric, pairs, [a.score for a in attempts])
    score = interval.mean
    per_item = {a.task_id: a.score for a in attempts}
    slices: dict[str, dict[str, dict[str, float]]] = {}
    for key in sorted({k for t in tasks for k in t.tags}):
        tags = {t.id: t.tags[key] for t in tasks if key in t.tags}
        slices[key] = {
            name: {"mean": iv.mean, "low": iv.low, "high": iv.high, "n": float(iv.n)}
            for name, iv in by_slice({i: s for i, s in per_item.items() if i in tags}, tags).items()
        }
    return {
        "n": len(attempts),
        "score": score,
        "low": interval.low,
        "high": interval.high,
        "failures": sum(1 for a in attempts if a.error),
        "seconds": seconds,
        "slices": slices,
    }


def _student(
    cfg: RunConfig,
    suite: Suite,
    *,
    run_dir: Path | None,
    program: Path | None,
    baseline: str | None,
    k: int,
    stores: Path,
) -> tuple[StudentProgram, dict[str, Any], str]:
    """The program to score, what identifies it, and a label for people."""
    from tutelage.api import kept_program
    from tutelage.memory.embed import build_embedder
    from tutelage.memory.location import open_run_memory
    from tutelage.rundir import RunPaths

    choices = suite.labels if cfg.suite.snap_to_labels and suite.labels else None
    if run_dir is not None:
        paths = RunPaths(run_dir)
        paths.require()
        source = program or kept_program(paths)
        memory = open_run_memory(paths, cfg)
        student = _load_program(source, memory=memory)
        who: dict[str, Any] = {
            "program": _digest(json.loads(Path(source).read_text())),
            "memory": str(run_dir.resolve()),
            "lessons": lessons_digest(memory),
        }
        return student, who, f"{cfg.student.model} + {Path(source).name} and the memory of {run_dir}"
    if program is not None:
        student = _load_program(program, memory=None)
        return (
            student,
            {"program": _digest(json.loads(program.read_text()))},
            f"{cfg.student.model} + {program}",
        )
    name = baseline or "zero-shot"
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    embedder = build_embedder(cfg.memory.embedder) if name == "retrieval-train" else None
    student = build_baseline(
        name, suite, embedder=embedder, store_dir=stores, seed=cfg.seed, k=k, snap_to_labels=bool(choices)
    )
    return (
        student,
        {"baseline": name, "k": k if name != "zero-shot" else 0, "seed": cfg.seed},
        (f"{cfg.student.model}, {name}" + (f" (k={k})" if name != "zero-shot" else "")),
    )


def _load_program(path: Path, *, memory: Any) -> StudentProgram:
    try:
        return StudentProgram.load_json(path, memory=memory)
    except OSError as exc:
        raise ConfigError(f"cannot read the program {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a compiled tutelage program ({exc.__class__.__name__})") from None


def _drop_failed(journal: Path) -> int:
    """Remove the journaled per-item failures so they are asked again; how many were removed."""
    if not journal.is_file():
        return 0
    keep, dropped = [], 0
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            failed = bool(json.loads(line).get("error"))
        except ValueError:
            failed = True  # a torn line
        dropped += failed
        if not failed:
            keep.append(line)
    runfiles.write_text(journal, "".join(f"{x}\n" for x in keep))
    return dropped


def evaluate(
    cfg: RunConfig,
    *,
    run_dir: Path | None = None,
    program: Path | None = None,
    baseline: str | None = None,
    k: int = 8,
    split: str = "test",
    limit: int | None = None,
    out: Path | None = None,
    fresh: bool = False,
    retry_failed: bool = False,
    reporter: Reporter | None = None,
) -> EvalSummary:
    """Score one student on ``split`` of the config's suite, resuming a killed evaluation in ``out``.

    ``retry_failed`` asks again for the items whose journaled result is a per-item failure (a
    server error, an unparsable reply); other finished items are always read back.

    Example:
        >>> cfg = load_config(None, eval_overrides("banking77", None, []))  # doctest: +SKIP
        >>> evaluate(cfg, baseline="fewshot-random").score  # doctest: +SKIP
    """
    reporter = reporter or LogReporter()
    if split not in ("test", "dev"):
        raise ConfigError(f"--split must be 'test' or 'dev', not {split!r}")
    if baseline is not None and (run_dir is not None or program is not None):
        raise ConfigError(
            "--baseline scores a baseline student; it cannot be combined with --memory or --program"
        )
    suite = load_suite(cfg.suite)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}")
    if k < 1:
        raise ConfigError(f"--k must be at least 1, not {k}")
    tasks = suite.test if split == "test" else suite.dev
    tasks = tasks[:limit] if limit else tasks
    if not tasks:
        raise ConfigError(f"the {split} split of {suite.name} is empty")
    evals = Path(cfg.runs_dir) / "evals"
    student, who, label = _student(
        cfg, suite, run_dir=run_dir, program=program, baseline=baseline, k=k, stores=evals / "stores"
    )
    adapter = getattr(student, "adapter", None)
    if adapter is not None:  # other weights are another student: the folder's identity says which
        who = {**who, "adapter": adapter["meta"].get("sha256") or adapter["name"]}
    judged = isinstance(suite.metric, JudgeGrader)
    if judged:  # the judge's model decides the scores as much as the student does
        who = {**who, "judge": cfg.teacher.model_dump(mode="json", include={"provider", "model", "api_base"})}
    identity = _identity(cfg, split, tasks, who)
    tag = (who.get("baseline") or ("memory" if run_dir else "program" if program else "")).replace("-", "")
    out = (
        out
        or evals / f"{suite.name}-{split}-{cfg.student.model.split('/')[-1]}-{tag}-{_digest(identity)[:8]}"
    )
    _open_out(out, identity, fresh)
    journal = out / "journal.jsonl"
    if retry_failed:
        _drop_failed(journal)
    resumed = len(set(load_journal(journal)) & {t.id for t in tasks})
    started = time.monotonic()
    # Only a judged suite needs the teacher's endpoint; otherwise it is not started or checked.
    with open_endpoints(cfg if judged else cfg.model_copy(update={"teacher": cfg.student})) as endpoints:
        prices = {
            "student": (cfg.student.price_in, cfg.student.price_out),
            "teacher": (cfg.teacher.price_in, cfg.teacher.price_out),
        }
        ledger = Ledger(out / "ledger.jsonl", prices=prices)
        ledger.at(0, "test")
        lm = build_lm(cfg.student, endpoints.student, name="student", ledger=ledger)
        if adapter is not None:
            if endpoints.adapters is None:
                raise ConfigError(
                    f"student.provider {cfg.student.provider!r} cannot serve the program's adapter "
                    f"{adapter['name']!r}"
                )
            lm = routed(lm, endpoints.adapters.serve(Adapter.from_json(adapter)))
        if judged:
            suite = bind_judge(suite, build_lm(cfg.teacher, endpoints.teacher, name="teacher", ledger=ledger))
        solve = make_solver(student, lm=lm, metric=suite.metric)
        reporter.phase(f"eval {suite.name} {split}", len(tasks))
        attempts = run_tasks(
            solve, tasks, concurrency=cfg.student.concurrency, journal=journal, on_progress=reporter.update
        )
        labels = list(getattr(student, "choices", None) or [])
        constrained = bool(labels and label_constraint(lm, labels))
        free: list[Attempt] = []
        if constrained:  # report what the constraint buys: the same items, free replies snapped
            unconstrained = lm.copy()
            unconstrained.constrains = False
            reporter.phase(f"eval {suite.name} {split}, free replies", len(tasks))
            free = run_tasks(
                make_solver(student, lm=unconstrained, metric=suite.metric),
                tasks,
                concurrency=cfg.student.concurrency,
                journal=out / "journal-free.jsonl",
                on_progress=reporter.update,
            )
    failed = [a for a in attempts if a.error]
    if attempts and len(failed) == len(attempts):
        raise DataError(
            f"every one of the {len(attempts)} items failed (first: {failed[0].error}); nothing was scored. "
            f"The items are journaled in {journal}: fix the cause, then run again with --retry-failed"
        )
    facts = summarize(suite, tasks, attempts, seconds=round(time.monotonic() - started, 1))
    summary = EvalSummary(
        suite=suite.name,
        split=split,
        student=label,
        out=str(out),
        resumed=resumed,
        of=len(
            suite.held_out
            if split == "test" and suite.held_out
            else suite.test
            if split == "test"
            else suite.dev
        ),
        **facts,
        decoding="constrained" if constrained else "snapped" if labels else "",
        snapped=_snapped(attempts),
        free_score=summarize(suite, tasks, free, seconds=0.0)["score"] if free else None,
        free_snapped=_snapped(free),
    )
    runfiles.write_json(out / "summary.json", summary.as_dict())
    return summary


def _snapped(attempts: list[Attempt]) -> int:
    """Replies read as a label other than the one written (the student was unsure)."""
    return sum(1 for a in attempts if not a.error and a.raw is not None and a.raw != a.answer)


def evaluate_student(
    config: Path | None,
    overrides: list[str] | None = None,
    *,
    run_dir: Path | None = None,
    program: Path | None = None,
    split: str = "test",
    limit: int | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Score the configured student (or a run's student with its memory); the dict form of ``evaluate``."""
    from tutelage.rundir import RunPaths

    if run_dir is not None and config is None:
        paths = RunPaths(run_dir)
        paths.require()
        config = paths.config
    cfg = load_config(config, overrides)
    summary = evaluate(cfg, run_dir=run_dir, program=program, split=split, limit=limit, reporter=reporter)
    return {**summary.as_dict(), "accuracy": summary.score}
