"""Child-process entry point that serves a GGUF model with llama.cpp's own server (xllamacpp).

Run as ``python -m tutelage.agents._llamacpp_main --model F --port P``. It exits on SIGTERM, or by
itself when the parent process that started it goes away, so no server outlives a killed run.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--ctx-per-slot", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--alias", default="local")
    args = parser.parse_args(argv)

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = args.model
    params.model_alias = args.alias
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx_per_slot * args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.port = args.port
    params.hostnames = ["127.0.0.1"]
    params.embedding = False
    server = xlc.Server(params)
    sys.stdout.write(f"listening {server.listening_address}\n")
    sys.stdout.flush()

    parent = os.getppid()
    # Replace llama.cpp's handlers: the parent decides when the server stops.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
