"""The channels the server can run besides the web chat, and what each must provide.

The list is static (:data:`CHANNELS`): a channel is on when its settings are (its ``from_settings``
returns None otherwise). A module that cannot be imported is an installation error and fails loudly.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from fastapi import APIRouter

from bot.config import Settings
from bot.dialogue import Dialogue
from bot.messages import Button
from bot.storage import Storage
from handlers.telegram import TelegramChannel
from handlers.zalo import ZaloChannel

log = logging.getLogger(__name__)


@runtime_checkable
class Channel(Protocol):
    """What a channel adapter provides to the server."""

    @property
    def name(self) -> str:
        """The channel name used in ``Incoming.channel`` and in the outbox (``telegram``, ``zalo``)."""
        ...

    @property
    def router(self) -> APIRouter | None:
        """Webhook routes, mounted as they are (the channel chooses its paths); None for polling channels."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, chat_id: str, text: str, buttons: list[Button]) -> None:
        """Deliver one message; raise on failure (the outbox deliverer retries later)."""
        ...


CHANNELS = (TelegramChannel, ZaloChannel)


def configured_channels(settings: Settings, dialogue: Dialogue, store: Storage) -> list[Channel]:
    """The channels whose settings are set."""
    out: list[Channel] = []
    for cls in CHANNELS:
        channel = cls.from_settings(settings, dialogue, store)
        if channel is not None:
            log.info("channel %s enabled", channel.name)
            out.append(channel)
    return out
