"""Hot-swappable assistant: load a new index version while the old one keeps answering.

The version to serve is the index folder's ``CURRENT`` pointer, the one source of truth that
:mod:`bot.knowledge_admin` moves (from the CLI and the console alike). Every server process polls it
(``check_reload``): processes sharing the data directory all switch when an administrator activates a
version. Loading happens beside the running assistant; the swap is one reference assignment, so no
request fails or waits during a switch.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from bot.assistant import Assistant
from bot.config import Settings
from bot.embedder import settings_embedder
from indexer.documents.index import current_doc_version, docs_root
from indexer.embed import Embedder
from indexer.index import current_version

log = logging.getLogger(__name__)


class AssistantHolder:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, segmenter: Any = None) -> None:
        self.settings = settings
        self.embedder = embedder or settings_embedder(settings)
        self._segmenter = segmenter
        self._lock = threading.Lock()
        self._assistant: Assistant | None = None
        self.version: str | None = None
        self.doc_version: str | None = None
        """The documents index version (its ``CURRENT`` pointer) when the assistant was loaded."""

    def wanted_version(self) -> str | None:
        """The active version (the ``CURRENT`` pointer of the index folder)."""
        return current_version(self.settings.index_root)

    def wanted_doc_version(self) -> str | None:
        """The active documents index version (``ldtbxh documents build`` publishes it)."""
        return current_doc_version(docs_root(self.settings.index_root))

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
        wanted, wanted_docs = self.wanted_version(), self.wanted_doc_version()
        if self._assistant is not None and wanted == self.version and wanted_docs == self.doc_version:
            return False
        with self._lock:
            if self._assistant is not None and wanted == self.version and wanted_docs == self.doc_version:
                return False
            new = self.load(wanted)
            old = self.version
            self._assistant, self.version = new, new.retriever.index.manifest.version
            # The pointer read before loading (not what loaded): a documents index that cannot be used
            # (another model) is not retried at every poll.
            self.doc_version = wanted_docs
            log.info("knowledge index switched from %s to %s (documents %s)", old, self.version, wanted_docs)
            return True
