"""Checkpoints in PostgreSQL (``postgresql://user:pass@host:port/db``): LangGraph's Postgres saver.

Many runs share one database, each under its own thread id (its run id). The run folder keeps a small
``checkpoints.postgres`` note once its saver has been opened: with the database out of reach, a run
without one cannot have stored anything, and a run with one is reported unreachable, not empty.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tutelage import runfiles
from tutelage.errors import ConfigError, EndpointError
from tutelage.rundir import RunPaths

try:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
except ImportError:  # raised while the registry loads this file: before any run folder is made
    raise ConfigError(
        "checkpoints.url postgresql:// needs the postgres extra: pip install 'tutelage[postgres]'"
    ) from None

__all__ = ["PostgresCheckpoints"]

NOTE = "checkpoints.postgres"
CONNECT_TIMEOUT = 10  # seconds; libpq's own default waits forever on a host that drops packets
# Two runs opening a fresh database at once would race through LangGraph's table migrations.
_SETUP_LOCK = 0x7475_7465_6C61  # "tutela"


def _redact(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class PostgresCheckpoints:
    """A run's checkpoints in a PostgreSQL database, filed under its thread id."""

    def __init__(self, url: str | None, *, paths: RunPaths) -> None:
        # "postgresql+psycopg://" (SQLAlchemy's spelling) picks this class too; libpq wants it bare
        self.url = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url or "")
        self.thread_id = paths.thread_id
        self.note = paths.root / NOTE

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        """A connection as LangGraph's ``from_conn_string`` makes it, or one clear line why not."""
        try:
            conninfo = self.url
            if "connect_timeout" not in psycopg.conninfo.conninfo_to_dict(conninfo):
                conninfo = psycopg.conninfo.make_conninfo(conninfo, connect_timeout=CONNECT_TIMEOUT)
            return psycopg.Connection.connect(
                conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row
            )
        except psycopg.OperationalError as exc:  # refused, timed out, bad credentials, no such database
            reason = " ".join(str(exc).split("\n")[0].split())
            raise EndpointError(
                f"checkpoint database {_redact(self.url)} cannot be reached: {reason}"
            ) from None
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(f"checkpoints.url {_redact(self.url)} is not usable: {reason}") from None

    def exists(self) -> bool:
        """The run has begun storing checkpoints: the database holds rows under its thread id.

        False while LangGraph's tables are not made yet. A database out of reach answers False for a
        run that never opened its saver (nothing can be stored), and raises for one that did.
        """
        try:
            conn = self._connect()
        except (EndpointError, ConfigError):
            if self.note.is_file():
                raise
            return False
        with conn:
            try:
                row = conn.execute(
                    "SELECT 1 FROM checkpoints WHERE thread_id = %s LIMIT 1", (self.thread_id,)
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return False
        return row is not None

    @contextlib.contextmanager
    def open(self) -> Iterator[PostgresSaver]:
        """A saver on its own connection, its tables made; closed after. A database lost mid-run is one
        clear line, and the run resumes once it is back."""
        with self._connect() as conn:
            saver = PostgresSaver(conn)
            _setup(conn, saver)
            runfiles.write_text(self.note, f"{_redact(self.url)}\nthread {self.thread_id}\n")
            try:
                yield saver
            except psycopg.OperationalError as exc:
                reason = " ".join(str(exc).split("\n")[0].split())
                raise EndpointError(f"checkpoint database {_redact(self.url)} was lost: {reason}") from None


def _setup(conn: psycopg.Connection[dict[str, Any]], saver: PostgresSaver) -> None:
    """LangGraph's migrations, one process at a time.

    A polled try-lock, not a blocking one: a session waiting inside ``pg_advisory_lock`` holds a
    snapshot that the migrations' ``CREATE INDEX CONCURRENTLY`` would wait for, a deadlock.
    """
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_SETUP_LOCK,)).fetchone()
        if row is not None and row["ok"]:
            break
        time.sleep(0.05)
    try:
        saver.setup()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
