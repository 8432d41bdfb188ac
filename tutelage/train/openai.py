"""The ``openai`` trainer: a hosted fine-tuning job on the OpenAI fine-tuning API (or one like it).

The prompt-completion rows become chat rows (``{"messages": prompt + completion}``), are uploaded as a
``fine-tune`` file, and a supervised job is created and polled until it ends. ``out_dir/job.json``
holds the file and job ids as soon as each exists, so a killed call that is run again polls the job it
already created instead of paying for a second one. The adapter is the tuned model's name (no local
weights): the student's backend serves it by name.

``learning_rate`` becomes OpenAI's ``learning_rate_multiplier`` relative to the peft default (2e-4 is
1.0); ``epochs`` is rounded up to whole epochs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import httpx

from tutelage import failpoints, runfiles
from tutelage.backends import resolve_api_key
from tutelage.errors import ConfigError, DataError, EndpointError, RunDirError, TrainError
from tutelage.train import Adapter, Progress

__all__ = ["OpenAITrainer"]

BASE_LEARNING_RATE = 2e-4  # train.learning_rate's default: a multiplier of 1.0
SUFFIX_CHARS = 18  # OpenAI once allowed 18 suffix characters (now 64): the cut every version takes
DONE = ("succeeded", "failed", "cancelled")
TRANSIENT_POLLS = 5  # failed polls in a row (no connection, 429, 5xx) before giving up on the API


def _chat_rows(data: Path) -> list[dict[str, Any]]:
    """Each prompt-completion row of ``data`` as one OpenAI chat row."""
    try:
        lines = data.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read training rows {data}: {exc.strerror or exc}") from None
    rows = []
    for line_no, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{data}:{line_no}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), list) or not row.get("completion"):
            raise DataError(f"{data}:{line_no}: expected a prompt-completion row")
        rows.append({"messages": [*row["prompt"], *row["completion"]]})
    if not rows:
        raise DataError(f"{data}: no training rows")
    return rows


def _suffix(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:SUFFIX_CHARS].strip("-")


def _job_request(base: str, seed: int, options: dict[str, Any], *, default_name: str) -> dict[str, Any]:
    """The job to create, less its training file: a supervised job with the run's settings."""
    settings = {
        "n_epochs": max(1, math.ceil(float(options.get("epochs") or 1))),
        "batch_size": int(options.get("batch_size") or 1),
        "learning_rate_multiplier": float(options.get("learning_rate") or BASE_LEARNING_RATE)
        / BASE_LEARNING_RATE,
    }
    request: dict[str, Any] = {
        "model": base,
        "seed": seed,
        "method": {"type": "supervised", "supervised": {"hyperparameters": settings}},
    }
    suffix = _suffix(str(options.get("name") or default_name))
    return {**request, "suffix": suffix} if suffix else request


