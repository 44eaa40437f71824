"""The inbox worker: answers the events the webhooks recorded (:mod:`bot.storage.inbox`).

A webhook stores the event and answers the platform 200 only after the row is committed, then wakes
this worker. The worker (one per server process, started with the app like the outbox deliverer) claims
pending events, at most one per chat at a time and in order, turns each into an
:class:`~bot.messages.Incoming` through its channel (``channel.incoming(payload)``), runs the dialogue,
and in one transaction queues the replies in the outbox and marks the event done; then it asks the
outbox deliverer to send that chat's replies at once. A crash anywhere leaves the event claimed: once
the claim's time has passed (``LDTBXH_INBOX_CLAIM_SECONDS``) a worker (this process after a restart, or
another one) takes it again. Web chat events are processed by their own request; the worker only takes
one whose request died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

from bot.config import ServeSettings
from bot.dialogue import Dialogue
from bot.messages import Incoming, Reply
from bot.protocol import APOLOGY, ReplyKind
from bot.storage.engine import DatabaseError
from bot.storage.inbox import Inbox, InboxItem, QueuedReply, reply_quote
from handlers.outbox import OutboxDeliverer

log = logging.getLogger(__name__)


class InboxChannel(Protocol):
    name: str

    async def incoming(self, payload: dict[str, Any]) -> Incoming | None:
        """The dialogue message of a recorded event (None: nothing to answer)."""
        ...


def reply_json(r: Reply) -> dict[str, Any]:
    return {"text": r.text, "kind": str(r.kind),
            "buttons": [{"label": b.label, "payload": b.payload} for b in r.buttons]}


class WebInbox:
    """The web chat as the worker sees it: its events hold the Incoming's fields."""

    name = "web"

    async def incoming(self, payload: dict[str, Any]) -> Incoming | None:
        return Incoming("web", str(payload["chat_id"]), text=str(payload.get("text") or ""),
                        payload=payload.get("payload") or None, source=payload.get("source") or None)


def handle_safely(dialogue: Dialogue, incoming: Incoming) -> list[Reply]:
    """The dialogue's replies; the apology when it fails, except when the database is what failed (the
    error is raised: the event is answered properly once the database is back)."""
    try:
        return dialogue.handle(incoming)
    except DatabaseError:
        raise
    except Exception as exc:
        log.error("the dialogue failed on a %s message: %s", incoming.channel, type(exc).__name__,
                  exc_info=exc)
        return [Reply(APOLOGY, kind=ReplyKind.ERROR)]


class InboxWorker:
    def __init__(self, inbox: Inbox, dialogue: Dialogue, channels: Mapping[str, InboxChannel],
                 deliverer: OutboxDeliverer | None = None, *, claim_seconds: float = 120.0, batch: int = 16,
                 max_attempts: int = 5, retention_hours: float = 72.0) -> None:
        self.inbox = inbox
        self.dialogue = dialogue
        self.channels = dict(channels)
        self.deliverer = deliverer
        self.hold = timedelta(seconds=claim_seconds)
        self.batch = batch
        self.max_attempts = max_attempts
        self.retention = timedelta(hours=retention_hours)
        self.processed = 0
        self._wake = asyncio.Event()
        self._last_purge = 0.0
        self._inflight = 0

    @classmethod
    def from_settings(cls, inbox: Inbox, dialogue: Dialogue, channels: Mapping[str, InboxChannel],
                      deliverer: OutboxDeliverer | None, serve: ServeSettings) -> InboxWorker:
        return cls(inbox, dialogue, channels, deliverer, claim_seconds=serve.inbox_claim_seconds,
                   batch=serve.inbox_batch, max_attempts=serve.inbox_max_attempts,
                   retention_hours=serve.inbox_retention_hours)

    def wake(self) -> None:
        """A new event was recorded: look now rather than at the next poll."""
        self._wake.set()

    async def process_once(self) -> int:
        """Claim a batch of events and answer them (different chats at once); returns how many."""
        items = await asyncio.to_thread(self.inbox.claim, list(self.channels), self.batch, self.hold)
        if items:
            await asyncio.gather(*(self.process(i) for i in items))
        return len(items)

    async def process(self, item: InboxItem) -> None:
        self._inflight += 1
        try:
            await self._process(item)
        finally:
            self._inflight -= 1

    async def _process(self, item: InboxItem) -> None:
        channel = self.channels[item.channel]
        try:
            incoming = await channel.incoming(item.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken stored event: keep it, visible, and move on
            log.error("inbox %s (%s): the event could not be read: %s", item.id, item.channel, type(exc).__name__)
            await asyncio.to_thread(self.inbox.release, item.id, item.claim_token, f"{type(exc).__name__}",
                                    retry_in=self.hold, max_attempts=1)
            return
        if incoming is None:
            await asyncio.to_thread(self.inbox.complete, item.id, item.claim_token, state="ignored")
            return
        web = item.channel == "web"
        try:
            replies = await asyncio.to_thread(handle_safely, self.dialogue, incoming)
            ok = await asyncio.to_thread(
                self.inbox.complete, item.id, item.claim_token,
                [] if web else [QueuedReply(r.text, r.buttons) for r in replies],
                reply_to=reply_quote(incoming.text) if incoming.text else None,
                result=[reply_json(r) for r in replies] if web else None,
                outbox_channel=item.channel, chat_id=incoming.chat_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("inbox %s: not answered (%s); retried later", item.id, type(exc).__name__)
            db_error = isinstance(exc, DatabaseError)  # an outage: retried until the database is back
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.inbox.release, item.id, item.claim_token, type(exc).__name__,
                                        retry_in=timedelta(seconds=2),
                                        max_attempts=1_000_000 if db_error else self.max_attempts)
            return
        if not ok:
            log.warning("inbox %s: the claim was lost (taken by another worker); replies dropped here", item.id)
            return
        self.processed += 1
        if not web and self.deliverer is not None:
            try:
                await self.deliverer.deliver_chat(item.channel, incoming.chat_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # queued: the deliverer's own loop retries
                log.warning("inbox %s: immediate delivery failed (%s); left to the outbox", item.id,
                            type(exc).__name__)

    async def drain(self, timeout: float = 15.0) -> None:
        """Process until no event of these channels is open (tests)."""
        deadline = time.monotonic() + timeout
        while True:
            await self.process_once()
            if not self._inflight and await asyncio.to_thread(self.inbox.open_count, list(self.channels)) == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("inbox events still open")
            await asyncio.sleep(0.02)

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < 600:
            return
        self._last_purge = now
        n = self.inbox.purge(self.retention)
        limits = getattr(self.dialogue.store, "limits", None)
        if limits is not None:
            limits.purge()
        if n:
            log.info("inbox: %s processed events older than %s forgotten", n, self.retention)

    async def run(self, every: float, stop: asyncio.Event | None = None) -> None:
        """Process events until cancelled (or until ``stop`` is set)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            self._wake.clear()
            try:
                n = await self.process_once()
                if not n:
                    await asyncio.to_thread(self._maybe_purge)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down: try again at the next poll
                log.warning("inbox round failed: %s", type(exc).__name__)
                n = 0
            if n:
                continue
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(waiters, timeout=every, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()


__all__ = ["InboxChannel", "InboxWorker", "WebInbox", "handle_safely", "reply_json"]
