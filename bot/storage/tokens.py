"""OAuth tokens of a channel (the Zalo OA's access and refresh tokens).

The refresh token is single-use, so :meth:`ChannelTokens.refresh` runs the whole exchange inside one
transaction that holds the row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the transaction
begins with a write, which takes the database write lock) and stores the new pair before committing:
several workers never spend the same refresh token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.storage.engine import Database
from bot.storage.models import ChannelToken, utcnow


@dataclass(frozen=True)
class Tokens:
    access_token: str | None
    refresh_token: str | None
    expires_at: datetime | None
    """When the access token expires (naive UTC); None: unknown (e.g. seeded from the environment)."""


class ChannelTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, channel: str) -> Tokens | None:
        with self.db.transaction() as s:
            row = s.get(ChannelToken, channel)
            return Tokens(row.access_token, row.refresh_token, row.expires_at) if row is not None else None

    def seed(self, channel: str, access: str | None, refresh: str | None, *, overwrite: bool = False) -> bool:
        """Store the configured tokens when there is no row yet (or always, with ``overwrite``).
        Returns whether they were stored."""
        if self.get(channel) is not None and not overwrite:
            return False
        try:
            with self.db.transaction() as s:
                row = s.get(ChannelToken, channel)
                if row is None:
                    s.add(ChannelToken(channel=channel, access_token=access, refresh_token=refresh,
                                       expires_at=None, updated_at=utcnow()))
                else:
                    row.access_token, row.refresh_token, row.expires_at = access, refresh, None
                    row.updated_at = utcnow()
            return True
        except IntegrityError:  # another worker seeded it first
            return False

    def refresh(self, channel: str, exchange: Callable[[Tokens | None], Tokens | str]) -> str:
        """Replace the tokens under the row lock: ``exchange`` gets the stored tokens (re-read inside the
        lock) and returns either an access token to use as it is (nothing changes) or the new tokens,
        which are stored before the lock is released. Returns the access token to use."""
        with self.db.transaction() as s:
            if self.db.dialect == "sqlite":
                # Begin with a write so the transaction holds SQLite's write lock before it reads.
                s.execute(update(ChannelToken).where(ChannelToken.channel == channel)
                          .values(updated_at=ChannelToken.updated_at))
            row = s.scalar(select(ChannelToken).where(ChannelToken.channel == channel)
                           .with_for_update().execution_options(populate_existing=True))
            current = Tokens(row.access_token, row.refresh_token, row.expires_at) if row is not None else None
            result = exchange(current)
            if isinstance(result, str):
                return result
            assert row is not None and result.access_token
            row.access_token = result.access_token
            row.refresh_token = result.refresh_token or row.refresh_token
            row.expires_at = result.expires_at
            row.updated_at = utcnow()
            return result.access_token
