"""Background index rebuild with progress, and switching / rolling back the served version.

Switching marks the version active in the database (``kb_versions``); every server process polls it
(``AssistantHolder.check_reload``) and loads the new index beside the old one, so no request fails or
waits. This process reloads at once, in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.runtime import AssistantHolder
from bot.store import Store
from handlers.console.config import ConsoleOptions
from indexer.index import IndexError_, KnowledgeInvalid, Manifest, build_index, list_versions, publish

log = logging.getLogger(__name__)

STAGE_LABELS = {"text": "Xử lý văn bản", "embed": "Tính véc-tơ", "write": "Ghi chỉ mục", "": ""}


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


class Rebuilder:
    def __init__(self, settings: Settings, holder: AssistantHolder, store: Store, options: ConsoleOptions) -> None:
        self.settings = settings
        self.holder = holder
        self.store = store
        self.options = options
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
        s = self.settings
        st = self.status
        try:
            manifest = build_index(
                s.knowledge_dir, s.index_root, self.holder.embedder, query_prefix=s.query_prefix,
                passage_prefix=s.passage_prefix, segmented_for_model=s.model_wants_segmented,
                ann_threshold=s.ann_threshold, progress=self._progress, publish_now=False)
            self._register(manifest.version)
            st.version = manifest.version
            st.state = "done"
            self.store.audit(actor, "kb.rebuild", "kb_version", manifest.version,
                             {"entries": manifest.entries, "seconds": manifest.build_seconds})
        except KnowledgeInvalid as exc:
            st.errors = [str(e) for e in exc.errors]
            st.state = "failed"
            self.store.audit(actor, "kb.rebuild_failed", None, None, {"errors": len(exc.errors)})
        except Exception as exc:  # keep serving; show the error to the administrator
            log.exception("index rebuild failed")
            st.errors = [f"{type(exc).__name__}: {exc}"]
            st.state = "failed"
            self.store.audit(actor, "kb.rebuild_failed", None, None, {"error": type(exc).__name__})
        finally:
            st.finished_at = time.time()

    def _register(self, version: str) -> None:
        with contextlib.suppress(IntegrityError):  # already known (another process, an earlier switch)
            self.store.add_kb_version(version, activate=False)

    # --- versions ---------------------------------------------------------------------------------
    def versions(self) -> list[Manifest]:
        return list_versions(self.settings.index_root)

    def active_version(self) -> str | None:
        return self.holder.wanted_version()

    def switch(self, version: str, actor: str, action: str = "kb.switch") -> None:
        names = [m.version for m in self.versions()]
        if version not in names:
            raise IndexError_(f"Không có phiên bản chỉ mục '{version}'.")
        publish(self.settings.index_root, version)
        self._register(version)
        self.store.activate_kb_version(version, actor=actor)
        self.store.audit(actor, action, "kb_version", version, {"from": self.holder.version})
        self.reload_now()

    def previous_version(self) -> str | None:
        names = [m.version for m in self.versions()]
        cur = self.active_version()
        if cur not in names or names.index(cur) == 0:
            return None
        return names[names.index(cur) - 1]

    def rollback(self, actor: str) -> str:
        prev = self.previous_version()
        if prev is None:
            raise IndexError_("Không có phiên bản trước để quay lại.")
        self.switch(prev, actor, action="kb.rollback")
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
        t.join(self.options.reload_wait_seconds)
