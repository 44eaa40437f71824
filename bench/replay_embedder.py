"""A stand-in for the model in the serving benchmark: the vectors the real model gave, looked up by text.

``bench/bench_serve.py --replay`` embeds, with the configured model and before the server starts, every text
the server will embed (each question's processed body and asking sentences), saves them, and starts the
server with ``LDTBXH_TEST_EMBEDDER=bench.replay_embedder:replay_embedder``. Retrieval then ranks exactly as
with the model, and the server's CPU per question is what serving costs beyond the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

ENV = "LDTBXH_BENCH_REPLAY"
"""The folder holding ``vectors.npy``, ``texts.json`` and ``meta.json`` (model name, dimension)."""


class ReplayEmbedder:
    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        self.name: str = meta["name"]
        self.dim: int = int(meta["dim"])
        texts = json.loads((folder / "texts.json").read_text(encoding="utf-8"))
        self._rows = {(p, t): i for i, (p, t) in enumerate(texts)}
        self._vectors = np.load(folder / "vectors.npy")
        self.misses = 0

    def warm_up(self) -> None:
        return None

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            row = self._rows.get((prefix, t))
            if row is None:
                self.misses += 1
                out[i, 0] = 1.0  # a unit vector: retrieval still runs
            else:
                out[i] = self._vectors[row]
        return out


def save(folder: Path, name: str, dim: int, pairs: list[tuple[str, str]], vectors: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"name": name, "dim": dim}), encoding="utf-8")
    (folder / "texts.json").write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    np.save(folder / "vectors.npy", np.asarray(vectors, dtype=np.float32))


def replay_embedder() -> ReplayEmbedder:
    """The factory named by ``LDTBXH_TEST_EMBEDDER=bench.replay_embedder:replay_embedder``."""
    return ReplayEmbedder(Path(os.environ[ENV]))
