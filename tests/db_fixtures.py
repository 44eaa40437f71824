"""Database fixtures for the storage, dossier, lookup and follow-up tests.

``db_url`` is parametrised over a SQLite file and a real PostgreSQL (``LDTBXH_TEST_DATABASE_URL``, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``; that leg is skipped when the variable is unset).
Each PostgreSQL test gets a fresh schema of its own (via ``search_path``), dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.db import upgrade
from bot.store import Store

PG_ENV = "LDTBXH_TEST_DATABASE_URL"

__all__ = ["db_url", "migrated_url", "store", "settings", "PG_ENV"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def migrated_url(db_url: str) -> str:
    upgrade(db_url)
    return db_url


@pytest.fixture
def store(migrated_url: str) -> Iterator[Store]:
    s = Store(migrated_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def settings(migrated_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=migrated_url,
        data_dir=tmp_path / "var",
        dept_name="Sở Lao động – Thương binh và Xã hội tỉnh Thử Nghiệm",
        dept_hotline="0203 3 999 999",
        dept_address="số 1 đường Thử Nghiệm",
        one_stop_office="Trung tâm Phục vụ hành chính công tỉnh",
    )
