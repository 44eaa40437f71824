"""Builders the tests share: settings for the tiny knowledge base with the fake embedder, a real dialogue
over a real database, uvicorn in a thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from bot.config import Settings, load_settings
from bot.dialogue import Dialogue
from bot.runtime import AssistantHolder
from bot.storage import Storage
from indexer.index import build_index
from tests.fakes import HashingEmbedder

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MINI_KB = HERE / "data" / "kb-mini"
MINI_QUESTIONS = HERE / "data" / "kb-mini-questions.jsonl"
"""Labelled questions on the small knowledge base (its policy.json was fitted on them)."""
DEPT = "Sở Thử Nghiệm"
TEST_EMBEDDER = "tests.fakes:hashing_embedder"


def make_settings(tmp_path: Path, knowledge: Path, *, database_url: str | None = None,
                  **overrides: Any) -> Settings:
    """Settings for ``knowledge`` with the fake embedder; groups in ``overrides`` are merged into the
    test defaults (``department=...``). The tiny knowledge base ships the answer policy fitted for the
    fake embedder (tests/data/kb-mini/policy.json, fitted on tests/data/kb-mini-questions.jsonl)."""
    groups = {"department": {"dept_name": DEPT}}
    for name, defaults in groups.items():
        overrides[name] = {**defaults, **overrides.get(name, {})}
    return load_settings(knowledge_dir=knowledge, data_dir=tmp_path / "var", database_url=database_url,
                         test_embedder=TEST_EMBEDDER, **overrides)


def build_fake_index(settings: Settings) -> None:
    build_index(settings.knowledge_dir, settings.index_root, HashingEmbedder(256))


def make_dialogue(store: Storage, settings: Settings) -> Dialogue:
    """A real Dialogue over ``store``, its knowledge indexed with the fake embedder."""
    build_fake_index(settings)
    holder = AssistantHolder(settings, embedder=HashingEmbedder(256))
    return Dialogue.from_settings(settings, store=store, holder=holder)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    srv = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    assert srv.ready.wait(30) and srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def export_cmd(cache: Path) -> list[str]:
    """The command that exports the bundled e5 to ONNX into ``cache`` (a child process: it needs torch)."""
    import sys

    return [sys.executable, "-m", "indexer.onnx_embed", "--cache-dir", str(cache)]


def model_env() -> dict[str, str]:
    """The environment of a child process that runs the real model offline."""
    import os

    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
