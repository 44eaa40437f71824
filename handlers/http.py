"""What the server's routes share: the error body of every API answer, running blocking work, the security
headers of every response."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.protocol import ReplyKind

T = TypeVar("T")


def error_response(status: int, message: str) -> JSONResponse:
    """``{"error": message, "replies": [...]}``: the message also as a reply the web page can show."""
    return JSONResponse({"error": message, "replies": [{"text": message, "kind": ReplyKind.ERROR.value,
                                                        "buttons": []}]}, status_code=status)


async def run_blocking(app: FastAPI, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (model, database) in the app's thread pool (or the default one)."""
    executor: ThreadPoolExecutor | None = getattr(app.state, "executor", None)
    if kwargs:
        fn = functools.partial(fn, **kwargs)
    if executor is None:
        return await asyncio.to_thread(fn, *args)
    return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


class SecurityHeaders:
    """A plain ASGI middleware adding ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``
    to every HTTP response (unlike ``@app.middleware("http")``, no extra task and stream per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)
