"""HashEmbedder: a deterministic embedder for tests, no model needed."""

from __future__ import annotations

import hashlib
import math
import re


class HashEmbedder:
    """Deterministic bag-of-words hashing embedder: texts sharing words land close together."""

    def __init__(self, dim: int = 128) -> None:
        self.dim = dim
        self.model_id = f"hash-{dim}"

    def embed(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vec = [0.0] * self.dim
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                vec[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            out.append([v / norm for v in vec] if any(vec) else [1.0 / math.sqrt(self.dim)] * self.dim)
        return out
