"""Evaluation: task suites, metrics and the harness that runs a student over them."""

from tutelage.evals.harness import Attempt, EvalResult, accuracy, load_journal, run_tasks
from tutelage.evals.metrics import label_match, normalize_label
from tutelage.evals.suites import Suite, Task, load_suite

__all__ = [
    "Attempt",
    "EvalResult",
    "Suite",
    "Task",
    "accuracy",
    "label_match",
    "load_journal",
    "load_suite",
    "normalize_label",
    "run_tasks",
]
