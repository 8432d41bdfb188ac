"""The one exception tree of tutelage.

Systemic failures raise; per-task failures (a wrong answer, an unparsable reply) are data on records.

    TutelageError
    ├── ConfigError        bad or missing config file, unknown key, bad value
    ├── DataError          a task suite or data file that cannot be read
    ├── BudgetExhausted    a token, money or wall-clock budget is spent (the loop stops cleanly)
    ├── EndpointError      an LLM or embedding endpoint that cannot be reached or answers garbage
    ├── LocalServerError   the embedded llama.cpp server could not start
    ├── RunDirError        a run directory that is missing, foreign or inconsistent
    ├── TrackingError      the MLflow store refuses or cannot be reached (the run itself is kept)
    └── TrainError         a training job failed, was cancelled, or its request was refused

The CLI turns any of these into one line and a non-zero exit; any other exception is a bug.
"""

from __future__ import annotations

__all__ = [
    "BudgetExhausted",
    "ConfigError",
    "DataError",
    "EndpointError",
    "LocalServerError",
    "RunDirError",
    "TrackingError",
    "TrainError",
    "TutelageError",
]


class TutelageError(Exception):
    """Base class of every error tutelage raises on purpose."""


class ConfigError(TutelageError):
    """The configuration cannot be used as given."""


class DataError(TutelageError):
    """A task suite or data file cannot be loaded."""


class EndpointError(TutelageError):
    """A model or embedding endpoint failed after retries."""


class LocalServerError(EndpointError):
    """The embedded llama.cpp server did not come up."""


class RunDirError(TutelageError):
    """A run directory cannot be used for the requested operation."""


class BudgetExhausted(TutelageError):
    """A budget in ``loop.budget`` is spent; the loop ends the run and says which one."""


class TrackingError(TutelageError):
    """Logging a run to the MLflow tracking store failed; the run directory is unaffected."""


class TrainError(TutelageError):
    """Training did not produce an adapter: a hosted fine-tuning job failed or was refused."""
