"""DSPy's fine-tuning seam backed by a tutelage trainer and the run's adapter serving.

``dspy.BootstrapFinetune`` and ``dspy.BetterTogether`` train weights through ``lm.finetune``, which
calls the LM's ``provider``. DSPy's own local provider does full fine-tunes and serves them with
SGLang; this one trains a LoRA adapter with any ``tutelage.train`` trainer (``peft`` on CPU or GPU,
``openai``), serves it through an ``AdapterHost`` (llama.cpp, vLLM or a hosted model), and hands DSPy
back the same LM routed to the adapter.

    provider = FinetuneProvider(trainer("peft"), base=str(gguf), host=host, out_dir=Path("ft"))
    student.set_lm(lm.copy(provider=provider))  # or pass provider= when building the LM
    tuned = dspy.BootstrapFinetune(metric=metric).compile(student, trainset=trainset)

Each job trains in a folder named by the digest of its rows, so the same rows again (a resumed run)
find the finished adapter, or a killed training's checkpoints, instead of paying twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dspy
from dspy.clients.provider import Provider, TrainingJob

from tutelage import runfiles
from tutelage.backends import AdapterHost, AdapterRoute, routed
from tutelage.errors import DataError
from tutelage.train import Adapter, Progress, Trainer

__all__ = ["AdapterJob", "FinetuneProvider"]


class AdapterJob(TrainingJob):  # type: ignore[misc]
    """One fine-tuning job: DSPy's future, holding the adapter and the route once they exist.

    ``status()`` is ``pending``, ``training i/n``, ``serving``, ``done`` or ``failed: <why>``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adapter: Adapter | None = None
        self.route: AdapterRoute | None = None
        self.state = "pending"

    def status(self) -> str:
        return self.state

    def set_result(self, result: Any) -> None:
        # DSPy sets ``lm.copy(model=<what finetune returned>)``; the adapter also needs its route's
        # request body (llama.cpp picks an adapter per request, not by model name).
        if isinstance(result, dspy.LM) and self.route is not None:
            result = routed(result, self.route)
            self.state = "done"
        elif isinstance(result, BaseException):
            self.state = f"failed: {result}"
        super().set_result(result)


def _row(item: dict[str, Any], at: int) -> dict[str, Any]:
    """DSPy's chat row (``{"messages": [..., assistant]}``) as a prompt-completion row."""
    messages = item.get("messages") if isinstance(item, dict) else None
    if not isinstance(messages, list) or len(messages) < 2 or messages[-1].get("role") != "assistant":
        raise DataError(f"fine-tuning row {at}: expected chat messages ending with the assistant's answer")
    strip = [{"role": m["role"], "content": m["content"]} for m in messages]
    return {"prompt": strip[:-1], "completion": strip[-1:]}


class FinetuneProvider(Provider):  # type: ignore[misc]
    """A ``dspy.Provider`` whose ``finetune`` trains with ``trainer`` and serves through ``host``.

    ``base``: what the trainer starts from (a GGUF file or HF folder for ``peft``, a model name for
    ``openai``). ``options``: the trainer's settings (``train.*``); a job's ``train_kwargs`` override
    them. ``jobs`` lists every job run, in order; each holds its ``adapter`` and ``route``.
    ``on_trained(adapter)`` is called once per training that ran (the run's cost ledger).
    """

    def __init__(
        self,
        trainer: Trainer,
        *,
        base: str,
        host: AdapterHost,
        out_dir: Path,
        options: dict[str, Any] | None = None,
        seed: int = 0,
        name: str = "dspy",
        progress: Progress | None = None,
        on_trained: Callable[[Adapter], None] | None = None,
    ) -> None:
        super().__init__()
        self.finetunable = True
        self.TrainingJob = AdapterJob
        self.trainer, self.base, self.host = trainer, base, host
        self.out_dir, self.options, self.seed = Path(out_dir), dict(options or {}), seed
        self.name, self.progress, self.on_trained = name, progress, on_trained
        self.jobs: list[AdapterJob] = []

    def finetune(  # DSPy calls it on the instance with keywords; the base declares it static
        self,
        job: AdapterJob,
        model: str,
        train_data: list[dict[str, Any]],
        train_data_format: Any,
        train_kwargs: dict[str, Any] | None = None,
    ) -> str:
        if str(getattr(train_data_format, "value", train_data_format)) != "chat":
            raise DataError(f"the tutelage provider trains on chat rows, not {train_data_format}")
        if not train_data:  # BootstrapFinetune passes what its metric kept
            raise DataError("no fine-tuning rows: the metric kept none of the bootstrapped traces")
        rows = [_row(item, at) for at, item in enumerate(train_data, start=1)]
        text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        out = self.out_dir / f"job-{digest}"
        record = out / "adapter-record.json"
        if record.is_file():  # the same rows were trained before (a resumed run): never pay twice
            adapter = Adapter.from_json(json.loads(record.read_text()))
        else:
            runfiles.write_text(out / "data.jsonl", text)
            job.state = "training"

            def progress(step: int, total: int, message: str) -> None:
                job.state = f"training {step}/{total}"
                if self.progress is not None:
                    self.progress(step, total, message)

            options = {**self.options, **(train_kwargs or {}), "name": f"{self.name}-{digest}"}
            data = out / "data.jsonl"
            adapter = self.trainer.train(
                self.base, data=data, out_dir=out, seed=self.seed, options=options, progress=progress
            )
            if self.on_trained is not None:  # a training that ran (not one found on disk): its cost
                self.on_trained(adapter)
            runfiles.write_json(record, adapter.to_json())
        job.state = "serving"
        job.adapter, job.route = adapter, self.host.serve(adapter)
        self.jobs.append(job)
        return model
