"""Issue 13, finding 6: the Python tool's snippets run in bubblewrap. Each attack a hostile-world probe
used against the in-process guard is tried here against the jail, with the guard switched off first."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tutelage.config import load_config
from tutelage.errors import ConfigError
from tutelage.tools import sandbox
from tutelage.tools.sandbox import run_python

# The probe's first move: the audit hook's refusal lists live in __main__; empty them.
UNGUARD = (
    "import __main__\n__main__._refused.clear()\n__main__._changes.clear()\n__main__._readable = ('',)\n"
)
UNGUARD += "__main__._writable = ('',)\n"


def test_switching_the_guard_off_from_inside_still_reaches_no_network() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = run_python(UNGUARD + f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)")
    assert (
        not result.ok
        and "Connection refused" in (result.error or "")
        or "unreachable" in (result.error or "")
    )


def test_the_parents_environment_and_the_hosts_processes_are_out_of_sight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUTELAGE_TEST_SECRET", "sk-do-not-leak")
    code = UNGUARD + (
        "import os\nfound = []\n"
        "for pid in os.listdir('/proc'):\n"
        "    try: found.append(open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError: pass\n"
        "try: found.append(open(f'/proc/{os.getppid()}/environ', 'rb').read())\n"
        "except OSError: pass\n"
        "try: found.append(open('/proc/self/cwd/../../../proc/1/environ', 'rb').read())\n"
        "except OSError: pass\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "print(any(b'sk-do-not-leak' in f for f in found), len(pids))"
    )
    result = run_python(code)
    leaked, processes = result.output.split()
    assert result.ok and leaked == "False" and int(processes) <= 3  # its own, not the host's


def test_files_outside_the_working_directory_can_be_neither_read_nor_written(tmp_path: Path) -> None:
    project = Path(__file__).resolve().parents[1]
    code = UNGUARD + (
        "import os\nout = []\n"
        f"for path in ({str(project / 'README.md')!r}, {str(tmp_path / 'x')!r}, '/etc/passwd'):\n"
        "    try: out.append(open(path).read()[:5])\n"
        "    except OSError as e: out.append(type(e).__name__)\n"
        "for path in ('/usr/owned', os.path.realpath(os.sys.prefix) + '/owned', '../../owned'):\n"
        "    try: open(path, 'w').write('x'); out.append('wrote ' + path)\n"
        "    except OSError as e: out.append(type(e).__name__)\n"
        "print(out)"
    )
    (tmp_path / "x").write_text("secret")
    result = run_python(code)
    assert result.ok and "wrote" not in result.output and "secret" not in result.output, result.output
    assert (
        "FileNotFoundError" in result.output
        and "OSError" in result.output
        or "PermissionError" in result.output
    )


def test_a_process_started_past_the_guard_dies_with_the_snippet() -> None:
    marker = f"{time.time_ns() % 10**6}.5"
    code = UNGUARD + (
        "import subprocess\n"
        f"subprocess.Popen(['/usr/bin/sleep', '{marker}'], start_new_session=True)\n"
        "print('started')"
    )
    result = run_python(code)
    assert result.output == "started", result
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout
    subprocess.run(["pkill", "-f", f"sleep {marker}"], check=False)
    assert left == "", "a snippet's process outlived it"


def test_a_fork_bomb_is_stopped_by_the_process_limit() -> None:
    code = UNGUARD + (
        "import os, time\nn = 0\n"
        "try:\n"
        "    for _ in range(1000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(3); os._exit(0)\n"
        "        n += 1\n"
        "except OSError: pass\n"
        "print(n)"
    )
    result = run_python(code, timeout=10)
    assert result.ok and int(result.output) < sandbox.MAX_PROCESSES


def test_without_bubblewrap_the_python_tool_refuses_to_start_unless_the_config_says_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    from tutelage.agents.build import require_tools

    cfg = load_config(None, ["agent.kind=react"])
    with pytest.raises(
        ConfigError, match="the Python tool runs snippets in bubblewrap, which is not installed"
    ):
        require_tools(cfg)
    require_tools(load_config(None, ["agent.kind=react", "agent.python_sandbox=none"]))  # asked for: runs
    require_tools(load_config(None, ["agent.kind=react", "agent.tools=[calculator]"]))  # no Python tool
    assert "not installed" in (run_python("print(1)").error or "")
    assert run_python("print(1)", isolation="none").text == "1"


@pytest.mark.skipif(os.geteuid() != 0, reason="as root, the snippet must drop to nobody")
def test_a_snippet_run_by_root_is_nobody_inside() -> None:
    assert run_python("import os\nprint(os.getuid(), os.getgid())").text == "65534 65534"
