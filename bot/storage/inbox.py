"""The durable inbox: every citizen event is recorded here before its platform is answered 200.

* :meth:`Inbox.record` inserts ``(channel, event_id)`` once: a second record of the same event (a
  platform retry, a replay, another server process receiving it) returns ``None``.
* :meth:`Inbox.claim` takes pending events for processing, at most one per chat at a time and in the
  order they came (an event waits while an earlier one of its chat is not finished), safely for several
  processes: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional ``UPDATE`` on SQLite
  (whose writers are serialised). A claim lasts ``hold``; a process killed while holding it leaves the
  event to be taken again once that time has passed.
* :meth:`Inbox.complete` marks the event done **and** queues its replies in the outbox in one
  transaction, only while the claim is still this worker's (a worker that lost its claim queues nothing,
  so two workers never both answer).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import aliased

from bot.messages import Button
from bot.privacy import mask_text
from bot.storage.engine import Database
from bot.storage.models import InboxEvent, utcnow
from bot.storage.outbox import new_message

OPEN_STATES = ("pending", "processing")


@dataclass(frozen=True)
class InboxItem:
    id: int
    channel: str
    event_id: str
    chat_id: str
    payload: dict[str, Any]
    attempts: int
    claim_token: str


@dataclass(frozen=True)
class QueuedReply:
    """A reply to queue in the outbox when an event is completed."""

    text: str
    buttons: Sequence[Button] = ()


@dataclass(frozen=True)
class Recorded:
    id: int
    claim_token: str | None


def reply_quote(question: str, limit: int = 120) -> str:
    """The question as a late reply quotes it: masked, on one line, shortened."""
    q = " ".join(mask_text(question or "").split())
    return q if len(q) <= limit else q[: limit - 1] + "…"


_T = cast(Table, InboxEvent.__table__)
_COMPLETE = (update(_T).where(_T.c.id == bindparam("item_id"), _T.c.claim_token == bindparam("token"),
                              _T.c.state == "processing"))
"""Built once (statement and cache key): it runs on every message; the new values are the parameters."""


class Inbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    @cached_property
    def _insert_new(self) -> Any:
        return (self.db.insert(_T).on_conflict_do_nothing(index_elements=["channel", "event_id"])
                .returning(_T.c.id))

    # --- recording ---------------------------------------------------------------------------------
    def record(self, channel: str, event_id: str, chat_id: str, payload: dict[str, Any], *,
               claim_for: timedelta | None = None) -> Recorded | None:
        """Store one event (committed when this returns); None when ``(channel, event_id)`` is known.

        ``claim_for``: the caller processes the event itself right away (the web chat): the row is
        stored already claimed for that long, so the worker leaves it alone unless the caller dies.
        """
        now = utcnow()
        token = secrets.token_hex(8) if claim_for is not None else None
        row = {"channel": channel, "event_id": str(event_id)[:160], "chat_id": str(chat_id)[:128],
               "payload": payload, "state": "processing" if token else "pending", "attempts": 1 if token else 0,
               "claim_token": token, "claimed_until": now + claim_for if claim_for is not None else None,
               "created_at": now, "updated_at": now}
        with self.db.transaction() as s:  # a known event: no row, and no failed statement
            new_id = s.execute(self._insert_new, row).scalar()
        return Recorded(int(new_id), token) if new_id is not None else None

    def find(self, channel: str, event_id: str) -> InboxEvent | None:
        with self.db.transaction() as s:
            return s.scalars(select(InboxEvent).where(InboxEvent.channel == channel,
                                                      InboxEvent.event_id == str(event_id)[:160])).first()

    # --- claiming ----------------------------------------------------------------------------------
    def _claimable(self, channels: Sequence[str] | None, now: Any) -> Any:
        earlier = aliased(InboxEvent)
        blocked = (select(earlier.id)
                   .where(earlier.channel == InboxEvent.channel, earlier.chat_id == InboxEvent.chat_id,
                          earlier.id < InboxEvent.id, earlier.state.in_(OPEN_STATES))
                   .exists())
        cond = and_(or_(InboxEvent.state == "pending",
                        and_(InboxEvent.state == "processing", InboxEvent.claimed_until < now)),
                    ~blocked)
        if channels is not None:
            cond = and_(cond, InboxEvent.channel.in_(list(channels)))
        return cond

    def claim(self, channels: Sequence[str] | None = None, limit: int = 20,
              hold: timedelta = timedelta(minutes=2)) -> list[InboxItem]:
        """Take up to ``limit`` events for processing (one per chat, oldest first)."""
        now = utcnow()
        token = secrets.token_hex(8)
        values = dict(state="processing", claim_token=token, claimed_until=now + hold,
                      attempts=InboxEvent.attempts + 1, updated_at=now)
        with self.db.transaction() as s:
            if self.db.dialect == "postgresql":
                ids = list(s.scalars(select(InboxEvent.id).where(self._claimable(channels, now))
                                     .order_by(InboxEvent.id).limit(limit)
                                     .with_for_update(skip_locked=True, of=InboxEvent)))
                if not ids:
                    return []
                s.execute(update(InboxEvent).where(InboxEvent.id.in_(ids)).values(**values))
            else:
                sub = (select(InboxEvent.id).where(self._claimable(channels, now))
                       .order_by(InboxEvent.id).limit(limit).scalar_subquery())
                s.execute(update(InboxEvent).where(InboxEvent.id.in_(sub)).values(**values)
                          .execution_options(synchronize_session=False))
            rows = s.scalars(select(InboxEvent).where(InboxEvent.claim_token == token)
                             .order_by(InboxEvent.id)).all()
            return [InboxItem(r.id, r.channel, r.event_id, r.chat_id, dict(r.payload or {}), r.attempts, token)
                    for r in rows]

    # --- finishing ---------------------------------------------------------------------------------
    def complete(self, item_id: int, claim_token: str, replies: Sequence[QueuedReply] = (), *,
                 reply_to: str | None = None, result: list[Any] | None = None,
                 state: str = "done", outbox_channel: str | None = None, chat_id: str | None = None) -> bool:
        """Mark the event ``state`` and queue ``replies`` in the outbox, atomically; False (and nothing
        queued) when the claim is no longer ours."""
        now = utcnow()
        with self.db.transaction() as s:
            res = s.execute(_COMPLETE, {"item_id": item_id, "token": claim_token, "state": state, "done_at": now,
                                        "updated_at": now, "payload": None, "result": result,
                                        "claimed_until": None})
            if getattr(res, "rowcount", 0) != 1:
                return False  # nothing was changed
            if replies and outbox_channel and chat_id is not None:
                for r in replies:
                    msg = new_message(outbox_channel, chat_id, r.text, r.buttons)
                    msg.reply_to = reply_to
                    msg.origin = "assistant"
                    s.add(msg)
            return True

    def release(self, item_id: int, claim_token: str, error: str, *, retry_in: timedelta, max_attempts: int) -> str:
        """Give an event back after a failure before its replies were queued: pending again after
        ``retry_in`` (``failed`` after ``max_attempts``). Returns the new state."""
        now = utcnow()
        with self.db.transaction() as s:
            row = s.get(InboxEvent, item_id)
            if row is None or row.claim_token != claim_token or row.state != "processing":
                return row.state if row is not None else "missing"
            row.last_error = mask_text(error)[:1000]
            row.updated_at = now
            if row.attempts >= max_attempts:
                row.state, row.done_at, row.claimed_until = "failed", now, None
            else:
                # still "processing", claimed by nobody alive: taken again once the time has passed
                row.claim_token, row.claimed_until = None, now + retry_in
            return row.state

    def result_of(self, channel: str, event_id: str) -> tuple[str, list[Any] | None] | None:
        """``(state, result)`` of a recorded event, or None when unknown."""
        row = self.find(channel, event_id)
        return (row.state, row.result) if row is not None else None

    # --- housekeeping --------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.db.transaction() as s:
            return {st: int(n) for st, n in s.execute(select(InboxEvent.state, func.count())
                                                       .group_by(InboxEvent.state))}

    def open_count(self, channels: Sequence[str] | None = None) -> int:
        q = select(func.count()).select_from(InboxEvent).where(InboxEvent.state.in_(OPEN_STATES))
        if channels is not None:
            q = q.where(InboxEvent.channel.in_(list(channels)))
        with self.db.transaction() as s:
            return int(s.scalar(q) or 0)

    def purge(self, older_than: timedelta) -> int:
        """Forget finished events older than ``older_than`` (their ids no longer needed for dedupe)."""
        cutoff = utcnow() - older_than
        with self.db.transaction() as s:
            res = s.execute(delete(InboxEvent).where(InboxEvent.state.in_(("done", "ignored", "failed")),
                                                     InboxEvent.created_at < cutoff))
            return int(getattr(res, "rowcount", 0) or 0)


__all__ = ["Inbox", "InboxItem", "QueuedReply", "Recorded", "reply_quote"]
