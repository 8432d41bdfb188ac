"""The student's tools: the safe calculator and the Python sandbox (real child processes, offline)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tutelage.tools.calculator import CalculatorError, calculate, evaluate
from tutelage.tools.sandbox import run_python


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("12*7", "84"),
        ("(12 + 3) * 4 / 5", "12"),
        ("7 / 2", "3.5"),
        ("7 // 2 + 7 % 2", "4"),
        ("-3 ** 2", "-9"),
        ("(-3) ** 2", "9"),
        ("2^10", "1024"),
        ("0.1 + 0.2", "0.3"),
        ("sqrt(16) + round(2.567, 2)", "6.57"),
        ("max(3, abs(-8), min(1, 2))", "8"),
        ("$12 × 3", "36"),
        ("2 * pi", "6.28318530718"),
    ],
)
def test_calculator_evaluates_arithmetic(expression: str, value: str) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("x + 1", "unknown name 'x'"),
        ("__import__('os').system('ls')", "unknown function"),
        ("__import__('os')", "unknown function"),
        ("(1).real", "attribute access"),
        ("().__class__.__bases__", "attribute access"),
        ("open('/etc/passwd')", "unknown function"),
        ("[1, 2][0]", "Subscript"),
        ("'a' * 3", "not a number"),
        ("9 ** 9 ** 9", "too large"),
        ("2 ** 100000", "too large"),
        ("10.0 ** 400", "too large"),
        ("(-8) ** (1 / 3)", "not a real number"),
        ("1 / 0", "division by zero"),
        ("round(2.5, digits=1)", "positional"),
        ("1 +", "not a valid"),
        ("1" + "+1" * 300, "longer than"),
    ],
)
def test_calculator_refuses_anything_but_bounded_arithmetic(expression: str, reason: str) -> None:
    text = calculate(expression)  # never raises into the agent
    assert text.startswith("Error:") and reason in text
    with pytest.raises(CalculatorError):
        evaluate(expression)


def test_sandbox_returns_what_the_snippet_prints() -> None:
    assert run_python("print(2 + 2)").text == "4"
    assert run_python("from fractions import Fraction\nFraction(1, 3) + Fraction(1, 6)").text == (
        "Fraction(1, 2)"  # a final bare expression is shown, as in a REPL
    )
    failed = run_python("total = 10\nprint(total)\ntotal / 0")
    assert failed.output == "10" and failed.error == "ZeroDivisionError: division by zero"
    assert run_python("x = 1").text.startswith("(no output")


def test_sandbox_kills_an_infinite_loop_at_the_timeout() -> None:
    result = run_python("while True:\n    pass", timeout=1)
    assert result.error == "timed out after 1 s"


def test_sandbox_turns_a_memory_bomb_into_a_memory_error() -> None:
    bomb = "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 2**20))"
    result = run_python(bomb, memory_mb=128, timeout=30)
    assert result.error == "memory limit (128 MB) exceeded"


def test_sandbox_refuses_network_even_to_localhost() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        result = run_python(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}))\nprint('connected')"
        )
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever reached the listener
    assert not result.ok and "connected" not in result.output
    assert result.error is not None and "network access is not allowed" in result.error
    fetched = run_python("import urllib.request\nurllib.request.urlopen('http://example.com')")
    assert fetched.error is not None and "network access is not allowed" in fetched.error


def test_sandbox_refuses_new_processes() -> None:
    for code in (
        "import subprocess\nsubprocess.run(['ls'])",
        "import os\nos.system('ls')",
        "import os\nos.fork()",
    ):
        result = run_python(code)
        assert result.error is not None and "is not allowed" in result.error


def test_sandbox_files_stay_in_a_temporary_directory_that_is_removed(tmp_path: Path) -> None:
    code = "import os\nopen('notes.txt', 'w').write('hi')\nprint(os.getcwd())\nprint(os.listdir('.'))"
    result = run_python(code)
    workdir, listing = result.output.splitlines()
    assert listing == "['notes.txt']" and re.search(r"tutelage-py-", workdir)
    assert not Path(workdir).exists()
    outside = tmp_path / "escaped.txt"
    escaped = run_python(f"open({str(outside)!r}, 'w').write('x')")
    assert escaped.error is not None and "outside the working directory" in escaped.error
    assert not outside.exists()
    secret = tmp_path / "secret.txt"
    secret.write_text("gold answers")
    read = run_python(f"print(open({str(secret)!r}).read())")
    assert "gold answers" not in read.text


def test_sandbox_gets_a_minimal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-snippets")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    result = run_python("import os\nprint(sorted(os.environ))\nprint(os.environ['HOME'] == os.getcwd())")
    names, home_is_workdir = result.output.splitlines()
    assert "OPENAI_API_KEY" not in names and "HTTPS_PROXY" not in names
    assert home_is_workdir == "True"


def test_sandbox_output_is_cut() -> None:
    result = run_python("print('x' * 10_000)", max_output=100)
    assert result.ok and len(result.output) < 120 and result.output.endswith("...(cut)")
