"""The ``peft`` trainer: a LoRA adapter trained with transformers + peft + TRL, on CPU or GPU.

The base comes from a GGUF file (the embedded student's own weights: transformers dequantizes them to
fp32 and reverses llama.cpp's Q/K permutation), an HF folder, or a hub id already in the local cache.
Loss falls on the completion tokens only, under the chat template in the base's own tokenizer (the one
llama.cpp applies when it serves the same file). Training is seeded and checkpoints every
``save_steps``: a call whose ``out_dir`` holds checkpoints resumes from the last one. The adapter is
saved as a PEFT folder (what vLLM loads) and as a llama.cpp GGUF LoRA (``tutelage.train.gguf``).

Rows with ``chosen`` and ``rejected`` answers instead of a ``completion`` train with DPO (TRL's
``DPOTrainer``, ``beta`` from the options): the reference policy is the base itself, the adapter
switched off, so no second copy of the model is held.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import resource
import time
import warnings
from pathlib import Path
from typing import Any, cast

from tutelage import failpoints, runfiles
from tutelage.errors import ConfigError, DataError
from tutelage.train import Adapter, Progress

__all__ = ["PeftTrainer", "file_sha256", "load_base"]

log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _require_train_extra() -> None:
    try:
        import peft  # noqa: F401
        import trl  # noqa: F401
    except ImportError:
        raise ConfigError(
            "train.trainer peft needs the train extra: pip install 'tutelage[train]' (or `make install`)"
        ) from None


def _quiet() -> None:
    """The run's progress line is the progress: no library progress bars or deprecation notes."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    transformers.utils.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    warnings.filterwarnings("ignore", message=r".*is deprecated and will be removed in v6")
    # peft, saving an adapter (checkpoints included) of a base loaded from a GGUF file: no HF config
    warnings.filterwarnings("ignore", message="Could not find a config file")


