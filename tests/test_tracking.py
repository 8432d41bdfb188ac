"""Optional MLflow logging: a scripted run read back from a local SQLite store, re-logged, resumed."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy
import pytest
import yaml

import tutelage
from tutelage import tracking
from tutelage.errors import ConfigError
from tutelage.loop.runner import RunResult
from tutelage.testing import HashEmbedder, ScriptedServer, last_demo_answer

from .conftest import scripted_config, teacher_reply

mlflow_tracking = pytest.importorskip("mlflow.tracking")
# MLflow 3.17's SQLite store with SQLAlchemy 2.1: not ours to fix, and not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunResult, str]]:
    """One two-round scripted run logged to a fresh SQLite store (shared: the store's setup is slow)."""
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with (
        ScriptedServer(last_demo_answer, model="student") as s,
        ScriptedServer(teacher_reply, model="teacher") as t,
    ):
        small = ("suite.dev_size=10", "suite.test_size=10", "loop.batch_size=20")
        cfg = scripted_config(root, s.api_base, t.api_base, *small, f"tracking.mlflow_uri={uri}")
        yield tutelage.run(cfg, embedder=HashEmbedder()), uri
    dspy.settings.configure(lm=None, adapter=None)


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_a_tracked_run_logs_config_round_metrics_tags_and_artifacts(tracked: tuple[RunResult, str]) -> None:
    result, uri = tracked
    assert result.tracking_warning is None and result.mlflow_run_id
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    client = mlflow_tracking.MlflowClient(uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "scripted"
    params = run.data.params
    assert (params["student.model"], params["loop.rounds"], params["loop.optimizer"]) == (
        "student",
        "2",
        "fewshot",
    )
    assert params["loop.search_k"] == "[1, 2]" and params["tracking.mlflow_uri"] == uri
    rounds = metrics["rounds"]
    for key in ("dev_accuracy", "train_accuracy", "lessons", "lessons_added", "accepted", "seconds"):
        assert _history(client, run.info.run_id, key) == [(r["round"], float(r[key])) for r in rounds], key
    for role in ("student", "teacher"):
        expected = [(r["round"], float(r["cost"][role]["tokens_in"])) for r in rounds]
        assert _history(client, run.info.run_id, f"cost.{role}.tokens_in") == expected
        assert run.data.metrics[f"total_cost.{role}.usd"] == metrics["cost"][role]["usd"]
    assert run.data.metrics["test_accuracy.after"] == metrics["test_accuracy"]["after"]
    assert run.data.metrics["dev_accuracy.kept"] == metrics["dev_accuracy"]["kept"]
    assert run.data.metrics["wall_seconds"] == metrics["wall_seconds"]
    assert run.data.tags["tutelage.run_dir"] == str(result.run_dir.resolve())
    assert run.data.tags["tutelage.stop_reason"] == metrics["stop_reason"]
    listed = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "report.md", "playbook.md", "config.yaml", "programs"} <= listed
    kept = [a.path for a in client.list_artifacts(run.info.run_id, "programs")]
    assert kept == [f"programs/round_{metrics['kept_round']}.json"]


def test_logging_again_or_resuming_fills_in_the_same_mlflow_run(tracked: tuple[RunResult, str]) -> None:
    result, uri = tracked
    assert tracking.log_run(result.run_dir) == result.mlflow_run_id
    assert tutelage.resume(result.run_dir, embedder=HashEmbedder()).mlflow_run_id == result.mlflow_run_id
    client = mlflow_tracking.MlflowClient(uri)
    experiment = client.get_experiment_by_name("tutelage")
    assert [r.info.run_id for r in client.search_runs([experiment.experiment_id])] == [result.mlflow_run_id]
    assert [step for step, _ in _history(client, result.mlflow_run_id, "dev_accuracy")] == [1, 2]
    stored = json.loads((result.run_dir / tracking.TRACKING_FILE).read_text())["runs"]
    assert stored == [{"uri": uri, "experiment": "tutelage", "run_id": result.mlflow_run_id}]


def test_a_kept_adapter_is_tagged_and_its_weights_logged_as_artifacts(
    tracked: tuple[RunResult, str], tmp_path: Path
) -> None:
    result, uri = tracked
    run_dir = tmp_path / "weights-run"
    shutil.copytree(result.run_dir, run_dir)
    (run_dir / tracking.TRACKING_FILE).unlink()
    weights = tmp_path / "adapter"
    weights.mkdir()
    (weights / "adapter_config.json").write_text("{}")
    (weights / "adapter_model.safetensors").write_bytes(b"w")
    (tmp_path / "adapter.gguf").write_bytes(b"g")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    kept = run_dir / "programs" / f"round_{metrics['kept_round']}.json"
    program = json.loads(kept.read_text())
    meta = {"sha256": "abc123", "gguf": str(tmp_path / "adapter.gguf")}
    program["adapter"] = {
        "name": "r2-lora",
        "base": "b",
        "path": str(weights),
        "trainer": "peft",
        "meta": meta,
    }
    kept.write_text(json.dumps(program))
    run_id = tracking.log_run(run_dir, uri, "weights")
    client = mlflow_tracking.MlflowClient(uri)
    tags = client.get_run(run_id).data.tags
    assert tags["tutelage.adapter"] == "r2-lora" and tags["tutelage.adapter_sha256"] == "abc123"
    logged = sorted(a.path for a in client.list_artifacts(run_id, "adapter"))
    assert logged == [
        "adapter/adapter.gguf",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
    ]


def test_an_unusable_store_is_a_warning_and_the_run_still_succeeds(
    tracked: tuple[RunResult, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = shutil.copytree(tracked[0].run_dir, tmp_path / "copy")
    (run_dir / tracking.TRACKING_FILE).unlink()
    (tmp_path / "a-file").write_text("")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["tracking"]["mlflow_uri"] = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    with caplog.at_level(logging.WARNING, logger="tutelage"):
        resumed = tutelage.resume(run_dir, embedder=HashEmbedder())
    assert resumed.mlflow_run_id is None and resumed.metrics["rounds"]
    assert resumed.tracking_warning and "not logged to MLflow" in resumed.tracking_warning
    assert "not logged to MLflow" in caplog.text
    assert not (run_dir / tracking.TRACKING_FILE).exists()


def test_missing_mlflow_is_a_config_error_before_any_model_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` sees when it is not installed
    cfg = scripted_config(tmp_path, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", "tracking.mlflow_uri=x")
    with pytest.raises(ConfigError, match=r"pip install 'tutelage\[tracking\]'"):
        tutelage.run(cfg, embedder=HashEmbedder())
    assert not (tmp_path / "runs").exists()


def test_without_a_uri_nothing_is_logged(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    student_server: ScriptedServer,
    teacher_server: ScriptedServer,
) -> None:
    def no_mlflow(uri: str) -> None:
        raise AssertionError("mlflow was used without tracking.mlflow_uri")

    monkeypatch.setattr(tracking, "_client", no_mlflow)
    monkeypatch.chdir(tmp_path)
    small = ("loop.rounds=1", "suite.dev_size=10", "suite.test_size=10")
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base, *small)
    result = tutelage.run(cfg, embedder=HashEmbedder())
    assert (result.mlflow_run_id, result.tracking_warning) == (None, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert not (result.run_dir / tracking.TRACKING_FILE).exists()


def test_params_are_flat_strings_cut_at_mlflows_limit_and_metrics_skip_what_is_not_a_number() -> None:
    params = tracking.config_params(
        {"a": {"b": "x" * 7000, "c": None, "d": [1, 2]}, "e": True, "url": "http://me:secret@host/v1"}
    )
    assert params == {
        "a.b": "x" * (tracking.PARAM_LIMIT - 3) + "...",
        "a.c": "null",
        "a.d": "[1, 2]",
        "e": "true",
        "url": "http://***@host/v1",
    }
    rows = [
        {"round": 1, "accepted": True, "p_value": None, "decision": "kept", "cost": {"student": {"usd": 0.5}}}
    ]
    points = tracking.run_metrics({"rounds": rows, "cost": {"student": {"usd": 1.0}}, "stop_reason": "done"})
    assert points == [("accepted", 1.0, 1), ("cost.student.usd", 0.5, 1), ("total_cost.student.usd", 1.0, 0)]
