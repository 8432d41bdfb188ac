"""ChromaServer: a real ``chroma run`` child process on 127.0.0.1 for the Chroma-server store."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tutelage.backends._process import free_port


class ChromaServer:
    """A real ``chroma run`` on 127.0.0.1 with its data under ``path``; stopped on exit.

    Example:
        >>> with ChromaServer(tmp_path / "chroma") as server:  # doctest: +SKIP
        ...     store = open_store(MemoryConfig(url=server.url), path=None, embedder=HashEmbedder())
    """

    def __init__(self, path: str | Path, *, port: int | None = None, startup_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChromaServer:
        exe = Path(sys.executable).with_name("chroma")
        command = str(exe) if exe.exists() else shutil.which("chroma")
        if command is None:
            raise RuntimeError("the `chroma` command (from the chromadb package) is not installed")
        self.path.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [command, "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self._proc.returncode}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"chroma run did not answer on {self.url} within {self.startup_timeout:.0f}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> ChromaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
