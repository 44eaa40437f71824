"""The outbox: messages waiting to be delivered by a channel (officers' replies, undelivered answers).

A channel's deliverer takes due messages (:meth:`OutboxQueue.due`), claims each one
(:meth:`OutboxQueue.claim`, so two server processes never send it twice) and marks it sent or failed
(retried with exponential back-off, ``failed`` after the last attempt). The web chat has no push: its
page fetches the pending messages of its chat and acknowledges those it has shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased

from bot.messages import Button
from bot.privacy import mask_text
from bot.storage.engine import Database
from bot.storage.models import Outbox, utcnow


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    channel: str
    chat_id: str
    text: str
    buttons: list[Button]
    attempts: int
    created_at: datetime | None = None
    reply_to: str | None = None


@dataclass(frozen=True)
class Backoff:
    """How failed deliveries are retried: ``base`` doubled per attempt up to ``cap`` seconds, for at most
    ``max_attempts`` attempts and ``give_up_after`` since the message was queued."""

    base: float = 30.0
    cap: float = 3600.0
    max_attempts: int = 50
    give_up_after: timedelta = timedelta(hours=48)

    def delay(self, attempts: int) -> float:
        return float(min(self.cap, self.base * 2 ** max(0, attempts - 1)))


def new_message(channel: str, chat_id: str, text: str, buttons: Sequence[Button] = ()) -> Outbox:
    """A pending outbox row (for storage modules that queue a message inside their own transaction)."""
    return Outbox(channel=channel, chat_id=str(chat_id), text=text,
                  buttons=[{"label": b.label, "payload": b.payload} for b in buttons],
                  status="pending", attempts=0, next_attempt_at=utcnow())


def _message(r: Outbox) -> OutboxMessage:
    return OutboxMessage(id=r.id, channel=r.channel, chat_id=r.chat_id, text=r.text,
                         buttons=[Button(b["label"], b["payload"]) for b in r.buttons or []], attempts=r.attempts,
                         created_at=r.created_at, reply_to=r.reply_to)


class OutboxQueue:
    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, channel: str, chat_id: str, text: str, buttons: Sequence[Button] = ()) -> int:
        with self.db.transaction() as s:
            row = new_message(channel, chat_id, text, buttons)
            s.add(row)
            s.flush()
            return row.id

    def due(self, channel: str | None = None, limit: int = 50, *, chat_id: str | None = None) -> list[OutboxMessage]:
        """Pending messages whose next attempt is due, oldest first; only the oldest pending message of each
        chat (the next one waits until it is sent or has failed for good, so a chat's replies arrive in
        order)."""
        earlier = aliased(Outbox)
        blocked = (select(earlier.id).where(earlier.channel == Outbox.channel, earlier.chat_id == Outbox.chat_id,
                                            earlier.id < Outbox.id, earlier.status == "pending").exists())
        q = (select(Outbox).where(Outbox.status == "pending", Outbox.next_attempt_at <= utcnow(), ~blocked)
             .order_by(Outbox.id).limit(limit))
        if channel:
            q = q.where(Outbox.channel == channel)
        if chat_id is not None:
            q = q.where(Outbox.chat_id == str(chat_id))
        with self.db.transaction() as s:
            return [_message(r) for r in s.scalars(q)]

    def claim(self, outbox_id: int, hold: timedelta = timedelta(minutes=5)) -> bool:
        """Take one due message for delivery: its next attempt moves ``hold`` ahead, so no other process
        takes it meanwhile. False when it is no longer due (sent or claimed elsewhere)."""
        now = utcnow()
        with self.db.transaction() as s:
            res = s.execute(update(Outbox)
                            .where(Outbox.id == outbox_id, Outbox.status == "pending", Outbox.next_attempt_at <= now)
                            .values(next_attempt_at=now + hold))
            return bool(getattr(res, "rowcount", 0) == 1)

    def mark_sent(self, outbox_id: int) -> None:
        with self.db.transaction() as s:
            s.execute(update(Outbox).where(Outbox.id == outbox_id)
                      .values(status="sent", sent_at=utcnow(), attempts=Outbox.attempts + 1, last_error=None))

    def mark_failed(self, outbox_id: int, error: str, *, max_attempts: int | None = None,
                    backoff: Backoff | None = None, retry_after: float | None = None,
                    permanent: bool = False) -> str:
        """Record a failed delivery: retried with exponential back-off (at least ``retry_after`` seconds
        later, when the platform said so); ``failed`` when ``permanent``, after the last attempt or past
        the back-off's time limit. Returns the new status."""
        backoff = backoff or Backoff()
        if max_attempts is not None:
            backoff = Backoff(backoff.base, backoff.cap, max_attempts, backoff.give_up_after)
        now = utcnow()
        with self.db.transaction() as s:
            row = s.get(Outbox, outbox_id)
            if row is None:
                raise KeyError(outbox_id)
            row.attempts += 1
            row.last_error = mask_text(error)[:2000]
            wait = max(backoff.delay(row.attempts), float(retry_after or 0))
            if (permanent or row.attempts >= backoff.max_attempts
                    or now + timedelta(seconds=wait) > row.created_at + backoff.give_up_after):
                row.status = "failed"
            else:
                row.next_attempt_at = now + timedelta(seconds=wait)
            return row.status

    def hasten(self, channel: str) -> int:
        """The channel works again: its messages waiting for a retry are due now (not after their back-off)."""
        now = utcnow()
        with self.db.transaction() as s:
            res = s.execute(update(Outbox).where(Outbox.channel == channel, Outbox.status == "pending",
                                                 Outbox.attempts > 0, Outbox.next_attempt_at > now,
                                                 Outbox.last_error.is_not(None))
                            .values(next_attempt_at=now))
            return int(getattr(res, "rowcount", 0) or 0)

    def retry(self, outbox_id: int) -> bool:
        """Queue a failed message again (an officer pressed "Gửi lại"): due now, attempts counted anew."""
        now = utcnow()
        with self.db.transaction() as s:
            res = s.execute(update(Outbox).where(Outbox.id == outbox_id, Outbox.status == "failed")
                            .values(status="pending", next_attempt_at=now, attempts=0, created_at=now))
            return bool(getattr(res, "rowcount", 0) == 1)

    def counts(self) -> dict[str, int]:
        """Messages per status."""
        with self.db.transaction() as s:
            return {st: int(n) for st, n in s.execute(select(Outbox.status, func.count()).group_by(Outbox.status))}

    def for_unanswered(self, ids: Sequence[int]) -> dict[int, list[Outbox]]:
        """The outbox rows of officers' replies to these unanswered questions."""
        out: dict[int, list[Outbox]] = {}
        if not ids:
            return out
        with self.db.transaction() as s:
            for r in s.scalars(select(Outbox).where(Outbox.unanswered_id.in_(list(ids))).order_by(Outbox.id)):
                out.setdefault(int(r.unanswered_id or 0), []).append(r)
        return out

    def pending_for_chat(self, channel: str, chat_id: str, limit: int = 20) -> list[OutboxMessage]:
        """The messages waiting for one chat, oldest first (the web chat's page fetches them)."""
        with self.db.transaction() as s:
            rows = s.scalars(select(Outbox)
                             .where(Outbox.channel == channel, Outbox.chat_id == str(chat_id),
                                    Outbox.status == "pending")
                             .order_by(Outbox.id).limit(limit))
            return [_message(r) for r in rows]

    def acknowledge(self, channel: str, chat_id: str, ids: Sequence[int]) -> int:
        """Mark messages of this chat as delivered (the page has shown them); returns how many were."""
        if not ids:
            return 0
        with self.db.transaction() as s:
            res = s.execute(update(Outbox)
                            .where(Outbox.id.in_(list(ids)), Outbox.channel == channel,
                                   Outbox.chat_id == str(chat_id), Outbox.status == "pending")
                            .values(status="sent", sent_at=utcnow(), attempts=Outbox.attempts + 1))
            return int(getattr(res, "rowcount", 0) or 0)
