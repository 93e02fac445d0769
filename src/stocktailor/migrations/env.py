"""Alembic environment: runs on the connection passed by :func:`stocktailor.workflow.upgrade`.

Used without a connection (``alembic -c alembic.ini upgrade head``) it reads
``sqlalchemy.url`` from the Alembic config or ``STOCKTAILOR_DATABASE_URL``.
"""

from __future__ import annotations

import os

from alembic import context

from stocktailor.workflow.db import connect, write_engine
from stocktailor.workflow.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over the given connection, or open one from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("STOCKTAILOR_DATABASE_URL")
    if not url:
        msg = "alembic: set sqlalchemy.url or STOCKTAILOR_DATABASE_URL"
        raise RuntimeError(msg)
    engine = connect(url)
    try:
        with write_engine(engine).begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    """Emit SQL for the configured URL without connecting."""
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("STOCKTAILOR_DATABASE_URL")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
