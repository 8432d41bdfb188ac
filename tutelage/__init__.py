"""tutelage: agentic, self-improving distillation.

A cheap student attempts tasks; a strong teacher diagnoses the failures and writes lessons into a
vector memory; DSPy compiles an improved student each round; a held-out evaluation decides.
"""

from tutelage.api import RunResult, Student, resume, run
from tutelage.config import RunConfig, load_config
from tutelage.errors import TutelageError

__version__ = "0.1.0"

__all__ = [
    "RunConfig",
    "RunResult",
    "Student",
    "TutelageError",
    "__version__",
    "load_config",
    "resume",
    "run",
]
