"""Optional MLflow logging of a finished run directory: the only module that imports mlflow.

The run directory stays the source of truth; MLflow gets a copy. Params are the flattened resolved
config, per-round metrics are logged at ``step=round``, run-level metrics at step 0, and the MLflow run
id is kept in ``tracking.json`` so logging the same run again (a resume, or ``log_run`` later) fills in
the same MLflow run instead of creating a second one.

Example:
    >>> from tutelage.tracking import log_run
    >>> log_run(Path("runs/quickstart"), "sqlite:///runs/mlflow.db")  # doctest: +SKIP
    '3f1c...'
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tutelage import runfiles
from tutelage.config import TrackingConfig, load_config
from tutelage.errors import ConfigError, RunDirError, TrackingError, TutelageError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = [
    "TRACKING_FILE",
    "TrackingError",
    "config_params",
    "log_finished_run",
    "log_run",
    "require_mlflow",
    "run_metrics",
]

log = logging.getLogger("tutelage")

TRACKING_FILE = "tracking.json"
INSTALL_HINT = "pip install 'tutelage[tracking]' (or mlflow-skinny)"
# MLflow's own limit (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH in 3.x); longer values are cut.
PARAM_LIMIT = 6000
ARTIFACTS = ("metrics.json", "report.md", "report.html", "playbook.md", "config.yaml", "versions.json")


def _installed() -> bool:
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):  # a broken install
        return False


def require_mlflow(cfg: TrackingConfig) -> None:
    """Fail before any model work when tracking is configured but mlflow is not installed.

    Raises:
        ConfigError: ``tracking.mlflow_uri`` is set and mlflow cannot be imported.
    """
    if cfg.mlflow_uri is not None and not _installed():
        raise ConfigError(f"tracking.mlflow_uri is set but mlflow is not installed: {INSTALL_HINT}")


def _client(uri: str) -> MlflowClient:
    # Offline by design, like the defaults in tutelage/__init__.py: no MLflow usage telemetry.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError(f"MLflow logging needs mlflow: {INSTALL_HINT}") from None
    return MlflowClient(tracking_uri=uri)


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{name}.")
        elif not isinstance(value, dict):
            yield re.sub(r"[^\w\-. /]", "_", name), value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def config_params(config: dict[str, Any]) -> dict[str, str]:
    """The resolved config as MLflow params: dotted keys, JSON for non-strings, cut at MLflow's limit.

    A ``user:password@`` in a URL (``api_base``, ``memory.url``, ``mlflow_uri``) is masked.
    """
    params = {}
    for key, value in _flatten(config):
        text = value if isinstance(value, str) else json.dumps(value)
        text = re.sub(r"://[^/@\s]+@", "://***@", text)  # credentials in a URL stay out of MLflow
        params[key] = text if len(text) <= PARAM_LIMIT else text[: PARAM_LIMIT - 3] + "..."
    return params


def run_metrics(metrics: dict[str, Any]) -> list[tuple[str, float, int]]:
    """``(key, value, step)`` from ``metrics.json``: every number of a round row at ``step=round``
    (``accepted`` as 0/1, ``cost.<role>.usd``...), then the run-level numbers at step 0
    (``test_accuracy.after``, ``dev_accuracy.kept``, ``total_cost.<role>.usd``, ``wall_seconds``...)."""
    points = []
    for row in metrics.get("rounds", []):
        step = int(row["round"])
        points += [
            (k, v, step)
            for k, raw in _flatten({k: x for k, x in row.items() if k != "round"})
            if (v := _number(raw)) is not None
        ]
    run_level = {("total_cost" if k == "cost" else k): x for k, x in metrics.items() if k != "rounds"}
    points += [(k, v, 0) for k, raw in _flatten(run_level) if (v := _number(raw)) is not None]
    return points


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stored_run_id(run_dir: Path, uri: str, experiment: str) -> str | None:
    for entry in _read_json(run_dir / TRACKING_FILE).get("runs", []):
        if entry.get("uri") == uri and entry.get("experiment") == experiment and entry.get("run_id"):
            return str(entry["run_id"])
    return None


def _store_run_id(run_dir: Path, uri: str, experiment: str, run_id: str) -> None:
    entries = [
        e
        for e in _read_json(run_dir / TRACKING_FILE).get("runs", [])
        if (e.get("uri"), e.get("experiment")) != (uri, experiment)
    ]
    entries.append({"uri": uri, "experiment": experiment, "run_id": run_id})
    runfiles.write_json(run_dir / TRACKING_FILE, {"runs": entries})


def _artifact_location(uri: str) -> str | None:
    # A SQLite store would otherwise put artifacts in ./mlruns under whatever the current directory is.
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()


def _existing_run(client: MlflowClient, run_id: str | None) -> str | None:
    from mlflow.exceptions import MlflowException

    if run_id is None:
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise  # unreachable is not gone: creating a second run now would duplicate it
        return None  # gone from this store (wiped, or another store at the same address)
    return run_id if run.info.lifecycle_stage != "deleted" else None


def _open_run(client: MlflowClient, run_dir: Path, uri: str, experiment: str, tags: dict[str, str]) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            client.create_experiment(experiment, artifact_location=_artifact_location(uri))
        except MlflowException as exc:  # another run created it first
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        raise TrackingError(f"MLflow experiment {experiment!r} is deleted; restore it or pick another name")
    experiment_id = found.experiment_id
    return str(client.create_run(experiment_id, run_name=run_dir.name, tags=tags).info.run_id)


def _tags(run_dir: Path, metrics: dict[str, Any], config: dict[str, Any]) -> dict[str, str]:
    version = _read_json(run_dir / "versions.json").get("tutelage")
    if version is None:
        try:
            version = metadata.version("tutelage")
        except metadata.PackageNotFoundError:
            version = "unknown"
    return {
        "tutelage.run_dir": str(run_dir.resolve()),
        "tutelage.stop_reason": str(metrics.get("stop_reason") or "running"),
        "tutelage.kept_round": str(metrics.get("kept_round")),
        "tutelage.suite": str(config.get("suite", {}).get("name")),
        "tutelage.version": str(version),
    }


def _send(
    client: MlflowClient,
    run_dir: Path,
    run: tuple[dict[str, Any], dict[str, Any]],
    *,
    uri: str,
    experiment: str,
    artifacts: bool,
) -> str:
    from mlflow.entities import Metric, Param, RunTag

    config, metrics = run
    tags = _tags(run_dir, metrics, config)
    kept = run_dir / "programs" / f"round_{metrics.get('kept_round')}.json"
    adapter = _read_json(kept).get("adapter") if kept.is_file() else None
    if adapter:  # the kept program answers with trained weights: say which
        tags["tutelage.adapter"] = str(adapter["name"])
        tags["tutelage.adapter_sha256"] = str(adapter.get("meta", {}).get("sha256", ""))
    run_id = _existing_run(client, _stored_run_id(run_dir, uri, experiment))
    points = run_metrics(metrics)
    params = config_params(config)
    if run_id is None:
        run_id = _open_run(client, run_dir, uri, experiment, tags)
        _store_run_id(run_dir, uri, experiment, run_id)
    else:  # logged before: add only what is missing, so no metric gets a second point per step
        logged = client.get_run(run_id).data.params
        params = {k: v for k, v in params.items() if k not in logged}
        seen = {
            (key, m.step) for key in {k for k, _, _ in points} for m in client.get_metric_history(run_id, key)
        }
        points = [p for p in points if (p[0], p[2]) not in seen]
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, step) for key, value, step in points],
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    if artifacts:
        for name in ARTIFACTS:
            if (run_dir / name).is_file():
                client.log_artifact(run_id, str(run_dir / name))
        if kept.is_file():
            client.log_artifact(run_id, str(kept), artifact_path="programs")
        weights = Path(adapter["path"]) if adapter and adapter.get("path") else None
        if weights is not None and weights.is_dir():  # the PEFT folder, and llama.cpp's GGUF copy
            client.log_artifacts(run_id, str(weights), artifact_path="adapter")
            gguf = adapter.get("meta", {}).get("gguf") if adapter else None
            if gguf and Path(gguf).is_file():
                client.log_artifact(run_id, gguf, artifact_path="adapter")
    client.set_terminated(run_id, "FINISHED" if metrics.get("stop_reason") else "KILLED")
    return run_id


def log_run(
    run_dir: Path, uri: str | None = None, experiment: str | None = None, *, artifacts: bool | None = None
) -> str:
    """Log a finished run directory to MLflow; return the MLflow run id.

    ``uri``, ``experiment`` and ``artifacts`` default to the run's ``tracking`` config. Logging a run
    again reuses the MLflow run recorded in ``tracking.json`` for that URI and experiment.

    Raises:
        RunDirError: ``run_dir`` is not a run directory or has no ``metrics.json`` yet.
        ConfigError: no tracking URI is given or configured, or mlflow is not installed.
        TrackingError: the tracking store cannot be reached or refuses the run.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise RunDirError(f"{run_dir} is not a tutelage run directory (no config.yaml)")
    metrics = _read_json(run_dir / "metrics.json")
    if not metrics:
        raise RunDirError(f"{run_dir} has no readable metrics.json yet; log it when the run has finished")
    resolved = load_config(run_dir / "config.yaml")
    cfg = resolved.tracking
    uri = uri or cfg.mlflow_uri
    if uri is None:
        raise ConfigError("no MLflow tracking URI: pass one or set tracking.mlflow_uri")
    experiment = experiment or cfg.experiment
    artifacts = cfg.log_artifacts if artifacts is None else artifacts
    try:
        return _send(
            _client(uri),
            run_dir,
            (resolved.model_dump(mode="json"), metrics),
            uri=uri,
            experiment=experiment,
            artifacts=artifacts,
        )
    except TutelageError:
        raise
    except Exception as exc:  # the backend raises MlflowException, requests, SQLAlchemy or OS errors
        reason = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise TrackingError(f"MLflow logging to {uri} failed: {type(exc).__name__}: {reason}") from exc


def log_finished_run(run_dir: Path, cfg: TrackingConfig) -> tuple[str | None, str | None]:
    """The end of a run: ``(mlflow run id, None)``, ``(None, warning)`` on failure, ``(None, None)`` if off.

    A tracking failure never fails the run: its files are already written and ``log_run`` can send
    them later, so the failure is logged as a warning and returned.
    """
    if cfg.mlflow_uri is None:
        return None, None
    try:
        return log_run(run_dir, cfg.mlflow_uri, cfg.experiment, artifacts=cfg.log_artifacts), None
    except TutelageError as exc:
        warning = (
            f"not logged to MLflow ({exc}); the run directory is complete: "
            f"log it later with `tutelage track {run_dir}`"
        )
        log.warning("%s", warning)
        return None, warning