def load_base(base: str) -> tuple[Any, Any]:  # transformers' model and tokenizer
    """``(model, tokenizer)`` in fp32, ready to train: a GGUF file, an HF folder, or a cached hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet()
    path = Path(base).expanduser()
    if base.endswith(".gguf"):
        if not path.is_file():
            raise ConfigError(f"train.base: no such GGUF file: {path}")
        where, kwargs = str(path.parent), {"gguf_file": path.name}
    else:
        where, kwargs = (str(path) if path.exists() else base), {}
    model: Any
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        with contextlib.redirect_stderr(io.StringIO()):  # the GGUF loader's own tqdm bar, per tensor
            model = AutoModelForCausalLM.from_pretrained(where, dtype="float32", **kwargs)
    except OSError as exc:
        raise ConfigError(f"train.base: cannot load {base!r}: {str(exc).splitlines()[0]}") from None
    # The GGUF loader marks the model quantized; its weights are plain fp32 now, and the marks would
    # stop peft from training it and save_pretrained from saving it.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


SFT_KEYS, DPO_KEYS = ("prompt", "completion"), ("prompt", "chosen", "rejected")


def _rows(data: Path) -> tuple[list[dict[str, Any]], bool]:
    """The file's rows, and whether they are preference pairs (DPO) rather than prompt-completion."""
    rows: list[dict[str, Any]] = []
    keys: tuple[str, ...] | None = None
    for line_no, line in enumerate(data.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{data}:{line_no}: not JSON ({exc.msg})") from None
        shape = next(
            (k for k in (DPO_KEYS, SFT_KEYS) if isinstance(row, dict) and all(row.get(x) for x in k)), None
        )
        if shape is None or keys not in (None, shape):
            want = "a prompt-completion row" if keys in (None, SFT_KEYS) else "a prompt-chosen-rejected row"
            raise DataError(f"{data}:{line_no}: expected {want}")
        keys = shape
        rows.append({k: row[k] for k in shape})
    if not rows:
        raise DataError(f"{data}: no training rows")
    return rows, keys == DPO_KEYS


def _fitting(
    rows: list[dict[str, Any]], tokenizer: Any, max_length: int, data: Path
) -> tuple[list[dict[str, Any]], int]:
    """The rows whose prompt and answer(s) fit ``max_length`` tokens, and how many did not."""

    def length(row: dict[str, Any]) -> int:
        answers = [row[k] for k in ("completion", "chosen", "rejected") if k in row]
        chats = [[*row["prompt"], *answer] for answer in answers]
        return max(len(tokenizer.apply_chat_template(c, return_dict=True)["input_ids"]) for c in chats)

    lengths = [length(row) for row in rows]
    kept = [row for row, n in zip(rows, lengths, strict=True) if n <= max_length]
    if not kept:
        raise ConfigError(
            f"train.max_length ({max_length} tokens) is shorter than every row of {data} "
            f"(the shortest has {min(lengths)})"
        )
    return kept, len(rows) - len(kept)


def _last_checkpoint(folder: Path) -> str | None:
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    if not done:
        return None
    return str(max(done, key=lambda p: int(p.name.rsplit("-", 1)[1])))


class PeftTrainer:
    """LoRA on ``train.target_modules`` with rank, alpha, epochs or max steps, learning rate, batch size."""

    name = "peft"

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
        _require_train_extra()
        import torch
        from datasets import Dataset
        from peft import LoraConfig, get_peft_model
        from transformers import PrinterCallback, TrainerCallback
        from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer  # type: ignore[attr-defined]

        from tutelage.train.gguf import export_lora_gguf

        start = time.perf_counter()
        model, tokenizer = load_base(base)
        every, preference = _rows(data)
        rows, too_long = _fitting(every, tokenizer, int(options["max_length"]), data)
        torch.manual_seed(seed)
        lora = LoraConfig(
            r=int(options["rank"]),
            lora_alpha=options["alpha"],
            lora_dropout=float(options["dropout"]),
            target_modules=list(options["target_modules"]),
            task_type="CAUSAL_LM",
        )
        model = cast(Any, get_peft_model(model, lora))
        checkpoints = out_dir / "checkpoints"
        cuda = torch.cuda.is_available()
        common: dict[str, Any] = dict(
            output_dir=str(checkpoints),
            per_device_train_batch_size=int(options["batch_size"]),
            gradient_accumulation_steps=int(options.get("gradient_accumulation") or 1),
            num_train_epochs=float(options["epochs"]),
            max_steps=int(options["max_steps"] or -1),
            learning_rate=float(options["learning_rate"]),
            lr_scheduler_type="linear",
            warmup_steps=0,
            seed=seed,
            data_seed=seed,
            save_strategy="steps",
            save_steps=int(options["save_steps"]),
            save_total_limit=2,
            logging_steps=1,
            report_to=[],
            disable_tqdm=True,
            gradient_checkpointing=False,
            max_length=int(options["max_length"]),
            use_cpu=not cuda,
            bf16=False,
            fp16=False,
            dataloader_num_workers=0,
        )
        # DPO's reference is the base itself: peft turns the adapter off for it, no second model copy
        args: Any = (
            DPOConfig(**common, beta=float(options.get("beta") or 0.1))
            if preference
            else SFTConfig(**common, completion_only_loss=True)
        )
        stats: dict[str, Any] = {"tokens": 0, "loss": None}

        class Report(TrainerCallback):  # type: ignore[misc]
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                failpoints.step()
                if progress is not None:
                    progress(state.global_step, state.max_steps, "training")

            def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
                if logs and "loss" in logs:
                    stats["loss"] = float(logs["loss"])
                if logs and "num_tokens" in logs:
                    stats["tokens"] = int(logs["num_tokens"])

        kind: Any = DPOTrainer if preference else SFTTrainer
        trainer = kind(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[Report()],
        )
        trainer.remove_callback(PrinterCallback)  # progress goes to ``progress``, not to stdout
        resume = _last_checkpoint(checkpoints)
        if resume:
            log.info("resuming training from %s", resume)
        trainer.train(resume_from_checkpoint=resume)
        steps = int(trainer.state.global_step)

        folder = out_dir / "adapter"
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
        gguf = export_lora_gguf(folder, out_dir / "adapter.gguf", model.base_model.model.config)
        runfiles.remove_tree(checkpoints)  # the adapter is saved: a rerun starts over
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        if cuda:
            peak = max(peak, torch.cuda.max_memory_allocated() // (1 << 20))
        base_path = Path(base).expanduser()
        meta = {
            "gguf": str(gguf),
            "sha256": file_sha256(folder / "adapter_model.safetensors"),
            "gguf_sha256": file_sha256(gguf),
            "base_sha256": file_sha256(base_path) if base_path.is_file() else "",
            "seconds": round(time.perf_counter() - start, 1),
            "examples": len(rows),
            "objective": "dpo" if preference else "sft",
            "too_long": too_long,
            "tokens": stats["tokens"],
            "steps": steps,
            "loss": stats["loss"],
            "peak_rss_mb": peak,
            "rank": lora.r,
            "alpha": lora.lora_alpha,
            "resumed_from": resume,
        }
        runfiles.write_json(out_dir / "adapter.json", meta)
        name = str(options.get("name") or out_dir.name)
        return Adapter(name=name, base=base, path=folder, trainer=self.name, meta=meta)
