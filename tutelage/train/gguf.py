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

__all__ = ["GGUF_NAMES", "export_lora_gguf", "merge_lora_gguf", "permute_rows"]

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


def merge_lora_gguf(base: Path, adapter: Path, out: Path, *, scale: float = 1.0) -> Path:
    """Write ``base`` (a llama GGUF) with the GGUF LoRA ``adapter`` added in, as one GGUF file.

    Each adapted weight is dequantized, gets ``scale * alpha / rank * (lora_b @ lora_a)`` added, and is
    stored as F16; every other tensor and all metadata are copied as they are. The result serves
    anywhere a GGUF does, with no adapter support needed.
    """
    import gguf

    lora = gguf.GGUFReader(str(adapter))
    alpha_field = lora.get_field("adapter.lora.alpha")
    alpha = float(alpha_field.contents()) if alpha_field is not None else 0.0
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for tensor in lora.tensors:
        name, _, which = tensor.name.rpartition(".")
        pairs.setdefault(name, {})[which] = np.asarray(tensor.data, dtype=np.float32)
    reader = gguf.GGUFReader(str(base))
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=str(arch.contents()) if arch is not None else "llama")
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by the writer itself
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    merged: dict[str, np.ndarray] = {}
    for tensor in reader.tensors:
        pair = pairs.get(tensor.name)
        if pair is None:
            continue
        a, b = pair["lora_a"], pair["lora_b"]
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        factor = scale * (alpha / a.shape[0] if alpha else 1.0)
        merged[tensor.name] = (weights + factor * (b @ a)).astype(np.float16)
    if len(merged) != len(pairs):
        missing = sorted(set(pairs) - set(merged))[:3]
        raise ValueError(f"{adapter} adapts tensors {base} does not have: {', '.join(missing)}")
    for tensor in reader.tensors:
        if tensor.name in merged:
            data = merged[tensor.name]
            writer.add_tensor_info(
                tensor.name, data.shape, data.dtype, data.nbytes, gguf.GGMLQuantizationType.F16
            )
        else:
            writer.add_tensor_info(
                tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
            )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(merged.get(tensor.name, tensor.data), tensor_endianess=reader.endianess)
    writer.close()
    tmp.replace(out)
    return out
