"""``tutelage.improve``: run the self-improvement loop around your own agent, from Python.

The agent (a DSPy module, a LangGraph graph, or ``fn(task, lessons)``) is named by its import path
in the run's config (``student.program``), and the tasks are written as a ``file`` suite next to
the run, so the run directory is an ordinary one: ``tutelage resume``, ``tutelage report`` and
``tutelage.Student.load`` all work on it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tutelage import runfiles
from tutelage.agents.interface import import_object
from tutelage.api import run
from tutelage.config import RoleConfig, load_config
from tutelage.errors import ConfigError, DataError
from tutelage.evals.suites import Task
from tutelage.loop.progress import Reporter
from tutelage.loop.runner import RunResult
from tutelage.memory.embed import Embedder

__all__ = ["import_path", "improve", "improve_config"]

TaskLike = Task | Mapping[str, Any] | tuple[str, str]


def import_path(obj: Any, what: str = "student") -> str:
    """``obj``'s import path ``module:qualname`` (a string is taken as one already).

    A function or class defined at a module's top level has one; an instance (a compiled graph, a
    DSPy module object) is found among its module's globals only when given as a string.
    """
    if isinstance(obj, str):
        return obj
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module and name and "<" not in name:
        path = f"{module}:{name}"
        try:
            if import_object(path) is obj:
                return path
        except ConfigError:
            pass
    raise ConfigError(
        f"{what} {obj!r} has no import path a resumed run could rebuild it from: pass it as a string "
        "'package.module:attribute' (e.g. program='my_agents:graph')"
    )


def _row(item: TaskLike, split: str, n: int) -> dict[str, str]:
    if isinstance(item, Task):
        task_id, text, answer = item.id, item.input, item.answer
    elif isinstance(item, Mapping):
        if "input" not in item or "answer" not in item:
            raise DataError(f"{split} item {n}: a task needs 'input' and 'answer' keys, got {sorted(item)}")
        task_id, text, answer = str(item.get("id") or ""), str(item["input"]), str(item["answer"])
    elif isinstance(item, tuple) and len(item) == 2:
        task_id, text, answer = "", str(item[0]), str(item[1])
    else:
        raise DataError(f"{split} item {n}: give a Task, a mapping with input and answer, or (input, answer)")
    return {"id": task_id or f"{split}-{n}", "input": text, "answer": answer, "split": split}


def _role(given: RoleConfig | Mapping[str, Any] | str | None, default: dict[str, Any]) -> Any:
    if given is None:
        return default
    if isinstance(given, RoleConfig):
        return given.model_dump(exclude_defaults=True)
    if isinstance(given, str):
        return "off" if given in ("off", "none") else {**default, "model": given}
    return dict(given)


def improve(
    student: Any,
    *,
    train: Sequence[TaskLike],
    dev: Sequence[TaskLike],
    test: Sequence[TaskLike] | None = None,
    metric: str | Callable[..., Any],
    teacher: RoleConfig | Mapping[str, Any] | str | None = None,
    model: RoleConfig | Mapping[str, Any] | None = None,
    rounds: int = 3,
    name: str = "improve",
    runs_dir: str | Path = "runs",
    instruction: str | None = None,
    settings: Sequence[str] = (),
    reporter: Reporter | None = None,
    embedder: Embedder | None = None,
) -> RunResult:
    """Improve ``student`` (an agent, or its import path) on ``train``, keeping what ``dev`` confirms.

    Args:
        train, dev, test: tasks (``Task``, ``{"input", "answer", "id"?}`` or ``(input, answer)``);
            without ``test``, a fifth of ``train`` is held out as the test split.
        metric: a grader name (``label``, ``gsm8k``, ``f1``, ...) or a top-level ``fn(prediction, gold)``.
        teacher: the teacher's role config (a mapping or ``RoleConfig``), a model name, or ``"off"``;
            default the embedded model.
        model: the student model the agent gets from ``tutelage.agent_lm()`` (default the embedded one).
        settings: more config overrides, as ``tutelage run --set`` takes them (``"loop.batch_size=20"``).

    Returns the same ``RunResult`` as ``tutelage.run``; the run directory is ``runs_dir/name``, and
    its config (written beside the tasks, ``runs_dir/_data/name.yaml``) runs again with
    ``tutelage run``.

    Example:
        >>> result = tutelage.improve(my_agent, train=train, dev=dev, metric="gsm8k")  # doctest: +SKIP
    """
    source = improve_config(
        student,
        train=train,
        dev=dev,
        test=test,
        metric=metric,
        teacher=teacher,
        model=model,
        rounds=rounds,
        name=name,
        runs_dir=runs_dir,
        instruction=instruction,
    )
    return run(load_config(source, list(settings)), reporter=reporter, embedder=embedder)


def improve_config(
    student: Any,
    *,
    train: Sequence[TaskLike],
    dev: Sequence[TaskLike],
    test: Sequence[TaskLike] | None = None,
    metric: str | Callable[..., Any],
    teacher: RoleConfig | Mapping[str, Any] | str | None = None,
    model: RoleConfig | Mapping[str, Any] | None = None,
    rounds: int = 3,
    name: str = "improve",
    runs_dir: str | Path = "runs",
    instruction: str | None = None,
) -> Path:
    """Write ``improve``'s tasks and run config; returns the config's path (``tutelage run`` takes it)."""
    program = import_path(student)
    grader = metric if isinstance(metric, str) else import_path(metric, "metric")
    rows = [
        _row(x, split, i)
        for split, items in (("train", train), ("dev", dev), ("test", test or ()))
        for i, x in enumerate(items)
    ]
    if not train or not dev:
        raise DataError("improve needs train and dev tasks")
    blob = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    data_dir = Path(runs_dir) / "_data"
    tasks = runfiles.write_text(
        data_dir / f"{name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}.jsonl", blob
    )
    config: dict[str, Any] = {
        "name": name,
        "runs_dir": str(runs_dir),
        "student": {**_role(model, {"max_tokens": 64}), "program": program},
        "teacher": _role(teacher, {"max_tokens": 160}),
        "suite": {
            "name": "file",
            "path": str(tasks.resolve()),
            "fields": {"id": "id", "split": "split"},
            "metric": grader,
            "dev_size": len(dev),
            "test_size": len(test) if test else max(1, len(train) // 5),
            **({"instruction": instruction} if instruction else {}),
        },
        "loop": {"rounds": rounds},
    }
    return runfiles.write_text(data_dir / f"{name}.yaml", yaml.safe_dump(config, sort_keys=False))
