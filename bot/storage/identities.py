"""Chat identities (a citizen as one channel sees them) and the dialogue state of each chat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.storage.engine import Database
from bot.storage.models import ChatIdentity, ConversationState, utcnow


class Identities:
    def __init__(self, db: Database) -> None:
        self.db = db

    def touch_in(self, s: Session, channel: str, chat_id: str) -> int | None:
        """Inside the caller's transaction: the id of an existing chat identity (its last-seen time
        updated), or None when the chat is new."""
        row = s.scalar(select(ChatIdentity).where(ChatIdentity.channel == channel,
                                                  ChatIdentity.external_id == str(chat_id)))
        if row is None:
            return None
        row.last_seen_at = utcnow()
        return int(row.id)

    def get_or_create(self, channel: str, chat_id: str) -> int:
        """The id of the chat identity (channel + the channel's external id), created on first use."""
        chat_id = str(chat_id)
        where = (ChatIdentity.channel == channel, ChatIdentity.external_id == chat_id)
        with self.db.transaction() as s:
            row = s.scalar(select(ChatIdentity).where(*where))
            if row is not None:
                row.last_seen_at = utcnow()
                return row.id
        try:
            with self.db.transaction() as s:
                row = ChatIdentity(channel=channel, external_id=chat_id)
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:  # created concurrently by another worker
            with self.db.transaction() as s:
                found = s.scalar(select(ChatIdentity.id).where(*where))
                assert found is not None
                return found


class ConversationStates:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, channel: str, chat_id: str, *, max_age: timedelta | None = None) -> dict[str, Any] | None:
        """The stored state of a chat, or None (also when it is older than ``max_age``)."""
        with self.db.transaction() as s:
            row = s.get(ConversationState, (channel, str(chat_id)))
            if row is None:
                return None
            if max_age is not None and row.updated_at < utcnow() - max_age:
                return None
            return dict(row.state)

    def set(self, channel: str, chat_id: str, state: dict[str, Any] | None) -> None:
        """Store the state of a chat; ``None`` or ``{}`` clears it."""
        chat_id = str(chat_id)
        with self.db.transaction() as s:
            row = s.get(ConversationState, (channel, chat_id))
            if not state:
                if row is not None:
                    s.delete(row)
                return
            if row is None:
                s.add(ConversationState(channel=channel, chat_id=chat_id, state=dict(state)))
            else:
                row.state = dict(state)
                row.updated_at = utcnow()
