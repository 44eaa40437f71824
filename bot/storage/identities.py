"""Chat identities (a citizen as one channel sees them) and the dialogue state of each chat."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.orm import Session

from bot.storage.engine import Database
from bot.storage.models import ChatIdentity, ConversationState, utcnow

IDENTITIES = cast(Table, ChatIdentity.__table__)
STATES = cast(Table, ConversationState.__table__)


class Identities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @cached_property
    def _upsert(self) -> Any:
        """Built once (statement and cache key): it runs on every message."""
        stmt = self.db.insert(IDENTITIES)
        return stmt.on_conflict_do_update(index_elements=["channel", "external_id"],
                                          set_={"last_seen_at": stmt.excluded.last_seen_at}
                                          ).returning(IDENTITIES.c.id)

    def id_in(self, s: Session, channel: str, chat_id: str) -> int:
        """Inside the caller's transaction: the id of the chat identity (channel + the channel's external id),
        created on first use, its last-seen time updated. One statement (``INSERT ... ON CONFLICT DO UPDATE
        ... RETURNING``): two messages of a new chat racing both get the same id, and no statement fails,
        so it can run inside :meth:`Database.unit`."""
        now = utcnow()
        return int(s.execute(self._upsert, {"channel": channel, "external_id": str(chat_id), "created_at": now,
                                            "last_seen_at": now}).scalar_one())

    def get_or_create(self, channel: str, chat_id: str) -> int:
        """The id of the chat identity (channel + the channel's external id), created on first use."""
        with self.db.transaction() as s:
            return self.id_in(s, channel, chat_id)


class ConversationStates:
    _select = select(STATES.c.state, STATES.c.updated_at).where(STATES.c.channel == bindparam("channel"),
                                                              STATES.c.chat_id == bindparam("chat_id"))
    _delete = delete(STATES).where(STATES.c.channel == bindparam("channel"), STATES.c.chat_id == bindparam("chat_id"))

    def __init__(self, db: Database) -> None:
        self.db = db

    @cached_property
    def _upsert(self) -> Any:
        stmt = self.db.insert(STATES)
        return stmt.on_conflict_do_update(index_elements=["channel", "chat_id"],
                                          set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at})

    def get(self, channel: str, chat_id: str, *, max_age: timedelta | None = None) -> dict[str, Any] | None:
        """The stored state of a chat, or None (also when it is older than ``max_age``)."""
        with self.db.transaction() as s:
            row = s.execute(self._select, {"channel": channel, "chat_id": str(chat_id)}).first()
        if row is None:
            return None
        if max_age is not None and row.updated_at < utcnow() - max_age:
            return None
        return dict(row.state)

    def set(self, channel: str, chat_id: str, state: dict[str, Any] | None) -> None:
        """Store the state of a chat (one statement); ``None`` or ``{}`` clears it."""
        key = {"channel": channel, "chat_id": str(chat_id)}
        with self.db.transaction() as s:
            if not state:
                s.execute(self._delete, key)
            else:
                s.execute(self._upsert, {**key, "state": dict(state), "updated_at": utcnow()})
