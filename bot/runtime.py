"""Hot-swappable assistant: load a new index version while the old one keeps answering.

The version to serve is the one marked active in the database (``kb_versions``) when there is one,
else the ``CURRENT`` pointer of the index directory. Every server process polls it (``check_reload``),
so several processes sharing one PostgreSQL all switch when an administrator activates a version.
Loading happens beside the running assistant; the swap is one reference assignment, so no request
fails or waits during a switch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bot.assistant import Assistant
from bot.config import Settings
from indexer.embed import Embedder, make_embedder
from indexer.index import current_version

log = logging.getLogger(__name__)


class AssistantHolder:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None,
                 active_version: Callable[[], str | None] | None = None, segmenter: Any = None) -> None:
        self.settings = settings
        self.embedder = embedder or make_embedder(settings.embedding_model, settings.embedding_backend,
                                                  settings.models_dir)
        self._active_version = active_version
        self._segmenter = segmenter
        self._lock = threading.Lock()
        self._assistant: Assistant | None = None
        self.version: str | None = None

    def wanted_version(self) -> str | None:
        v = None
        if self._active_version is not None:
            try:
                v = self._active_version()
            except Exception:  # the database may be briefly unavailable: keep serving
                log.warning("could not read the active knowledge version from the database", exc_info=True)
        return v or current_version(self.settings.index_root)

    @property
    def current(self) -> Assistant:
        if self._assistant is None:
            self.check_reload()
        assert self._assistant is not None
        return self._assistant

    def load(self, version: str | None) -> Assistant:
        a = Assistant.from_settings(self.settings, embedder=self.embedder, segmenter=self._segmenter,
                                    version=version)
        a.warm_up()
        return a

    def check_reload(self) -> bool:
        """Load and switch to the wanted version if it is not the one being served. True if switched."""
        wanted = self.wanted_version()
        if self._assistant is not None and wanted == self.version:
            return False
        with self._lock:
            if self._assistant is not None and wanted == self.version:
                return False
            new = self.load(wanted)
            old = self.version
            self._assistant, self.version = new, new.retriever.index.manifest.version
            log.info("knowledge index switched from %s to %s", old, self.version)
            return True
