"""Test doubles shipped to users: a scripted OpenAI-compatible server and a deterministic embedder.

The scripted server also plays OpenAI's fine-tuning API (files, jobs, events) and vLLM's runtime LoRA
API (``load_lora_adapter``, ``unload_lora_adapter``), so trainers and adapter hosts run offline.

Example:
    >>> from tutelage.testing import ScriptedServer
    >>> with ScriptedServer(reply=lambda request: "card_arrival") as server:
    ...     base = server.api_base  # point a RoleConfig(provider="openai", api_base=base) at it
"""

from tutelage.testing._chroma import ChromaServer
from tutelage.testing._embedder import HashEmbedder
from tutelage.testing._hosted import Answer as Answer
from tutelage.testing._postgres import PostgresServer, PostgresUnavailable
from tutelage.testing._run import run_cli, run_fingerprint
from tutelage.testing._scripted import FAULTS, ScriptedServer, last_demo_answer
from tutelage.testing._scripted import HANG_SECONDS as HANG_SECONDS
from tutelage.testing._scripted import AdapterReply as AdapterReply
from tutelage.testing._scripted import Fault as Fault
from tutelage.testing._scripted import Reply as Reply
from tutelage.testing._vllm import fake_vllm

__all__ = [
    "FAULTS",
    "ChromaServer",
    "HashEmbedder",
    "PostgresServer",
    "PostgresUnavailable",
    "ScriptedServer",
    "last_demo_answer",
    "run_cli",
    "fake_vllm",
    "run_fingerprint",
]
