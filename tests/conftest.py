"""Shared fixtures: a small knowledge base indexed with the fake embedder (fast, no model)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.config import load_settings
from indexer.embed import HashingEmbedder
from indexer.index import build_index

HERE = Path(__file__).resolve().parent
MINI_KB = HERE / "data" / "kb-mini"
REPO = HERE.parent


@pytest.fixture()
def mini_kb(tmp_path: Path) -> Path:
    """A writable copy of the small test knowledge base."""
    dst = tmp_path / "knowledge"
    shutil.copytree(MINI_KB, dst)
    return dst


@pytest.fixture()
def fake_settings(tmp_path: Path, mini_kb: Path):
    return load_settings(
        knowledge_dir=mini_kb, data_dir=tmp_path / "var", embedding_model="fake-hashing-256",
        min_dense_for_answer=0.0, dense_weight=0.3, answer_threshold=0.5, choice_threshold=0.3,
    )


@pytest.fixture()
def fake_index(fake_settings):
    build_index(fake_settings.knowledge_dir, fake_settings.index_root, HashingEmbedder(256))
    return fake_settings


def fake_dialogue(store, database_url: str, tmp_path: Path, knowledge: Path):
    """A real Dialogue over ``store`` on the small knowledge base, indexed with the fake embedder."""
    from bot.dialogue import Dialogue
    from bot.runtime import AssistantHolder

    settings = load_settings(
        knowledge_dir=knowledge, data_dir=tmp_path / "var", embedding_model="fake-hashing-256",
        database_url=database_url, min_dense_for_answer=0.0, dense_weight=0.3, answer_threshold=0.5,
        choice_threshold=0.3, dept_name="Sở Thử Nghiệm",
    )
    build_index(settings.knowledge_dir, settings.index_root, HashingEmbedder(256))
    holder = AssistantHolder(settings, embedder=HashingEmbedder(256), active_version=store.active_kb_version)
    return Dialogue.from_settings(settings, store=store, holder=holder)


@contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
