"""Child-process entry point that serves a GGUF model with llama.cpp's own server (xllamacpp).

Run as ``python -m tutelage.backends._llamacpp_main --model F --port P --parent PID``. It exits on
SIGTERM, or by itself when the parent process that started it goes away, at any moment (model loading
included), so no server outlives a killed run: the parent's pid comes on the command line, a watcher
thread starts before anything else, and with ``--deathsig`` the kernel kills the child with its parent.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--ctx-per-slot", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--alias", default="local")
    parser.add_argument("--parent", type=int, default=None)
    parser.add_argument("--deathsig", action="store_true")
    # LoRA adapters (GGUF), loaded at scale 0: a request picks one with its `lora` field
    parser.add_argument("--lora", action="append", default=[])
    args = parser.parse_args(argv)
    parent = args.parent or os.getppid()
    if args.deathsig:  # only asked for when the parent's main thread started us (the kernel ties the
        _die_with_parent()  # signal to the thread that forked, not to the process)
    threading.Thread(target=_watch, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the watcher started
        os._exit(0)

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
    if args.lora:
        params.lora_adapters = [xlc.CommonAdapterLoraInfo(path, 1.0) for path in args.lora]
        params.lora_init_without_apply = True
    server = xlc.Server(params)
    sys.stdout.write(f"listening {server.listening_address}\n")
    sys.stdout.flush()

    # Replace llama.cpp's handlers: the parent decides when the server stops.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch(parent)
    return 0


def _watch(parent: int) -> None:
    """Exit the whole process as soon as ``parent`` is no longer this process's parent."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the watcher thread still ends the server
        pass


if __name__ == "__main__":
    raise SystemExit(main())
