"""What the backends that start a model server share: a free port, waiting for health, stopping."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx

from tutelage.errors import LocalServerError

__all__ = ["free_port", "stop_process", "wait_healthy"]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    proc: subprocess.Popen[bytes],
    url: str,
    *,
    timeout: float,
    what: str,
    log_path: Path | None = None,
    interval: float = 0.2,
) -> None:
    """Return once ``url`` answers 200; one ``LocalServerError`` line (naming ``what`` and its log) when
    the process exits first or ``timeout`` seconds pass. The caller stops the process on an error."""
    where = f" (see {log_path})" if log_path else ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalServerError(f"{what} exited with code {proc.returncode}{where}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    raise LocalServerError(f"{what} did not answer within {timeout:.0f}s{where}")


def stop_process(proc: subprocess.Popen[bytes] | None, *, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; nothing to do when it has already exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
