"""Fakes of the swappable parts: an embedder without a model, a dossier source, a channel.

A server started by a test as a subprocess gets the fake embedder with
``LDTBXH_TEST_EMBEDDER=tests.fakes:hashing_embedder`` (and the repository on ``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Iterable

import numpy as np
from fastapi import APIRouter

from bot.dossiers.receipts import receipt_key
from bot.dossiers.sources import DossierSourceUnavailable
from bot.dossiers.statuses import Dossier
from bot.messages import Button


class HashingEmbedder:
    """Hashed character trigrams and words. Deterministic, instant, no model."""

    def __init__(self, dim: int = 256) -> None:
        self.name = f"fake-hashing-{dim}"
        self.dim = dim

    def warm_up(self) -> None:
        return None

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            t = t.lower()
            feats = re.findall(r"\w+", t)
            padded = f"  {t}  "
            feats += [padded[j: j + 3] for j in range(len(padded) - 2)]
            for f in feats:
                h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) else -1.0
            n = np.linalg.norm(out[i])
            if n > 0:
                out[i] /= n
        return out


def hashing_embedder() -> HashingEmbedder:
    """The factory named by ``LDTBXH_TEST_EMBEDDER=tests.fakes:hashing_embedder``."""
    return HashingEmbedder(256)


class FakeDossierSource:
    """In-memory dossiers; ``unavailable=True`` simulates a system that is down."""

    def __init__(self, dossiers: Iterable[Dossier] = (), *, unavailable: bool = False) -> None:
        self.dossiers = {receipt_key(d.receipt): d for d in dossiers}
        self.unavailable = unavailable
        self.calls: list[str] = []

    def add(self, dossier: Dossier) -> None:
        self.dossiers[receipt_key(dossier.receipt)] = dossier

    def get(self, receipt: str) -> Dossier | None:
        self.calls.append(receipt)
        if self.unavailable:
            raise DossierSourceUnavailable("fake outage")
        return self.dossiers.get(receipt_key(receipt))


class FakeChannel:
    """A channel adapter as the server expects one: records what it sends, fails when told to.

    ``sent_event`` is set on every successful send and ``failed_event`` on every failure, so a test
    awaits them instead of sleeping.
    """

    def __init__(self, name: str = "fake", fail_times: int = 0) -> None:
        self.name = name
        self.router: APIRouter | None = APIRouter()
        self.sent: list[tuple[str, str, list[Button]]] = []
        self.fail_times = fail_times
        self.failures = 0
        self.started = self.stopped = False
        self.sent_event = threading.Event()
        self.failed_event = threading.Event()

        @self.router.post(f"/{name}/webhook")
        async def webhook() -> dict[str, bool]:
            return {"ok": True}

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, chat_id: str, text: str, buttons: list[Button]) -> None:
        await asyncio.sleep(0)
        if self.fail_times > 0:
            self.fail_times -= 1
            self.failures += 1
            self.failed_event.set()
            raise ConnectionError("the platform is down")
        self.sent.append((chat_id, text, buttons))
        self.sent_event.set()
