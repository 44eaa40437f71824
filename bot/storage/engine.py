"""The database connection, transactions and migrations.

SQLite (a file in ``data_dir``) by default, PostgreSQL when ``LDTBXH_DATABASE_URL`` is set. The schema is
managed by Alembic (``bot/migrations``); the configuration is built in code, so no alembic.ini is needed.
:class:`Database` checks at start-up that the schema is current (:func:`check_schema_current`) and
refuses to run on a schema that is behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
UPGRADE_HINT = "run: ldtbxh db upgrade"


DatabaseError = DBAPIError
"""What a statement raises when the database fails (down, refused...): handlers catch this name."""


class SchemaBehindError(RuntimeError):
    """The database schema is older than this version of the assistant (or empty)."""


class AlreadyExists(ValueError):
    """A row with the same unique key exists (e.g. a user name)."""


def _url_of(target: Settings | str) -> str:
    return target if isinstance(target, str) else target.db_url


def make_engine(target: Settings | str, *, sqlite_synchronous: Literal["FULL", "NORMAL"] | None = None,
                **kwargs: Any) -> Engine:
    """An engine for the configured database (creates the SQLite file's folder when needed).

    ``sqlite_synchronous``: SQLite's ``PRAGMA synchronous`` (the server uses NORMAL, see
    ``LDTBXH_SQLITE_SYNCHRONOUS``); None keeps SQLite's default (FULL).
    """
    url = make_url(_url_of(target))
    # A failing statement's parameters (a citizen's message text) never reach an exception or a log.
    kwargs.setdefault("hide_parameters", True)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            if url.database and url.database != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            if sqlite_synchronous is not None:
                cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.close()

        return engine
    engine = create_engine(url, **kwargs)
    _ping_after_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 2.0


def _ping_after_idle(engine: Engine) -> None:
    """Check a pooled connection before use when it sat idle for more than ``PING_AFTER_IDLE_SECONDS``
    (the database may have restarted meanwhile); a dead one is replaced, unseen by the caller.

    SQLAlchemy's ``pool_pre_ping`` does this on every checkout: a round trip per transaction, a tenth of a
    busy server's database work. A connection used a moment ago is alive or its failure is the database's
    going down now, which no ping prevents (the caller then gets :data:`DatabaseError`, and SQLAlchemy
    replaces every pooled connection).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1")
            cur.close()
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is dead ({type(exc).__name__})") from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


# --- migrations -----------------------------------------------------------------------------------

def alembic_config(url: str | None = None) -> Any:
    """An Alembic ``Config`` pointing at ``bot/migrations`` (no ini file)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(target: Settings | str | Engine, revision: str = "head") -> str | None:
    """Apply the migrations up to ``revision``; returns the revision the database is at afterwards."""
    from alembic import command

    engine = target if isinstance(target, Engine) else make_engine(target)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    rev = current_revision(engine)
    if not isinstance(target, Engine):
        engine.dispose()
    return rev


def downgrade(target: Settings | str | Engine, revision: str) -> None:
    from alembic import command

    engine = target if isinstance(target, Engine) else make_engine(target)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def check_schema_current(engine: Engine) -> None:
    """Raise :class:`SchemaBehindError` unless the database is at the newest migration."""
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaBehindError(
            f"Cơ sở dữ liệu {where} chưa được khởi tạo (the database has no schema yet); {UPGRADE_HINT}"
        )
    from alembic.script import ScriptDirectory

    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current not in known:
        raise SchemaBehindError(
            f"Cơ sở dữ liệu {where} ở phiên bản {current}, mới hơn chương trình này (head {head}); "
            "hãy cập nhật chương trình (the database is newer than this program)."
        )
    raise SchemaBehindError(
        f"Cơ sở dữ liệu {where} đang ở phiên bản {current}, cần {head} "
        f"(the database schema is behind); {UPGRADE_HINT}"
    )


class Database:
    """One engine and its sessions. Every storage module opens short transactions through it.

    :meth:`unit` gathers the storage calls of a block into one transaction (one commit, all or nothing): the
    dialogue's bookkeeping after an answer (request, unanswered question, chat state) is one round of the
    database instead of three.
    """

    def __init__(self, target: Settings | Engine | str, *, check_schema: bool = True,
                 sqlite_synchronous: Literal["FULL", "NORMAL"] | None = None) -> None:
        self.engine = target if isinstance(target, Engine) else make_engine(
            target, sqlite_synchronous=sqlite_synchronous)
        if check_schema:
            check_schema_current(self.engine)
        self._sessions = session_factory(self.engine)
        self._local = threading.local()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error. Inside :meth:`unit` (in
        the same thread) the unit's session: committed with the unit."""
        joined: Session | None = getattr(self._local, "session", None)
        if joined is not None:
            yield joined
            return
        with self._sessions.begin() as s:
            yield s

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """One transaction for every storage call inside the block (this thread): committed when the block
        ends, rolled back as a whole if it raises. A unit inside a unit is the same unit.

        Keep slow work (the model, a remote call) out of the block: the transaction is open while it runs
        (on SQLite, from its first write on, every other writer waits). Calls inside must not rely on
        catching a failed statement (a unique key already taken) and going on: the database has then
        abandoned the transaction; such calls use ``INSERT ... ON CONFLICT`` instead (:meth:`insert`).
        """
        joined: Session | None = getattr(self._local, "session", None)
        if joined is not None:
            yield joined
            return
        with self._sessions.begin() as s:
            self._local.session = s
            try:
                yield s
            finally:
                self._local.session = None

    def insert(self, model: Any) -> Any:
        """The dialect's ``INSERT`` for ``model`` (with ``on_conflict_do_nothing`` / ``_do_update``)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(model)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(model)

    @contextmanager
    def unique(self, what: str) -> Iterator[None]:
        """Turns a unique-key violation inside the block into :class:`AlreadyExists`."""
        try:
            yield
        except IntegrityError as exc:
            raise AlreadyExists(what) from exc

    def ping(self) -> bool:
        """True when the database answers (for /healthz)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("database health check failed", exc_info=True)
            return False

    def close(self) -> None:
        self.engine.dispose()
