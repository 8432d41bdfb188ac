"""The peft trainer and llama.cpp's serving of what it trains (slow: the real SmolLM2 weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tutelage.backends import build_lm, routed
from tutelage.backends.local import LocalAdapterHost, LocalServer, embedded_model_path
from tutelage.config import RoleConfig, TrainConfig
from tutelage.failpoints import ENV
from tutelage.train import Adapter, trainer

pytestmark = pytest.mark.slow

INPUTS = [
    "my card has not arrived yet",
    "I lost my card",
    "what is the exchange rate for euros",
    "my top up failed",
    "how do I reset my PIN",
    "why was I charged a fee",
    "can I get a refund",
    "is my transfer pending",
]


def _served(lm: Any) -> list[str]:
    """Greedy answers of ``lm`` (a product LM client, routed or not) to the fixed inputs."""
    return [str(lm(messages=[{"role": "user", "content": text}])[0]).strip() for text in INPUTS]


def _clean(text: str) -> str:
    return text.replace("\ufffd", "").strip()  # a multi-byte character cut by the token limit


def test_the_served_adapter_answers_as_the_transformers_model_and_a_wrong_qk_order_does_not(
    tmp_path: Path,
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from tutelage.train.gguf import export_lora_gguf, merge_lora_gguf
    from tutelage.train.peft import load_base

    model, tokenizer = load_base(str(embedded_model_path()))
    torch.manual_seed(0)
    # q and k only, random and strong: what the Q/K head order decides is all this adapter changes
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj"], init_lora_weights=False)
    tuned = get_peft_model(model, lora)
    tuned.save_pretrained(str(tmp_path / "adapter"))
    export_lora_gguf(tmp_path / "adapter", tmp_path / "right.gguf", model.config)
    export_lora_gguf(tmp_path / "adapter", tmp_path / "wrong.gguf", model.config, permute=False)
    tuned.eval()
    expected = []
    for text in INPUTS:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        out = tuned.generate(**ids, max_new_tokens=8, do_sample=False)
        expected.append(tokenizer.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True))
    # the product's path: the local backend's adapter host, and LM clients routed to each adapter
    with LocalServer(parallel=1) as server:
        host = LocalAdapterHost(server)
        lm = build_lm(RoleConfig(max_tokens=8), server.api_base)
        fresh = _served(lm)  # no adapter loaded yet
        adapters = [
            Adapter(n, "smollm2", None, "peft", {"gguf": str(tmp_path / f"{n}.gguf")})
            for n in ("right", "wrong")
        ]
        for adapter in adapters:  # each new adapter restarts the server with all of them loaded
            host.serve(adapter)
        right, wrong = (_served(routed(lm, host.serve(adapter))) for adapter in adapters)
        base = _served(lm)  # no route: the base weights (the teacher's requests look like this)
        for adapter in adapters:  # rolled back: gone from the server, so base answers are as before
            host.unload(adapter)
        assert server.lora == [] and _served(lm) == fresh

    def agree(answers: list[str]) -> int:
        return sum(_clean(a) == _clean(b) for a, b in zip(answers, expected, strict=True))

    # measured: 8/8 with llama.cpp's order, 4/8 without it, 1/8 for the base model (Q4_1 weights)
    assert agree(right) >= 7, (right, expected)
    assert agree(wrong) <= agree(right) - 2 and agree(base) <= agree(right) - 3
    # merged into one GGUF (the adapted weights in F16), it answers as the served adapter does
    merged = merge_lora_gguf(embedded_model_path(), tmp_path / "right.gguf", tmp_path / "merged.gguf")
    with LocalServer(parallel=1, model_path=merged) as server:
        alone = _served(build_lm(RoleConfig(max_tokens=8), server.api_base))
    assert sum(_clean(a) == _clean(b) for a, b in zip(alone, right, strict=True)) >= 7, (alone, right)


LABELS = ["card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed"]


def _data(path: Path) -> Path:
    rows = []
    for i in range(16):
        label = LABELS[i % 4]
        prompt = [
            {"role": "system", "content": "Reply with the intent label only."},
            {"role": "user", "content": f"question {i}: {label.replace('_', ' ')}"},
        ]
        rows.append({"prompt": prompt, "completion": [{"role": "assistant", "content": label}]})
    long = {"role": "user", "content": "card " * 400}  # longer than max_length: left out
    rows.append({"prompt": [long], "completion": [{"role": "assistant", "content": "card_arrival"}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _options() -> dict[str, Any]:
    return {**TrainConfig(max_steps=4, save_steps=2, max_length=256).model_dump(), "name": "t"}


TRAIN = """
import json, sys
from pathlib import Path
from tutelage import failpoints
from tutelage.backends.local import embedded_model_path
from tutelage.train import Adapter, trainer
failpoints.enter("train_weights")
trainer("peft").train(str(embedded_model_path()), data=Path(sys.argv[1]), out_dir=Path(sys.argv[2]),
                      seed=0, options=json.loads(sys.argv[3]))
