"""The officers' and administrators' web console, served by the same process at ``/console``.

``console_router(settings, holder, store)`` returns a FastAPI router; the application mounts it with
``app.include_router(console_router(settings, holder, store), prefix="/console")``. Pages are
server-rendered (Jinja2, Vietnamese), charts are inline SVG, there is no external resource.

Modules: :mod:`.auth` (sign-in, users, audit log), :mod:`.unanswered` (grouped queue, replies, drafts),
:mod:`.followups`, :mod:`.knowledge` (versions, drafts, rebuild / switch / roll back), :mod:`.dossiers`,
:mod:`.dashboard`; :mod:`.security` holds passwords, sessions, CSRF and throttling.
"""

from __future__ import annotations

from fastapi import APIRouter

from bot.config import Settings
from bot.runtime import AssistantHolder
from bot.store import Store
from handlers.console.config import ConsoleOptions
from handlers.console.core import Console, ConsoleRoute

__all__ = ["console_router", "ConsoleOptions", "Console"]


def console_router(settings: Settings, holder: AssistantHolder, store: Store, *,
                   options: ConsoleOptions | None = None) -> APIRouter:
    """The console's routes (mount with ``prefix="/console"``). ``router.console`` is the context."""
    from handlers.console import auth, dashboard, dossiers, followups, knowledge, unanswered

    console = Console(settings, holder, store, options or ConsoleOptions())
    router = APIRouter(route_class=ConsoleRoute)
    for module in (auth, unanswered, followups, knowledge, dossiers, dashboard):
        router.include_router(module.make_router(console))
    router.console = console  # type: ignore[attr-defined]
    return router
