"""Storage: the only place that talks to the database (besides the migrations in ``bot/migrations``).

:class:`Storage` opens the database (checking that its schema is current: otherwise
:class:`~bot.storage.engine.SchemaBehindError` says ``run: ldtbxh db upgrade``) and gives one small
repository per concern; each method runs its own short transaction, or joins the caller's
:meth:`~bot.storage.engine.Database.unit` (the dialogue stores a message's request, queue entry and chat
state in one).

==================  =======================================================================
``identities``      chat identities (a citizen as one channel sees them)
``states``          the dialogue state of each chat
``requests``        every request and its outcome, unanswered questions, feedback
``outbox``          messages waiting for delivery by a channel
``inbox``           citizens' events recorded before the platform is answered (dedupe, resume)
``limits``          rate limits shared by all processes (dossier lookups, web chat)
``followups``       "gặp cán bộ" tickets
``audit``           what officers and administrators did
``users``           console accounts; ``sessions``: their signed-in sessions
``drafts``          Q&A drafts waiting for approval
``tokens``          channels' OAuth tokens (Zalo)
``dossiers``        imported dossiers, import runs, citizens' lookups
``stats``           aggregates for the dashboard
``transcripts``     the web chat's conversations, restored on reload
==================  =======================================================================
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Engine

from bot.config import Settings
from bot.storage.audit import Audit
from bot.storage.dossiers import Dossiers
from bot.storage.drafts import Drafts
from bot.storage.engine import AlreadyExists, Database, SchemaBehindError
from bot.storage.followups import FollowUps
from bot.storage.identities import ConversationStates, Identities
from bot.storage.inbox import Inbox
from bot.storage.limits import RateLimits
from bot.storage.outbox import OutboxQueue
from bot.storage.requests import Requests
from bot.storage.stats import Stats
from bot.storage.tokens import ChannelTokens
from bot.storage.transcripts import Transcripts
from bot.storage.users import ConsoleSessions, Users

__all__ = ["AlreadyExists", "SchemaBehindError", "Storage"]


class Storage:
    def __init__(self, target: Settings | Engine | str, *, check_schema: bool = True,
                 sqlite_synchronous: Literal["FULL", "NORMAL"] | None = None) -> None:
        self.db = Database(target, check_schema=check_schema, sqlite_synchronous=sqlite_synchronous)
        self.identities = Identities(self.db)
        self.states = ConversationStates(self.db)
        self.requests = Requests(self.db, self.identities)
        self.outbox = OutboxQueue(self.db)
        self.inbox = Inbox(self.db)
        self.limits = RateLimits(self.db)
        self.followups = FollowUps(self.db, self.identities)
        self.audit = Audit(self.db)
        self.users = Users(self.db)
        self.sessions = ConsoleSessions(self.db)
        self.drafts = Drafts(self.db)
        self.tokens = ChannelTokens(self.db)
        self.dossiers = Dossiers(self.db)
        self.stats = Stats(self.db)
        self.transcripts = Transcripts(self.db)

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def close(self) -> None:
        self.db.close()
