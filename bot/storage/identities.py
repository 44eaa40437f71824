"""Chat identities (a citizen as one channel sees them) and the dialogue state of each chat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.storage.engine import Database
from bot.storage.models import ChatIdentity, ConversationState, utcnow


class Identities:
    def __init__(self, db: Database) -> None:
        self.db = db

    def id_in(self, s: Session, channel: str, chat_id: str) -> int:
        """Inside the caller's transaction: the id of the chat identity (channel + the channel's external id),
        created on first use, its last-seen time updated. One statement (``INSERT ... ON CONFLICT DO UPDATE
        ... RETURNING``): two messages of a new chat racing both get the same id, and no statement fails,
        so it can run inside :meth:`Database.unit`."""
        now = utcnow()
        stmt = self.db.insert(ChatIdentity.__table__).values(channel=channel, external_id=str(chat_id), created_at=now,
                                                   last_seen_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["channel", "external_id"],
                                          set_={"last_seen_at": stmt.excluded.last_seen_at})
        return int(s.execute(stmt.returning(ChatIdentity.__table__.c.id)).scalar_one())

    def get_or_create(self, channel: str, chat_id: str) -> int:
        """The id of the chat identity (channel + the channel's external id), created on first use."""
        with self.db.transaction() as s:
            return self.id_in(s, channel, chat_id)


class ConversationStates:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, channel: str, chat_id: str, *, max_age: timedelta | None = None) -> dict[str, Any] | None:
        """The stored state of a chat, or None (also when it is older than ``max_age``)."""
        t = ConversationState.__table__
        with self.db.transaction() as s:
            row = s.execute(select(t.c.state, t.c.updated_at)
                            .where(t.c.channel == channel, t.c.chat_id == str(chat_id))).first()
            if row is None:
                return None
            if max_age is not None and row.updated_at < utcnow() - max_age:
                return None
            return dict(row.state)

    def set(self, channel: str, chat_id: str, state: dict[str, Any] | None) -> None:
        """Store the state of a chat (one statement); ``None`` or ``{}`` clears it."""
        chat_id = str(chat_id)
        with self.db.transaction() as s:
            if not state:
                t = ConversationState.__table__
                s.execute(delete(t).where(t.c.channel == channel, t.c.chat_id == chat_id))
                return
            stmt = self.db.insert(ConversationState.__table__).values(channel=channel, chat_id=chat_id, state=dict(state),
                                                            updated_at=utcnow())
            s.execute(stmt.on_conflict_do_update(index_elements=["channel", "chat_id"],
                                                 set_={"state": stmt.excluded.state,
                                                       "updated_at": stmt.excluded.updated_at}))
