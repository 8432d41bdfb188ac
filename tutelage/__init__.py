"""tutelage: agentic, self-improving distillation.

A cheap student attempts tasks; a strong teacher diagnoses the failures and writes lessons into a
vector memory; DSPy compiles an improved student each round; a held-out evaluation decides.
"""

import os as _os

# Offline by design: LiteLLM would otherwise fetch a model cost map over the network at import.
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

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
