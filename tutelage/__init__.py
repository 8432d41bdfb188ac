"""tutelage: agentic, self-improving distillation.

A cheap student attempts tasks; a strong teacher diagnoses the failures and writes lessons into a
vector memory; DSPy compiles an improved student each round; a held-out evaluation decides.
"""

import os as _os

# Offline by design, set once before dspy, LiteLLM, Chroma or transformers are imported: no cost-map
# fetch, no hub lookups, no telemetry. Both the CLI and the Python API pass through here first.
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
_os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from tutelage.agents.interface import Lessons, agent_base_url, agent_lm
from tutelage.api import RunResult, Student, load_memory, resume, run
from tutelage.config import RunConfig, load_config
from tutelage.errors import TutelageError
from tutelage.evals.trajectory import Step, Trajectory
from tutelage.improve import improve

__version__ = "0.1.0"

__all__ = [
    "Lessons",
    "RunConfig",
    "RunResult",
    "Step",
    "Student",
    "Trajectory",
    "TutelageError",
    "__version__",
    "agent_base_url",
    "agent_lm",
    "improve",
    "load_config",
    "load_memory",
    "resume",
    "run",
]
