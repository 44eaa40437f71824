"""The outbox deliverer: sends due outbox messages through their channel (used by ``ldtbxh serve`` and
``ldtbxh telegram poll``).

Every reply goes through the outbox: the inbox worker queues a citizen's answers and asks for that chat
to be delivered at once (:meth:`OutboxDeliverer.deliver_chat`); what fails stays queued and this worker
retries it with back-off (``LDTBXH_OUTBOX_BACKOFF_BASE_SECONDS`` doubled up to
``LDTBXH_OUTBOX_BACKOFF_CAP_SECONDS``, a platform's ``retry_after`` respected, given up after
``LDTBXH_OUTBOX_GIVE_UP_HOURS``). Each message is claimed before it is sent (so two server processes never
send it twice), then marked sent or failed. A chat's messages go out in order: the next one waits while
an earlier one is pending. A reply delivered more than ``LDTBXH_OUTBOX_LATE_SECONDS`` after its question
quotes the question. The first successful send after failures makes the channel's waiting messages due at
once (the platform is back; no need to sit out the back-off). Web chat messages are not pushed: the page
fetches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

from bot.config import ServeSettings
from bot.messages import Button
from bot.storage.models import utcnow
from bot.storage.outbox import Backoff, OutboxMessage, OutboxQueue

log = logging.getLogger(__name__)


class Sender(Protocol):
    async def send(self, chat_id: str, text: str, buttons: list[Button]) -> None:
        """Deliver one message; raise on failure (the message is retried later)."""
        ...


def late_text(msg: OutboxMessage, late_after: float) -> str:
    """The text to send: quoting the question when the reply is late."""
    if not msg.reply_to or msg.created_at is None:
        return msg.text
    if (utcnow() - msg.created_at).total_seconds() < late_after:
        return msg.text
    return f"(Trả lời câu hỏi bạn đã gửi: «{msg.reply_to}»)\n\n{msg.text}"


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds the platform asked us to wait (Telegram's ``RetryAfter``), if it said."""
    value: Any = getattr(exc, "retry_after", None)
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class OutboxDeliverer:
    def __init__(self, outbox: OutboxQueue, channels: Mapping[str, Sender], *, max_attempts: int = 60,
                 send_timeout: float = 30.0, batch: int = 50, backoff: Backoff | None = None,
                 claim_seconds: float = 120.0, late_after: float = 120.0, parallel: int = 1) -> None:
        self.outbox = outbox
        self.channels = dict(channels)
        backoff = backoff or Backoff()
        self.backoff = Backoff(backoff.base, backoff.cap, max_attempts, backoff.give_up_after)
        self.max_attempts = max_attempts
        self.send_timeout = send_timeout
        self.claim_hold = timedelta(seconds=max(claim_seconds, send_timeout + 1))
        self.late_after = late_after
        self.parallel = parallel
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._failing: set[str] = set()
        self.batch = batch
        self.sent = 0
        self.round_done = threading.Event()
        """Set after every delivery round (whoever watches the worker can wait for it)."""
        self._wake = asyncio.Event()

    @classmethod
    def from_settings(cls, outbox: OutboxQueue, channels: Mapping[str, Sender],
                      serve: ServeSettings) -> OutboxDeliverer:
        backoff = Backoff(serve.outbox_backoff_base_seconds, serve.outbox_backoff_cap_seconds,
                          serve.outbox_max_attempts, timedelta(hours=serve.outbox_give_up_hours))
        return cls(outbox, channels, max_attempts=serve.outbox_max_attempts, send_timeout=serve.outbox_send_timeout,
                   backoff=backoff, claim_seconds=serve.outbox_claim_seconds, late_after=serve.outbox_late_seconds,
                   parallel=serve.outbox_parallel_sends)

    def _slot(self, name: str) -> asyncio.Semaphore:
        sem = self._slots.get(name)
        if sem is None:
            sem = self._slots[name] = asyncio.Semaphore(self.parallel)
        return sem

    async def _send_one(self, name: str, channel: Sender, msg: OutboxMessage) -> bool | None:
        """Claim and send one message: True sent, False failed, None taken by someone else.

        At most ``parallel`` sends per channel are in flight: neither Telegram nor Zalo takes an
        idempotency key, so a send cut short by a crash (sent, not yet recorded) is sent again; this
        bounds such duplicates to ``parallel`` per channel per crash."""
        async with self._slot(name):
            return await self._claim_and_send(name, channel, msg)

    async def _claim_and_send(self, name: str, channel: Sender, msg: OutboxMessage) -> bool | None:
        if not await asyncio.to_thread(self.outbox.claim, msg.id, self.claim_hold):
            return None
        try:
            await asyncio.wait_for(channel.send(msg.chat_id, late_text(msg, self.late_after), list(msg.buttons)),
                                   self.send_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            permanent = bool(getattr(channel, "permanent_error", lambda e: False)(exc))
            backoff = self.backoff
            window = getattr(channel, "reply_window", None)
            if isinstance(window, timedelta) and window < backoff.give_up_after:
                backoff = Backoff(backoff.base, backoff.cap, backoff.max_attempts, window)
            status = await asyncio.to_thread(self.outbox.mark_failed, msg.id, error, backoff=backoff,
                                             retry_after=retry_after_of(exc), permanent=permanent)
            log.warning("outbox %s to %s failed (attempt %s, now %s): %s", msg.id, name,
                        msg.attempts + 1, status, error)
            if not permanent:
                self._failing.add(name)
            return False
        await asyncio.to_thread(self.outbox.mark_sent, msg.id)
        self.sent += 1
        if name in self._failing:  # the platform is back: what waits for its back-off goes now
            self._failing.discard(name)
            n = await asyncio.to_thread(self.outbox.hasten, name)
            if n:
                log.info("outbox: %s works again; %s waiting messages due now", name, n)
                self.wake()
        return True

    async def deliver_chat(self, name: str, chat_id: str) -> int:
        """Send the due messages of one chat now, in order, stopping at the first failure."""
        channel = self.channels.get(name)
        if channel is None:
            return 0
        delivered = 0
        for _ in range(20):
            due = await asyncio.to_thread(self.outbox.due, name, 1, chat_id=chat_id)
            if not due:
                break
            ok = await self._send_one(name, channel, due[0])
            if not ok:
                break
            delivered += 1
        return delivered

    async def deliver_once(self) -> int:
        """Send every due message of the channels once; returns how many were delivered."""
        delivered = 0
        for name, channel in self.channels.items():
            due = await asyncio.to_thread(self.outbox.due, name, self.batch)
            results = await asyncio.gather(*(self._send_one(name, channel, m) for m in due))
            delivered += sum(1 for r in results if r)
            # a chat whose message was sent may have a next one due now: it goes in the next round
        self.round_done.set()
        return delivered

    def wake(self) -> None:
        self._wake.set()

    async def run(self, every: float, stop: asyncio.Event | None = None) -> None:
        """Deliver every ``every`` seconds until cancelled (or until ``stop`` is set)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            self._wake.clear()
            try:
                n = await self.deliver_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox delivery round failed")
                n = 0
            if n:
                continue  # more may be due (the next message of the chats just served)
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(waiters, timeout=every, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()


__all__ = ["OutboxDeliverer", "Sender", "late_text", "retry_after_of"]
