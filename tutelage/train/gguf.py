"""A PEFT LoRA adapter as llama.cpp's GGUF LoRA file, with llama.cpp's Q/K head order.

llama.cpp stores a llama model's ``attn_q`` and ``attn_k`` rows in another order than Hugging Face
(``convert_hf_to_gguf.py``'s ``permute``), and transformers reverses that order when it loads a GGUF.
A LoRA delta ``B @ A`` trained on the transformers model has its output rows in Hugging Face's
order, so ``lora_b`` of q and k must be permuted again before llama.cpp adds it. Without that nothing
fails: the served model just answers worse (``tests/test_train.py`` compares the served adapter with
the transformers model, so a wrong order fails the suite).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GGUF_NAMES", "export_lora_gguf", "permute_rows"]

# PEFT's module name -> llama.cpp's tensor name inside a block
GGUF_NAMES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``permute``: within each head, interleave the two rotary halves of its rows."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def export_lora_gguf(folder: Path, out: Path, config: Any, *, permute: bool = True) -> Path:
    """Write the PEFT adapter in ``folder`` to ``out`` as a GGUF LoRA for llama.cpp.

    ``config`` is the base model's HF config (heads and KV heads). ``permute=False`` skips the Q/K
    reordering: only a test that shows why it is needed should ask for that.
    """
    import gguf

    settings = json.loads((folder / "adapter_config.json").read_text())
    n_head, n_kv = int(config.num_attention_heads), int(config.num_key_value_heads)
    tmp = out.with_name(out.name + ".tmp")  # written whole, then renamed: never half a file under ``out``
    writer = gguf.GGUFWriter(None, arch="llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(settings["lora_alpha"]))
    for name, value in sorted(_tensors(folder).items()):
        # base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight
        parts = name.split(".")
        layer = int(parts[parts.index("layers") + 1])
        module, which = parts[-3], parts[-2]
        if module not in GGUF_NAMES or which not in ("lora_A", "lora_B"):
            raise ValueError(f"{folder}: cannot export tensor {name} to GGUF")
        array = value.astype(np.float32)
        if permute and which == "lora_B" and module in ("q_proj", "k_proj"):
            array = permute_rows(array, n_head if module == "q_proj" else n_kv)
        suffix = "lora_a" if which == "lora_A" else "lora_b"
        writer.add_tensor(f"blk.{layer}.{GGUF_NAMES[module]}.weight.{suffix}", np.ascontiguousarray(array))
    writer.write_header_to_file(path=tmp)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return out
