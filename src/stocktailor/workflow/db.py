"""Engines and migrations: :func:`connect` and :func:`upgrade`.

SQLite connections get WAL journaling, a busy timeout and foreign keys; write transactions
(:func:`write_engine`) start with ``BEGIN IMMEDIATE`` on SQLite so concurrent writers queue on
the busy timeout instead of failing when a read lock cannot be upgraded. Other databases
(PostgreSQL) use their defaults; decisions use row-level compare-and-set updates there.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

__all__ = ["BUSY_TIMEOUT_MS", "connect", "is_sqlite", "upgrade", "write_engine"]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for the write lock before failing, milliseconds."""

CACHE_KIB = 65_536
"""SQLite page cache per connection, KiB (a 50,000-line run fits)."""

_WRITE_OPTION = "stocktailor_write"


def is_sqlite(engine: Engine | Connection) -> bool:
    """Return whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def connect(database_url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``database_url`` (any SQLAlchemy URL).

    Parameters
    ----------
    database_url
        E.g. ``sqlite:///path/stocktailor.db`` or ``postgresql+psycopg://user@host/db``.
    **kwargs
        Passed to :func:`sqlalchemy.create_engine`.

    Returns
    -------
    Engine
        For SQLite: WAL journal, ``busy_timeout`` of :data:`BUSY_TIMEOUT_MS`, foreign keys on,
        ``synchronous=NORMAL`` (durable at every commit in WAL mode against process crashes).
    """
    url = database_url
    if url.startswith("sqlite"):
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", BUSY_TIMEOUT_MS / 1000)
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if memory:
            from sqlalchemy.pool import StaticPool

            kwargs.setdefault("poolclass", StaticPool)
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Manage transactions ourselves (pysqlite's implicit BEGIN is unreliable).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get(_WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def write_engine(engine: Engine) -> Engine:
    """Return ``engine`` marked so its transactions take the write lock at ``BEGIN``."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def _alembic_config() -> Config:
    cfg = Config()
    location = resources.files("stocktailor") / "migrations"
    cfg.set_main_option("script_location", str(location))
    return cfg


def upgrade(database_url: str | Engine, revision: str = "head") -> None:
    """Run the Alembic migrations of :mod:`stocktailor.migrations` up to ``revision``.

    Parameters
    ----------
    database_url
        A SQLAlchemy URL, or an engine made by :func:`connect`.
    revision
        Target revision (default: the newest).
    """
    if isinstance(database_url, str):
        if database_url in ("sqlite://", "sqlite:///:memory:"):
            msg = "upgrade: an in-memory database would vanish; pass its engine instead"
            raise ValueError(msg)
        engine = connect(database_url, poolclass=NullPool)
        owned = True
    else:
        engine = database_url
        owned = False
    try:
        cfg = _alembic_config()
        with write_engine(engine).begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if owned:
            engine.dispose()
    logger.info("database migrated to %s", revision)
