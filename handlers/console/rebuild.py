"""The console's side of the knowledge administration (:mod:`bot.knowledge_admin`): a rebuild in the
background with its progress, and switching / rolling back with this process reloading at once. The
documents page runs the documents index build through the same class (``build=``).

Switching moves the index folder's ``CURRENT`` pointer; every server process polls it
(``AssistantHolder.check_reload``) and loads the new index beside the old one, so no request fails or
waits. This process reloads at once, in a thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.knowledge_admin import KnowledgeAdmin
from bot.runtime import AssistantHolder
from indexer.documents.index import CatalogInvalid
from indexer.index import KnowledgeInvalid, Progress

log = logging.getLogger(__name__)

STAGE_LABELS = {"read": "Đọc văn bản", "text": "Xử lý văn bản", "embed": "Tính véc-tơ", "write": "Ghi chỉ mục",
                "": ""}


@dataclass
class RebuildStatus:
    state: str = "idle"
    """idle, running, done, failed"""
    stage: str = ""
    done: int = 0
    total: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    version: str | None = None
    actor: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def percent(self) -> int:
        if self.state == "done":
            return 100
        if not self.total:
            return 0
        # text processing is quick; embedding is most of the work
        frac = self.done / self.total
        return int(5 + 90 * frac) if self.stage == "embed" else int(5 * frac)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["percent"] = self.percent
        d["stage_label"] = STAGE_LABELS.get(self.stage, self.stage)
        if self.started_at:
            d["seconds"] = round((self.finished_at or time.time()) - self.started_at, 1)
        return d


Build = Callable[[str, Progress], Any]
"""(actor, progress) -> the built manifest (with its ``version``); raises ``KnowledgeInvalid`` or
``CatalogInvalid`` (with every error) when the content is invalid."""


class Rebuilder:
    def __init__(self, admin: KnowledgeAdmin, holder: AssistantHolder, *, reload_wait_seconds: float,
                 build: Build | None = None) -> None:
        """``build``: what a rebuild runs (default: a new knowledge version, not activated)."""
        self.admin = admin
        self._build: Build = build or (lambda actor, progress: admin.build(actor=actor, activate=False,
                                                                          progress=progress))
        self.holder = holder
        self.reload_wait_seconds = reload_wait_seconds
        self.status = RebuildStatus()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.reload_thread: threading.Thread | None = None
        self.reload_error: str | None = None

    # --- rebuild --------------------------------------------------------------------------------
    def start(self, actor: str) -> bool:
        with self._lock:
            if self.status.state == "running":
                return False
            self.status = RebuildStatus(state="running", started_at=time.time(), actor=actor)
            self._thread = threading.Thread(target=self._run, args=(actor,), name="kb-rebuild", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> RebuildStatus:
        t = self._thread
        if t is not None:
            t.join(timeout)
        return self.status

    def _progress(self, stage: str, done: int, total: int) -> None:
        st = self.status
        st.stage, st.done, st.total = stage, done, total

    def _run(self, actor: str) -> None:
        st = self.status
        try:
            manifest = self._build(actor, self._progress)
            st.version = manifest.version
            st.state = "done"
        except (KnowledgeInvalid, CatalogInvalid) as exc:  # invalid content: every error, no traceback
            st.errors = [str(e) for e in exc.errors]
            st.state = "failed"
        except Exception as exc:  # keep serving; show the error to the administrator
            log.exception("index rebuild failed")
            st.errors = [f"{type(exc).__name__}: {exc}"]
            st.state = "failed"
        finally:
            st.finished_at = time.time()

    # --- switching --------------------------------------------------------------------------------
    def switch(self, version: str, actor: str) -> None:
        self.admin.switch(version, actor=actor)
        self.reload_now()

    def rollback(self, actor: str) -> str:
        prev = self.admin.rollback(actor=actor)
        self.reload_now()
        return prev

    def reload_now(self) -> None:
        """Load the active version beside the running one (in a thread) and wait a little for it."""
        def run() -> None:
            try:
                self.reload_error = None
                self.holder.check_reload()
            except Exception as exc:
                log.exception("loading the new index version failed; still serving %s", self.holder.version)
                self.reload_error = f"{type(exc).__name__}: {exc}"

        t = threading.Thread(target=run, name="kb-reload", daemon=True)
        self.reload_thread = t
        t.start()
        t.join(self.reload_wait_seconds)
