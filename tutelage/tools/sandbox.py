"""Run a model's Python snippet in a separate, isolated process and return what it printed.

The isolation is bubblewrap's (Debian's ``bubblewrap``, the sandbox Flatpak uses), not Python's:
each snippet runs in ``python -I`` inside new PID, network, IPC and UTS namespaces, in a root file
system that holds only ``/usr``, the Python installation (read-only) and a fresh working directory (a
private, empty ``/tmp``; no ``/home``, no project, no run directory, no host ``/proc``: the snippet sees
only its own processes, so it cannot read ``/proc/PPID/environ`` and its keys). Run as root, the
snippet drops to ``nobody``. Limits (``setrlimit``): CPU time, address space (memory), the size of any
file written (printed output included), the number of processes (a fork bomb stops at 32), no core
dumps. When the wall-clock timeout fires, the sandbox's PID namespace dies with everything in it, so
nothing a snippet starts outlives its call. On top of that, an audit hook (PEP 578) turns the common
accidents (a stray ``requests.get``, ``subprocess.run``, writing a file elsewhere) into one short,
clear error; it is a courtesy, not the boundary: switching it off from inside gains nothing.

``isolation="none"`` (``agent.python_sandbox: none``) runs the same child with the limits and the audit
hook only, for machines without bubblewrap: that is a guard against accidents, not against a hostile
author (PEP 578 says audit hooks can be bypassed). The output is cut to ``max_output`` characters; a
failure comes back as one short line (``timed out after 5 s``, ``memory limit (256 MB) exceeded``, or
the last line of the traceback).

Example:
    >>> run_python("print(6 * 7)").text
    '42'
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, Literal

__all__ = ["SandboxResult", "SandboxUnavailable", "require_bwrap", "run_python"]

# Runs in the child before the snippet (read from stdin): limits first, then the audit hook.
_BOOT = r"""
import ast, os, resource, signal, site, sys

def _limit(kind, value):
    hard = resource.getrlimit(kind)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (value, value))

root = os.path.realpath(sys.argv[1])
memory, cpu, fsize, nproc = (int(x) for x in sys.argv[2:6])
source = sys.stdin.read()
if os.getuid() == 0 and sys.argv[6] == "bwrap":  # root inside bubblewrap: become nobody, so that the
    os.setgroups([])                              # process limit holds (root is exempt from it)
    os.setgid(65534)
    os.setuid(65534)
_limit(resource.RLIMIT_NPROC, nproc)
_limit(resource.RLIMIT_CORE, 0)
_limit(resource.RLIMIT_FSIZE, fsize)
hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1 if hard == resource.RLIM_INFINITY else hard))
_limit(resource.RLIMIT_AS, memory)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises OSError instead
sys.dont_write_bytecode = True

_readable = tuple(
    {os.path.realpath(p) for p in (root, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
     *site.getsitepackages(), "/usr", "/lib", "/lib64", "/dev", "/proc/self", "/sys/devices/system/cpu",
     "/etc/localtime")}
)
_writable = (root, "/dev/null")
_refused = {
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg", "subprocess.Popen", "os.system", "os.exec",
    "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
    "pty.spawn", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
    "resource.setrlimit", "resource.prlimit", "sys.remote_exec",
}
_changes = {  # event -> the positions of its arguments that are paths it changes
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.symlink": (1,),
    "os.link": (0, 1), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "shutil.rmtree": (0,),
}
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

def _inside(path, roots):
    if isinstance(path, int) or path is None:  # an open file descriptor
        return True
    full = os.path.realpath(os.fsdecode(path))
    return any(full == r or full.startswith(r + os.sep) for r in roots)

def _hook(event, args):
    if event in _refused:
        kind = "network access" if event.startswith("socket.") else event
        raise PermissionError(f"sandbox: {kind} is not allowed")
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE)
        if not _inside(path, _writable if writing else _readable):
            raise PermissionError(f"sandbox: {path!r} is outside the working directory")
    elif event in _changes:
        for i in _changes[event]:
            if not _inside(args[i], _writable):
                raise PermissionError(f"sandbox: {args[i]!r} is outside the working directory")

sys.addaudithook(_hook)
tree = ast.parse(source, "<snippet>")
last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
scope = {"__name__": "__main__", "__builtins__": __builtins__}
del _limit, hard, memory, cpu, fsize, nproc, source
exec(compile(tree, "<snippet>", "exec"), scope)
if last is not None:  # like a REPL: show the value of a final bare expression
    value = eval(compile(ast.Expression(last.value), "<snippet>", "eval"), scope)
    if value is not None:
        print(repr(value))
