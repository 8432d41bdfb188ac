"""Run a server command so that it never outlives the run that started it.

``python -m tutelage.backends._child --parent PID -- COMMAND ...`` starts COMMAND in a process group of
its own and stops that whole group (COMMAND and whatever it started: vLLM's engine processes) when
told to (SIGTERM), or by itself as soon as the parent goes away, however it went (SIGKILL included):
the kernel signals it when the parent dies (``--deathsig``), and a watcher notices a changed parent
pid in any case. SIGINT is ignored: the parent decides when the server stops.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
GRACE = 20.0  # seconds between SIGTERM and SIGKILL of the server's group


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--deathsig", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    if args.deathsig:
        with contextlib.suppress(OSError, AttributeError):  # not Linux: the watcher below still notices
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != args.parent:
        return 0
    try:
        child = subprocess.Popen(command, start_new_session=True)
    except OSError as exc:
        sys.stderr.write(f"cannot start {command[0]}: {exc.strerror or exc}\n")
        return 127

    def stop(*_: object) -> None:
        _stop_group(child)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while child.poll() is None:
        if os.getppid() != args.parent:
            stop()
        time.sleep(0.2)
    return child.returncode


def _stop_group(child: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if child.poll() is not None:
                try:  # the leader is gone; its group's other members may not be
                    os.killpg(child.pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.1)


if __name__ == "__main__":
    raise SystemExit(main())
