"""The fake of OpenAI's fine-tuning API (files, jobs, events) and vLLM's LoRA routes for ScriptedServer."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

Answer = tuple[int, dict[str, Any] | str]


def structured_choice(body: dict[str, Any], text: str) -> str:
    """What vLLM's structured outputs make of a reply: with ``structured_outputs.choice`` the output is
    exactly one of the choices (here: the reply when it is one, else the choice it most resembles)."""
    spec = body.get("structured_outputs")
    choices = spec.get("choice") if isinstance(spec, dict) else None
    if not isinstance(choices, list) or not choices or text in choices:
        return text
    import difflib

    return (difflib.get_close_matches(text, [str(c) for c in choices], n=1, cutoff=0.0) or [str(choices[0])])[
        0
    ]


def _openai_error(status: int, message: str, param: str | None = None) -> Answer:
    return status, {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    }


def _vllm_error(status: int, message: str, kind: str) -> Answer:
    # vLLM's ErrorResponse since 0.10: OpenAI's envelope, with the HTTP status as ``code`` (older
    # servers put ``message`` at the top level, with ``"object": "error"``).
    return status, {"error": {"message": message, "type": kind, "param": None, "code": status}}


def _form(content_type: str, raw: bytes) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body (a file field's name is kept as ``filename``)."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        return {}
    fields: dict[str, Any] = {}
    for chunk in raw.split(b"--" + boundary.group(1).encode())[1:-1]:
        head, _, value = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        filename = re.search(rb'filename="([^"]*)"', head)
        if name is not None:
            fields[name.group(1).decode()] = value.removesuffix(b"\r\n").decode("utf-8", "replace")
        if filename is not None:
            fields["filename"] = filename.group(1).decode()
    return fields


def _chat_file_problem(text: str) -> str | None:
    """Why a fine-tuning file is not in OpenAI's chat format (None: it is)."""
    for line_no, line in enumerate(text.splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return f"line {line_no} is not JSON"
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not all(
            isinstance(m, dict)
            and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str)
            for m in messages
        ):
            return f"line {line_no} has no valid 'messages' list"
        if not any(m["role"] == "assistant" for m in messages):
            return f"line {line_no} has no assistant message"
    return None if text.strip() else "the file has no examples"


