"""The console's router: every page module's routes and the static files, around one :class:`Console`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from bot.config import Settings
from bot.runtime import AssistantHolder
from bot.storage import Storage
from handlers.console import auth, dashboard, documents, dossiers, followups, knowledge, unanswered
from handlers.console.core import Console, ConsoleRoute
from handlers.templates import CONSOLE_STATIC

PAGES = (auth, unanswered, followups, knowledge, documents, dossiers, dashboard)


def console_router(settings: Settings, holder: AssistantHolder, store: Storage) -> APIRouter:
    """The console's routes (mount with ``prefix="/console"``). ``router.console`` is the context."""
    console = Console(settings, holder, store)
    router = APIRouter(route_class=ConsoleRoute)
    for page in PAGES:
        router.include_router(page.make_router(console))
    router.mount("/static", StaticFiles(directory=CONSOLE_STATIC), name="console_static")
    router.console = console  # type: ignore[attr-defined]
    return router