"""


def test_a_killed_training_resumes_from_its_checkpoint_to_the_same_adapter(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    data = _data(tmp_path / "rows.jsonl")
    whole = trainer("peft").train(
        str(embedded_model_path()), data=data, out_dir=tmp_path / "whole", seed=0, options=_options()
    )
    assert whole.meta["steps"] == 4 and whole.meta["examples"] == 16 and whole.meta["too_long"] == 1
    assert Path(whole.meta["gguf"]).is_file() and whole.meta["tokens"] > 0
    killed = tmp_path / "killed"
    env = {**os.environ, ENV: "train_weights:middle:3"}  # SIGKILL after step 3 (checkpoint at 2)
    args = [sys.executable, "-c", TRAIN, str(data), str(killed), json.dumps(_options())]
    proc = subprocess.run(args, env=env, capture_output=True, timeout=600)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert (killed / "checkpoints" / "checkpoint-2").is_dir() and not (killed / "adapter").exists()
    resumed = trainer("peft").train(
        str(embedded_model_path()), data=data, out_dir=killed, seed=0, options=_options()
    )
    assert resumed.meta["resumed_from"].endswith("checkpoint-2") and resumed.meta["steps"] == 4
    a = load_file(str(whole.path / "adapter_model.safetensors"))  # type: ignore[operator]
    b = load_file(str(resumed.path / "adapter_model.safetensors"))  # type: ignore[operator]
    assert a.keys() == b.keys()
    # CPU training here is bit-reproducible: the resumed adapter is the uninterrupted one, exactly
    assert all((a[k] == b[k]).all() for k in a), "the resumed adapter differs from the uninterrupted one"


def _margins(model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> list[float]:
    """log p(chosen) - log p(rejected) of each row's answer tokens, under ``model``."""
    import torch

    def logp(prompt: list[dict[str, str]], answer: list[dict[str, str]]) -> float:
        head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)[
            "input_ids"
        ]
        whole = tokenizer.apply_chat_template([*prompt, *answer], return_dict=True)["input_ids"]
        ids = torch.tensor([whole])
        with torch.no_grad():
            logits = model(ids).logits.log_softmax(-1)[0]
        return float(sum(logits[i - 1, whole[i]] for i in range(len(head), len(whole))))

    return [logp(r["prompt"], r["chosen"]) - logp(r["prompt"], r["rejected"]) for r in rows]


def test_preference_rows_train_with_dpo_and_the_adapter_prefers_the_chosen_answers(tmp_path: Path) -> None:
    from peft import PeftModel

    from tutelage.train.peft import load_base

    rows = []
    for i in range(8):
        label, wrong = LABELS[i % 4], LABELS[(i + 1) % 4]
        prompt = [
            {"role": "system", "content": "Reply with the intent label only."},
            {"role": "user", "content": f"question {i}: {label.replace('_', ' ')}"},
        ]
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": label}],
                "rejected": [{"role": "assistant", "content": wrong}],
            }
        )
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = {**TrainConfig(max_steps=4, batch_size=4, learning_rate=1e-3, max_length=256).model_dump()}
    adapter = trainer("peft").train(
        str(embedded_model_path()), data=data, out_dir=tmp_path / "dpo", seed=0, options=options
    )
    assert adapter.meta["objective"] == "dpo" and adapter.meta["steps"] == 4
    assert Path(adapter.meta["gguf"]).is_file()
    base, tokenizer = load_base(str(embedded_model_path()))
    before = _margins(base, tokenizer, rows)
    tuned = PeftModel.from_pretrained(base, str(adapter.path))
    after = _margins(tuned, tokenizer, rows)
    # DPO widened the margin of the chosen answer over the rejected one on every pair it saw
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