def _save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` so that a kill leaves the old file or the new one, never half of one."""
    runfiles.write_json(path, state)


def _error_message(response: httpx.Response) -> str:
    """The error an API put in its body (OpenAI's ``error.message``, vLLM's ``message``), else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    if isinstance(body, dict):
        error = body.get("error")
        found = error.get("message") if isinstance(error, dict) else error or body.get("message")
        if found:
            return " ".join(str(found).split())[:300]
    return ""


class _Api:
    """The fine-tuning API at one base URL; every failure is one line."""

    def __init__(self, api_base: str, api_key: str, timeout: float = 60.0) -> None:
        self.base = api_base.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        what = f"fine-tuning API {self.base}"
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise EndpointError(f"{what} refused the connection") from None
        except httpx.TimeoutException:
            raise EndpointError(f"{what} did not answer {method} {path} in time") from None
        except httpx.HTTPError as exc:
            raise EndpointError(f"{what} failed on {method} {path}: {exc.__class__.__name__}") from None
        if response.status_code in (401, 403):
            raise EndpointError(f"{what} rejected the API key (HTTP {response.status_code})")
        if response.status_code == 429 or response.status_code >= 500:
            raise EndpointError(f"{what} answered {method} {path} with HTTP {response.status_code}")
        if response.status_code >= 400:
            detail = _error_message(response) or "no detail"
            raise TrainError(f"{what} refused {method} {path} (HTTP {response.status_code}): {detail}")
        try:
            return response.json()
        except ValueError:
            raise EndpointError(f"{what} answered {method} {path} with something not JSON") from None

    def poll(self, path: str, *, wait: float, **kwargs: Any) -> Any:
        """A GET that outlasts a short outage: the job runs on whether or not we can see it."""
        for attempt in range(TRANSIENT_POLLS):
            try:
                return self.call("GET", path, **kwargs)
            except EndpointError as exc:
                if "API key" in str(exc) or attempt == TRANSIENT_POLLS - 1:
                    raise
                time.sleep(wait)
        raise AssertionError("unreachable")


class OpenAITrainer:
    """Supervised fine-tuning of ``base`` (a hosted model name) with epochs, batch size and seed."""

    name = "openai"

    def train(
        self,
        base: str,
        *,
        data: Path,
        out_dir: Path,
        seed: int,
        options: dict[str, Any],
        progress: Progress | None = None,
    ) -> Adapter:
        """Train ``base`` on ``data``; a call whose ``out_dir`` holds a ``job.json`` resumes that job.

        Example:
            >>> adapter = OpenAITrainer().train(  # doctest: +SKIP
            ...     "gpt-4.1-mini", data=rows, out_dir=run_dir / "train", seed=0,
            ...     options={**cfg.train.model_dump(), "name": "round-2"},
            ... )
            >>> adapter.name  # 'ft:gpt-4.1-mini:round-2:abc123'
        """
        if not options.get("api_base"):
            raise ConfigError("train.api_base is required when train.trainer is openai")
        api = _Api(str(options["api_base"]), resolve_api_key(options.get("api_key_env")))
        wait = float(options.get("poll_seconds") or 10.0)
        rows = _chat_rows(data)
        content = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
        request = _job_request(base, seed, options, default_name=out_dir.name)
        key = hashlib.sha256(content + json.dumps(request, sort_keys=True).encode()).hexdigest()
        out_dir.mkdir(parents=True, exist_ok=True)
        state_path = out_dir / "job.json"
        state = self._state(state_path, key)
        if "file_id" not in state:
            runfiles.write_bytes(out_dir / "train.chat.jsonl", content)
            uploaded = api.call(
                "POST",
                "/files",
                data={"purpose": "fine-tune"},
                files={"file": ("train.chat.jsonl", content, "application/jsonl")},
            )
            state["file_id"] = str(uploaded["id"])
            _save(state_path, state)
        if "job_id" not in state:
            # A kill while the job was being created may have left a job we never heard of: find it.
            found = _job_tagged(api, key) if state.get("asked") else None
            if found is None:
                state["asked"] = True
                _save(state_path, state)
                body = {**request, "training_file": state["file_id"], "metadata": {"tutelage_key": key[:32]}}
                answer = api.call("POST", "/fine_tuning/jobs", json=body)
                found = str(answer["id"])
            state["job_id"] = found
            _save(state_path, state)
        job = self._wait(api, state["job_id"], wait, progress)
        if job.get("status") != "succeeded" or not job.get("fine_tuned_model"):
            error = job.get("error") or {}
            detail = error.get("message") if isinstance(error, dict) else str(error)
            raise TrainError(
                f"fine-tuning job {state['job_id']} {job.get('status', 'ended')}: "
                f"{' '.join(str(detail or 'no error message').split())[:300]} "
                f"(delete {state_path} to start a new job)"
            )
        began, ended = job.get("created_at"), job.get("finished_at")
        if isinstance(began, int) and isinstance(ended, int):
            seconds = float(ended - began)  # the job's own time, whatever became of our process
        else:
            seconds = time.time() - float(state.get("started_at", time.time()))
        tokens = job.get("trained_tokens")
        meta = {
            "job_id": state["job_id"],
            "training_file": state["file_id"],
            "trained_tokens": tokens,
            "tokens": tokens,
            "seconds": round(seconds, 1),
            "examples": len(rows),
        }
        return Adapter(name=str(job["fine_tuned_model"]), base=base, path=None, trainer=self.name, meta=meta)

    @staticmethod
    def _state(path: Path, key: str) -> dict[str, Any]:
        """What an earlier call on the same training left in ``job.json`` (nothing: a fresh start)."""
        if not path.is_file():
            state: dict[str, Any] = {"key": key, "started_at": time.time()}
            _save(path, state)
            return state
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise RunDirError(f"{path} is unreadable; delete it to start a new fine-tuning job") from None
        if not isinstance(state, dict) or state.get("key") != key:
            raise RunDirError(
                f"{path} belongs to another training (its rows, base or settings differ); "
                "delete it or train in another folder"
            )
        return state

    @staticmethod
    def _wait(api: _Api, job_id: str, wait: float, progress: Progress | None) -> dict[str, Any]:
        """Poll the job until it ends, reporting its newest step (total 0 while it is unknown)."""
        reported: tuple[int, int, str] | None = None
        while True:
            job: dict[str, Any] = api.poll(f"/fine_tuning/jobs/{job_id}", wait=wait)
            status = str(job.get("status", ""))
            failpoints.step()
            if progress is not None:
                events = api.poll(f"/fine_tuning/jobs/{job_id}/events", wait=wait, params={"limit": 20})
                now = _progress(status, events.get("data") or [])
                if now != reported:
                    progress(*now)
                    reported = now
            if status in DONE:
                return job
            time.sleep(wait)


def _job_tagged(api: _Api, key: str) -> str | None:
    """The id of a job created earlier for this training (tagged with its key), if the API lists one."""
    try:
        listed = api.call("GET", "/fine_tuning/jobs", params={"limit": 100})
    except TrainError:
        return None  # an API that cannot list jobs: create one
    for job in listed.get("data") or []:
        if isinstance(job, dict) and (job.get("metadata") or {}).get("tutelage_key") == key[:32]:
            return str(job["id"])
    return None


def _progress(status: str, events: list[dict[str, Any]]) -> tuple[int, int, str]:
    """``(step, total, message)`` from the newest events (the API lists them newest first)."""
    step = total = 0
    for event in events:
        data = event.get("data") or {}
        if isinstance(data, dict) and "step" in data:
            step, total = int(data.get("step") or 0), int(data.get("total_steps") or 0)
            break
        found = re.match(r"Step (\d+)/(\d+)", str(event.get("message", "")))
        if found:
            step, total = int(found.group(1)), int(found.group(2))
            break
    latest = str(events[0].get("message", "")) if events else ""
    return step, total, f"{status}: {latest}" if latest else status