"""

_ENV = {
    "PATH": os.defpath,
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


Isolation = Literal["bwrap", "none"]
MAX_PROCESSES = 32


class SandboxUnavailable(RuntimeError):
    """bubblewrap is not installed: the Python tool cannot be isolated here."""


def require_bwrap() -> str:
    """The path of ``bwrap``, or ``SandboxUnavailable`` with the one line a user needs."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(
            "the Python tool runs snippets in bubblewrap, which is not installed: install it "
            "(`apt-get install bubblewrap`, or `make install`), drop `python` from agent.tools, or set "
            "agent.python_sandbox: none (limits and an audit hook only; not for untrusted models)"
        )
    return path


def _bwrap_argv(bwrap: str, workdir: str) -> list[str]:
    """A bubblewrap jail: the Python installation and /usr read-only, the working directory writable."""
    argv = [bwrap, "--die-with-parent", "--new-session", "--clearenv"]
    argv += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        argv += ["--unshare-user"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    made: set[str] = {"/", "/tmp", "/proc", "/dev"}
    python = os.path.dirname(os.path.realpath(sys.executable))
    reads = [
        "/usr",
        "/etc/ld.so.cache",
        "/etc/localtime",
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        python,
    ]
    binds = [(p, "--ro-bind") for p in dict.fromkeys(os.path.realpath(r) for r in reads) if os.path.exists(p)]
    binds.append((os.path.realpath(workdir), "--bind"))
    for top in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(top):  # merged /usr: keep the links
            argv += ["--symlink", os.readlink(top), top]
            made.add(top)
    for path, how in sorted(binds, key=lambda b: b[0].count("/")):
        if any(path == m or path.startswith(m.rstrip("/") + "/") for m in made if m != "/" and m != "/tmp"):
            continue  # already inside a bound tree
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):  # the ancestors, traversable (bubblewrap would make them 0700)
            parent = "/" + "/".join(parts[:i])
            if parent not in made:
                argv += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        argv += [how, path, path]
        made.add(path)
    return argv + ["--chdir", os.path.realpath(workdir)]


@dataclass(frozen=True)
class SandboxResult:
    """What a snippet printed (cut to ``max_output``) and, if it failed, one line saying why."""

    output: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """One observation for the model: the output, then ``Error: ...`` if the snippet failed."""
        if self.error is None:
            return self.output or "(no output: print() the value you need)"
        return f"{self.output}\nError: {self.error}".strip()


def _read(stream: IO[bytes], limit: int) -> str:
    stream.seek(0)
    text = stream.read(limit * 4 + 4).decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + " ...(cut)"


def _tail(stream: IO[bytes], size: int = 8192) -> str:
    end = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, end - size))
    return stream.read().decode("utf-8", errors="replace")


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "failed without a message"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: the group is the child's own
    proc.kill()
    proc.wait()


def run_python(
    code: str,
    *,
    timeout: float = 5.0,
    memory_mb: int = 256,
    file_mb: int = 16,
    max_output: int = 2000,
    isolation: Isolation = "bwrap",
) -> SandboxResult:
    """Run ``code`` in a limited child process; every failure is returned, never raised.

    ``timeout`` bounds wall-clock time (and, rounded up, CPU time); ``memory_mb`` the address space;
    ``file_mb`` the size of any one file written, printed output included. A final bare expression
    is printed, as in a REPL.

    Example:
        >>> run_python("while True: pass", timeout=1).error
        'timed out after 1 s'
    """
    with (
        tempfile.TemporaryDirectory(prefix="tutelage-py-", ignore_cleanup_errors=True) as workdir,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        argv = [sys.executable, "-I", "-c", _BOOT, workdir]
        argv += [str(memory_mb * 2**20), str(max(1, math.ceil(timeout))), str(file_mb * 2**20)]
        argv += [str(MAX_PROCESSES), isolation]
        env = {**_ENV, "HOME": workdir, "TMPDIR": workdir}
        if isolation == "bwrap":
            try:
                jail = _bwrap_argv(require_bwrap(), workdir)
            except SandboxUnavailable as exc:
                return SandboxResult("", str(exc))
            for key, value in env.items():
                jail += ["--setenv", key, value]
            argv = [*jail, "--", *argv]
            if os.geteuid() == 0:
                os.chown(workdir, 65534, 65534)  # the snippet runs as nobody
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                cwd=workdir,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return SandboxResult("", f"could not start Python: {exc.strerror or exc}")
        try:
            proc.communicate(code.encode("utf-8", errors="replace"), timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return SandboxResult(_read(out, max_output), f"timed out after {timeout:g} s")
        except BaseException:
            _kill(proc)
            raise
        output, stderr = _read(out, max_output).rstrip("\n"), _tail(err)
    status = proc.returncode
    if status == 0:
        return SandboxResult(output)
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
        return SandboxResult(output, f"memory limit ({memory_mb} MB) exceeded")
    if status == -signal.SIGXCPU:
        return SandboxResult(output, f"timed out after {timeout:g} s of CPU time")
    if status < 0:
        return SandboxResult(output, f"killed by signal {-status}")
    return SandboxResult(output, _last_line(stderr))
