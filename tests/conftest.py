"""Fixtures of every test: an isolated environment, the tiny knowledge base, databases.

* No ``LDTBXH_*`` variable of the developer's shell and no ``.env`` file reach a test; the data
  directory defaults to a temporary one.
* ``db_url`` runs a test on SQLite and on PostgreSQL. PostgreSQL is the local server
  (``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``, or ``LDTBXH_TEST_DATABASE_URL``): when it
  answers, a throw-away database ``test_<pid>`` is created for the run (one per pytest-xdist worker) and
  dropped at the end, each test gets a fresh schema in it; the PostgreSQL leg is skipped, with the reason, only when no server answers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.config import Settings, get_settings
from bot.dialogue import Dialogue
from bot.storage import Storage
from bot.storage.engine import upgrade
from tests.support import MINI_KB, REPO, build_fake_index, export_cmd, make_dialogue, make_settings, model_env

PG_ENV = "LDTBXH_TEST_DATABASE_URL"
PG_SERVER = os.environ.get(PG_ENV) or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
"""Read before the isolation below removes every LDTBXH_ variable."""


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("LDTBXH_"):
            monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
    monkeypatch.setenv("LDTBXH_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- the knowledge base -----------------------------------------------------------------------------

@pytest.fixture()
def mini_kb(tmp_path: Path) -> Path:
    """A writable copy of the small test knowledge base."""
    dst = tmp_path / "knowledge"
    shutil.copytree(MINI_KB, dst)
    return dst


@pytest.fixture()
def fake_settings(tmp_path: Path, mini_kb: Path) -> Settings:
    """Settings for the small knowledge base with the fake embedder (no database)."""
    return make_settings(tmp_path, mini_kb)


@pytest.fixture()
def fake_index(fake_settings: Settings) -> Settings:
    build_fake_index(fake_settings)
    return fake_settings


# --- databases --------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database created for this test run on the local PostgreSQL server, dropped afterwards."""
    server = make_url(PG_SERVER)
    try:
        admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"no PostgreSQL server answers at {server.render_as_string(hide_password=True)} "
                    f"({type(exc).__name__}); set {PG_ENV} to run the PostgreSQL leg")
    name = f"test_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    base = request.getfixturevalue("pg_database")
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
def store(migrated_url: str) -> Iterator[Storage]:
    s = Storage(migrated_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def settings(migrated_url: str, tmp_path: Path) -> Settings:
    """Settings on the test database with the Department's facts filled in (no knowledge base needed)."""
    return Settings(
        database_url=migrated_url,
        data_dir=tmp_path / "var",
        department={"dept_name": "Sở Lao động – Thương binh và Xã hội tỉnh Thử Nghiệm",
                    "dept_hotline": "0203 3 999 999", "dept_address": "số 1 đường Thử Nghiệm",
                    "one_stop_office": "Trung tâm Phục vụ hành chính công tỉnh"},
    )


@pytest.fixture
def dialogue(store: Storage, migrated_url: str, tmp_path: Path, mini_kb: Path) -> Dialogue:
    """A real dialogue on the test database and the small knowledge base (fake embedder)."""
    return make_dialogue(store, make_settings(tmp_path, mini_kb, database_url=migrated_url))


# --- the real model ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def e5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled e5 materialised once for the whole run (its own tests, test_e5_convert, still build it
    from scratch); a test that needs a fresh model cache copies this folder into it."""
    from indexer.e5_convert import materialize_e5

    return materialize_e5(tmp_path_factory.mktemp("e5-shared"))


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, e5_folder: Path) -> dict[str, Any]:
    """A model cache with the e5 folder and its ONNX export, made the hard way once a run (checked in
    test_onnx_embed): an export killed in the middle, then two exports racing on the same cache."""
    import signal
    import subprocess

    from indexer.onnx_embed import ONNX_DIRNAME, is_current

    cache = tmp_path_factory.mktemp("onnxcache")
    shutil.copytree(e5_folder, cache / e5_folder.name)  # the e5 folder the export starts from
    # 1. A process killed in the middle of the export leaves nothing that counts as an export.
    victim = subprocess.Popen(export_cmd(cache), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=model_env(), cwd=REPO)
    assert victim.stdout is not None
    for line in victim.stdout:
        if "torch.onnx" in line:  # the graph export has started
            break
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not is_current(cache / ONNX_DIRNAME)
    assert list(cache.glob(f".{ONNX_DIRNAME}.tmp-*")), "the killed export should have left its temp dir"

    # 2. Two processes racing on the same cache dir.
    procs = [subprocess.Popen(export_cmd(cache), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=model_env(), cwd=REPO) for _ in range(2)]
    outputs = [p.communicate(timeout=1200)[0] for p in procs]
    return {"cache": cache, "outputs": outputs, "codes": [p.returncode for p in procs]}


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """argon2 with its production cost takes ~0.13 s a hash or check, and the console tests log in hundreds of
    times; the tests are not about the cost, so in this process it is the lowest argon2 allows (as Django's
    test settings use a fast hasher). Servers started as subprocesses keep the production cost."""
    from argon2 import PasswordHasher

    from handlers.console import security

    real = security._hasher
    security._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    security._hasher = real


# --- two workers (pytest-xdist, ``make test`` runs ``-n 2 --dist loadgroup``) ----------------------------
_GROUPS = {
    "test_faults": "faults",  # one throw-away PostgreSQL cluster on port 5433: never two tests at once
    "test_onnx_embed": "model",  # the run's one ONNX export (the ``exported`` fixture) is built on one worker
    "test_e2e_model": "model",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that share a run-wide resource run on the same worker, one after the other."""
    for item in items:
        group = _GROUPS.get(item.module.__name__.rsplit(".", 1)[-1]) if item.module else None
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures tests record (``record_property("figures", line)``, e.g. the fault suite's), printed once at
    the end of the run: on two workers a test's own output is not shown."""
    lines = [str(value) for key in ("passed", "failed") for rep in terminalreporter.stats.get(key, [])
             if rep.when == "call" for name, value in rep.user_properties if name == "figures"]
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)
