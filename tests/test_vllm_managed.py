"""provider vllm with no api_base: tutelage starts `vllm serve` (here the package's stand-in that follows
vLLM's HTTP API), asks it for label-constrained replies, and never leaves it running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import tutelage
from tutelage.config import RunConfig
from tutelage.errors import ConfigError
from tutelage.evals.runner import evaluate
from tutelage.evals.suites import load_suite
from tutelage.testing import HashEmbedder, ScriptedServer, fake_vllm

from .conftest import scripted_config

VLLM = ("student.provider=vllm", "student.api_base=null", "student.model=org/fake-0.5b")


def _events(log: Path, kind: str) -> list[dict[str, Any]]:
    if not log.is_file():
        return []
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["event"] == kind]


def _gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie of ours counts as gone once reaped
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


@pytest.fixture
def vllm_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_vllm(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "vllm.jsonl"
    monkeypatch.setenv("TUTELAGE_FAKE_VLLM_LOG", str(log))
    return log


def _config(tmp_path: Path, teacher: str, *extra: str) -> RunConfig:
    return scripted_config(
        tmp_path,
        "http://unused/v1",
        teacher,
        *VLLM,
        "student.serve.gpu_memory_utilization=0.5",
        "student.serve.max_model_len=2048",
        "student.serve.args=[--dtype, bfloat16]",
        "loop.rounds=1",
        *extra,
    )


def test_a_run_starts_vllm_serve_asks_for_one_label_and_stops_the_server(
    tmp_path: Path, vllm_path: Path, teacher_server: ScriptedServer
) -> None:
    cfg = _config(tmp_path, teacher_server.api_base)
    result = tutelage.run(cfg, embedder=HashEmbedder())
    (start,) = _events(vllm_path, "start")
    argv = start["argv"]
    assert argv[:2] == ["serve", "org/fake-0.5b"] and "--enable-lora" in argv
    for flag, value in (
        ("--gpu-memory-utilization", "0.5"),
        ("--max-model-len", "2048"),
        ("--dtype", "bfloat16"),
    ):
        assert argv[argv.index(flag) + 1] == value
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert start["lora_updating"] == "True"  # adapters can be loaded at runtime
    labels = load_suite(cfg.suite).labels
    chats = [e["body"] for e in _events(vllm_path, "chat")]
    assert chats and all(b["structured_outputs"] == {"choice": labels} for b in chats)
    assert all(b["model"] == "org/fake-0.5b" for b in chats)
    assert result.metrics["test_accuracy"]["after"] > 0.0
    assert _gone(start["pid"]) and _gone(start["engine_pid"])  # the server and its engine are stopped


def test_eval_reports_the_constrained_and_the_snapped_score(tmp_path: Path, vllm_path: Path) -> None:
    cfg = _config(tmp_path, "http://unused/v1", "teacher=off", "suite.test_size=12")
    summary = evaluate(cfg, baseline="fewshot-random", k=2)
    assert summary.decoding == "constrained" and summary.free_score is not None
    chats = [e["body"] for e in _events(vllm_path, "chat")]
    constrained = [b for b in chats if "structured_outputs" in b]
    assert len(constrained) == 12 and len(chats) == 24  # the same items, once free
    saved = json.loads((Path(summary.out) / "summary.json").read_text())
    assert saved["decoding"] == "constrained" and saved["free_score"] == summary.free_score


def test_an_openai_endpoint_is_never_sent_structured_outputs(
    tmp_path: Path, teacher_server: ScriptedServer
) -> None:
    with ScriptedServer(model="student") as student:
        cfg = scripted_config(tmp_path, student.api_base, teacher_server.api_base, "loop.rounds=1")
        tutelage.run(cfg, embedder=HashEmbedder())
        assert student.chat_requests() and not any("structured_outputs" in r for r in student.chat_requests())


def test_no_vllm_command_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with (
        ScriptedServer(model="teacher") as teacher,
        pytest.raises(ConfigError, match=r"no `vllm` command is installed: `pip install 'tutelage\[vllm\]'`"),
    ):
        tutelage.run(_config(tmp_path, teacher.api_base), embedder=HashEmbedder())
    assert not (tmp_path / "runs" / "scripted").exists()


@pytest.mark.parametrize("how", ["ctrl-c", "sigkill"])
def test_interrupting_or_killing_the_run_stops_the_server(
    tmp_path: Path, vllm_path: Path, teacher_server: ScriptedServer, how: str
) -> None:
    cfg = _config(tmp_path, teacher_server.api_base, "loop.rounds=3")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    env = {**os.environ, "TUTELAGE_FAKE_VLLM_DELAY": "0.05"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tutelage.cli", "run", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's Ctrl-C finds it
    )
    try:
        deadline = time.monotonic() + 120
        while len(_events(vllm_path, "chat")) < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        (start,) = _events(vllm_path, "start")
        proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert _gone(start["pid"]), "vllm serve outlived the run"
    assert _gone(start["engine_pid"]), "vllm's engine process outlived the run"