class _Hosted:
    """What the scripted server serves besides its base model: OpenAI fine-tuning jobs and vLLM's
    runtime LoRA adapters. Callers hold the server's lock."""

    def __init__(self, job_polls: int) -> None:
        self.job_polls = max(1, job_polls)
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # every job-creation request body
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.polls: dict[str, int] = {}
        self.doomed: dict[str, str] = {}  # job id -> the error message it will fail with
        self.fail_jobs: list[str] = []
        self.tuned: set[str] = set()
        self.loras: dict[str, str] = {}  # adapter name -> path
        self.unloaded: set[str] = set()

    def upload(self, fields: dict[str, Any]) -> Answer:
        if fields.get("purpose") != "fine-tune" or "file" not in fields:
            return _openai_error(400, "expected multipart fields 'purpose' (fine-tune) and 'file'", "file")
        content = str(fields["file"]).encode()
        file_id = f"file-{len(self.files) + 1:04d}"
        self.files[file_id] = content
        card = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time())}
        return 200, {**card, "filename": fields.get("filename", "upload"), "purpose": "fine-tune"}

    def create_job(self, body: dict[str, Any]) -> Answer:
        self.created.append(body)
        model, training_file = body.get("model"), body.get("training_file")
        if not model:
            return _openai_error(400, "Missing required parameter: 'model'.", "model")
        if training_file not in self.files:
            return _openai_error(400, f"invalid training_file: {training_file}", "training_file")
        suffix = body.get("suffix") or ""
        if len(suffix) > 64:
            return _openai_error(400, "suffix must be at most 64 characters", "suffix")
        job_id = f"ftjob-{len(self.jobs) + 1:04d}"
        problem = _chat_file_problem(self.files[training_file].decode("utf-8", "replace"))
        if self.fail_jobs:
            self.doomed[job_id] = self.fail_jobs.pop(0)
        elif problem is not None:
            self.doomed[job_id] = f"The job failed due to an invalid training file: {problem}."
        method = body.get("method") or {"type": "supervised", "supervised": {"hyperparameters": {}}}
        settings = (method.get(method.get("type", "supervised")) or {}).get("hyperparameters") or {}
        self.jobs[job_id] = {
            "object": "fine_tuning.job",
            "id": job_id,
            "model": model,
            "created_at": int(time.time()),
            "finished_at": None,
            "fine_tuned_model": None,
            "organization_id": "org-scripted",
            "result_files": [],
            "status": "queued",
            "training_file": training_file,
            "validation_file": body.get("validation_file"),
            "hyperparameters": settings,
            "method": method,
            "seed": body.get("seed"),
            "suffix": suffix or None,
            "metadata": body.get("metadata"),
            "trained_tokens": None,
            "error": None,
        }
        self.events[job_id] = []
        self.polls[job_id] = 0
        self._event(job_id, f"Created fine-tuning job: {job_id}")
        return 200, self.jobs[job_id]

    def _event(self, job_id: str, message: str, data: dict[str, Any] | None = None) -> None:
        events = self.events[job_id]
        events.append(
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{job_id}-{len(events) + 1}",
                "created_at": int(time.time()),
                "level": "error" if "failed" in message else "info",
                "message": message,
                "data": data or {},
                "type": "metrics" if data else "message",
            }
        )

    def poll(self, job_id: str) -> Answer:
        """The job, one step further on: queued, running for ``job_polls`` polls, then done."""
        job = self.jobs.get(job_id)
        if job is None:
            return _openai_error(404, f"No such fine-tuning job: {job_id}.", "fine_tuning_job_id")
        if job["status"] not in ("queued", "running"):
            return 200, job
        step = self.polls[job_id] = self.polls[job_id] + 1
        total = self.job_polls
        if step == 1:
            job["status"] = "running"
            self._event(job_id, "Fine-tuning job started")
        loss = round(2.0 / step, 4)
        self._event(
            job_id,
            f"Step {step}/{total}: training loss={loss}",
            {"step": step, "total_steps": total, "train_loss": loss},
        )
        if step < total:
            return 200, job
        job["finished_at"] = int(time.time())
        if job_id in self.doomed:
            job["status"] = "failed"
            job["error"] = {
                "code": "invalid_training_file",
                "message": self.doomed[job_id],
                "param": "training_file",
            }
            self._event(job_id, f"Fine-tuning job failed: {self.doomed[job_id]}")
            return 200, job
        text = self.files[job["training_file"]].decode("utf-8", "replace")
        epochs = job["hyperparameters"].get("n_epochs", 1)
        tokens = sum(
            len(str(m["content"]).split()) for line in text.splitlines() for m in json.loads(line)["messages"]
        )
        short = job_id.removeprefix("ftjob-")
        job["fine_tuned_model"] = f"ft:{job['model']}:{job['suffix'] or ''}:{short}"
        job["trained_tokens"] = tokens * (epochs if isinstance(epochs, int) else 1)
        job["status"] = "succeeded"
        self.tuned.add(job["fine_tuned_model"])
        self._event(job_id, "The job has successfully completed")
        return 200, job

    def job_events(self, job_id: str, limit: int) -> Answer:
        if job_id not in self.jobs:
            return _openai_error(404, f"No such fine-tuning job: {job_id}.", "fine_tuning_job_id")
        newest_first = list(reversed(self.events[job_id]))
        return 200, {"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit}

    def list_jobs(self, limit: int) -> Answer:
        newest_first = list(reversed(self.jobs.values()))
        return 200, {"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit}

    def load_lora(self, body: dict[str, Any]) -> Answer:
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return _vllm_error(400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput")
        if name in self.loras:
            return _vllm_error(400, f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput")
        if not Path(path).is_dir():
            return _vllm_error(
                404, f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError"
            )
        self.loras[name] = path
        self.unloaded.discard(name)
        return 200, f"Success: LoRA adapter '{name}' added successfully."

    def unload_lora(self, body: dict[str, Any]) -> Answer:
        name = body.get("lora_name")
        if name not in self.loras:
            return _vllm_error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        del self.loras[name]
        self.unloaded.add(name)
        return 200, f"Success: LoRA adapter '{name}' removed successfully."

    def model_cards(self, base: str) -> list[dict[str, Any]]:
        """``GET /models``: the base, loaded adapters (vLLM names their ``parent``), tuned models."""
        cards: list[dict[str, Any]] = [{"id": base, "object": "model", "owned_by": "scripted"}]
        cards += [
            {"id": name, "object": "model", "owned_by": "vllm", "root": path, "parent": base}
            for name, path in self.loras.items()
        ]
        return cards + [{"id": name, "object": "model", "owned_by": "user"} for name in sorted(self.tuned)]

    def serves(self, model: str) -> str:
        """``adapter`` (a loaded LoRA or a tuned model), ``gone`` (an unloaded adapter) or ``base``."""
        if model in self.loras or model in self.tuned:
            return "adapter"
        return "gone" if model in self.unloaded else "base"
