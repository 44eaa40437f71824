"""The configured embedder: ``make_embedder`` of the settings' model and backend.

``LDTBXH_TEST_EMBEDDER=module:callable`` (tests only) replaces it with whatever that callable returns:
a server that a test starts as a subprocess gets the tests' fake embedder this way.
"""

from __future__ import annotations

from importlib import import_module

from bot.config import Settings
from indexer.embed import Embedder, make_embedder


def settings_embedder(settings: Settings, progress: object = None) -> Embedder:
    if settings.test_embedder:
        module, _, name = settings.test_embedder.partition(":")
        factory = getattr(import_module(module), name)
        embedder: Embedder = factory()
        return embedder
    return make_embedder(settings.embedding_model, settings.embedding_backend, settings.models_dir,
                         progress=progress)
