"""The web chat's transcript: what its page showed, so that a reload restores the conversation.

Phone and ID numbers are masked as in the request log. Only chats whose id carries at least 128 random bits
are kept (the page makes such ids; see
``handlers.web``); rows older than the retention (``serve.web_history_days``) are deleted by :meth:`purge`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.messages import Reply
from bot.privacy import mask_text
from bot.storage.engine import Database
from bot.storage.models import ChatTranscript


@dataclass(frozen=True)
class TranscriptLine:
    id: int
    role: str
    text: str
    kind: str | None
    buttons: list[dict[str, str]]
    payload: str | None
    client_id: str | None
    created_at: datetime


def _line(r: ChatTranscript) -> TranscriptLine:
    return TranscriptLine(r.id, r.role, r.text, r.kind, list(r.buttons or []), r.payload, r.client_id, r.created_at)


def _buttons(reply: Reply) -> list[dict[str, str]]:
    return [{"label": b.label, "payload": b.payload} for b in reply.buttons]


class Transcripts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def answered(self, channel: str, chat_id: str, client_id: str) -> list[TranscriptLine] | None:
        """The replies already given to the message ``client_id`` (a retry), None if it was never handled."""
        with self.db.transaction() as s:
            rows = list(s.scalars(select(ChatTranscript).where(
                ChatTranscript.channel == channel, ChatTranscript.chat_id == chat_id,
                ChatTranscript.client_id == client_id).order_by(ChatTranscript.id)))
        if not rows:
            return None
        return [_line(r) for r in rows if r.role == "bot"]

    def record(self, channel: str, chat_id: str, shown: str, replies: Sequence[Reply], *,
               payload: str | None = None, client_id: str | None = None) -> None:
        """One exchange: what the citizen sent (``shown``: the text, or the label of the button) and the replies.
        Phone and ID numbers are masked, as in the request log."""
        with self.db.transaction() as s:
            s.add(ChatTranscript(channel=channel, chat_id=chat_id, role="user", text=mask_text(shown[:4000]),
                                 payload=payload, client_id=client_id))
            for r in replies:
                s.add(ChatTranscript(channel=channel, chat_id=chat_id, role="bot", text=mask_text(r.text),
                                     kind=str(r.kind), buttons=_buttons(r), client_id=client_id))

    def record_officer(self, channel: str, chat_id: str, outbox_id: int, text: str,
                       buttons: list[dict[str, Any]]) -> bool:
        """An officer's message the page has shown (once per outbox row); False if it was already recorded."""
        try:
            with self.db.transaction() as s:
                s.add(ChatTranscript(channel=channel, chat_id=chat_id, role="officer", text=text, kind="officer",
                                     buttons=buttons, outbox_id=outbox_id))
            return True
        except IntegrityError:
            return False

    def history(self, channel: str, chat_id: str, *, since: datetime | None = None,
                limit: int = 200) -> list[TranscriptLine]:
        """The last ``limit`` lines of one chat (newer than ``since``), oldest first."""
        q = select(ChatTranscript).where(ChatTranscript.channel == channel, ChatTranscript.chat_id == chat_id)
        if since is not None:
            q = q.where(ChatTranscript.created_at >= since)
        with self.db.transaction() as s:
            rows = list(s.scalars(q.order_by(ChatTranscript.id.desc()).limit(limit)))
        return [_line(r) for r in reversed(rows)]

    def purge(self, before: datetime) -> int:
        """Delete the lines older than ``before``; returns how many went."""
        with self.db.transaction() as s:
            res = s.execute(delete(ChatTranscript).where(ChatTranscript.created_at < before))
            return int(getattr(res, "rowcount", 0) or 0)
