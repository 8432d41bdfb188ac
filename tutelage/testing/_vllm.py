"""A stand-in for the ``vllm`` command, for testing the ``vllm`` backend without a GPU.

``fake_vllm(folder)`` writes an executable ``vllm`` there; put the folder first on ``PATH`` and
``vllm serve MODEL --port P ...`` starts a ``ScriptedServer`` that follows vLLM's documented HTTP API
(``/health``, ``/v1/models``, chat completions with ``structured_outputs``, runtime LoRA loading), plus
one idle child process, as vLLM's engine core is one. Environment variables steer it:

- ``TUTELAGE_FAKE_VLLM_LOG``: a JSONL file getting ``{"event": "start", "argv", "pid", "engine_pid",
  "lora_updating"}`` and one ``{"event": "chat", "body"}`` per chat request;
- ``TUTELAGE_FAKE_VLLM_REPLY``: the reply rule as ``module:attr`` (default ``last_demo_answer``);
- ``TUTELAGE_FAKE_VLLM_DELAY``: seconds each request waits; ``TUTELAGE_FAKE_VLLM_BOOT``: seconds
  before it listens (model loading).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["fake_vllm"]


def fake_vllm(folder: str | Path) -> Path:
    """Write an executable ``vllm`` into ``folder`` (which must exist) and return its path."""
    exe = Path(folder) / "vllm"
    exe.write_text(f"#!{sys.executable}\nfrom tutelage.testing._vllm import main\nraise SystemExit(main())\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


def main(argv: list[str] | None = None) -> int:
    from tutelage.agents.interface import import_object
    from tutelage.testing._scripted import ScriptedServer

    parser = argparse.ArgumentParser(prog="vllm")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("model")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args, _ = parser.parse_known_args(argv)
    log_path = os.environ.get("TUTELAGE_FAKE_VLLM_LOG")
    lock = threading.Lock()

    def log(row: dict[str, Any]) -> None:
        if log_path:
            with lock, open(log_path, "a", encoding="utf-8") as sink:
                sink.write(json.dumps(row) + "\n")

    rule = import_object(os.environ.get("TUTELAGE_FAKE_VLLM_REPLY", "tutelage.testing:last_demo_answer"))

    def reply(body: dict[str, Any]) -> str:
        log({"event": "chat", "body": body})
        return str(rule(body))

    engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    time.sleep(float(os.environ.get("TUTELAGE_FAKE_VLLM_BOOT") or 0))
    delay = float(os.environ.get("TUTELAGE_FAKE_VLLM_DELAY") or 0)
    server = ScriptedServer(reply, model=args.model, port=args.port, delay=delay).start()
    log(
        {
            "event": "start",
            "argv": sys.argv[1:] if argv is None else argv,
            "pid": os.getpid(),
            "engine_pid": engine.pid,
            "lora_updating": os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING"),
        }
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    while not stopped.wait(0.2):
        pass
    server.stop()
    engine.terminate()
    return 0
