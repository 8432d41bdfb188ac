"""PostgresServer: a throwaway PostgreSQL cluster on 127.0.0.1 for the Postgres checkpointer's tests."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tutelage.backends._process import free_port

__all__ = ["PostgresServer", "PostgresUnavailable"]

_TOOLS = ("initdb", "pg_ctl", "createdb")


class PostgresUnavailable(RuntimeError):
    """This machine cannot start a PostgreSQL server (the message says why); a test skips on it."""


def _bin_dir() -> Path:
    """Debian's newest ``/usr/lib/postgresql/<version>/bin``, else the folder of ``initdb`` on PATH."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.parent.name))

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version)
    initdb = found[-1] if found else (Path(w) if (w := shutil.which("initdb")) else None)
    if initdb is None:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    missing = [tool for tool in _TOOLS if not (initdb.parent / tool).is_file()]
    if missing:
        raise PostgresUnavailable(f"{initdb.parent} lacks {', '.join(missing)}")
    return initdb.parent


def _unprivileged() -> pwd.struct_passwd | None:
    """The account to run the server as: None for a normal user; as root (initdb refuses root), the
    ``postgres`` account, else ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and there is no postgres or nobody account to run the server")


class PostgresServer:
    """A fresh cluster in a temporary folder, serving one database on 127.0.0.1 only; deleted on exit.

    Example:
        >>> with PostgresServer() as server:  # doctest: +SKIP
        ...     cfg = load_config(None, [f"checkpoints.url={server.url}"])

    Raises:
        PostgresUnavailable: no server binaries, or no account to run them as (tests skip on it).
        RuntimeError: the binaries are there but the server did not start (the log's tail says why).
    """

    def __init__(
        self, *, user: str = "tutelage", database: str = "tutelage", port: int | None = None
    ) -> None:
        self.user, self.database = user, database
        self.port = port or free_port()
        self.root: Path | None = None
        self._bin = Path()
        self._as: list[str] = []  # the command prefix that drops root's privileges

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, root: Path, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as, str(self._bin / tool), *args], cwd=root, capture_output=True, text=True
        )

    def _must(self, root: Path, tool: str, *args: str) -> None:
        done = self._run(root, tool, *args)
        if done.returncode != 0:
            log = root / "server.log"
            tail = (done.stderr + (log.read_text(errors="replace") if log.is_file() else "")).strip()
            raise RuntimeError(f"{tool} failed ({done.returncode}): {tail[-600:]}")

    def start(self) -> PostgresServer:
        self._bin = _bin_dir()
        account = _unprivileged()
        if account is not None:
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running as root and `runuser` is missing to drop privileges")
            self._as = ["runuser", "-u", account.pw_name, "--"]
        root = self.root = Path(tempfile.mkdtemp(prefix="tutelage-pg-"))  # short: a socket path has a limit
        try:
            if account is not None:
                os.chown(root, account.pw_uid, account.pw_gid)
            data = str(root / "data")
            self._must(
                root, "initdb", "-D", data, "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C", "-N"
            )
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"  # a test cluster: speed
            )
            self._must(
                root, "pg_ctl", "-D", data, "-l", str(root / "server.log"), "-o", options, "-w", "start"
            )
            self._must(
                root, "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (if it runs) and delete its folder."""
        root, self.root = self.root, None
        if root is None:
            return
        if (root / "data" / "postmaster.pid").is_file():
            self._run(root, "pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
