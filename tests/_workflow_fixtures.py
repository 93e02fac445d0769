"""Shared fixtures of the workflow, API and browser tests: fake plan runs and fresh databases.

``database_url`` yields a migrated, empty database: a SQLite file in a temp dir, and, when
``STOCKTAILOR_TEST_POSTGRES_URL`` is set, the same tests again on PostgreSQL (marked
``postgres``; the schema is dropped and recreated for every test). Under pytest-xdist each
worker gets its own PostgreSQL database (``<name>_<worker>``): two workers resetting one schema
at once race on the catalogue (``CREATE TABLE alembic_version`` collides).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from stocktailor import workflow
from stocktailor.contract import FORECAST_SCHEMA, TRANSFERS_SCHEMA
from stocktailor.plan import PlanResult

POSTGRES_ENV = "STOCKTAILOR_TEST_POSTGRES_URL"
AS_OF = dt.date(2025, 5, 4)


@dataclass(frozen=True)
class FakeRun:
    """A fake plan run with the tables :func:`workflow.publish_run` needs."""

    plan: PlanResult
    stores: pl.DataFrame
    products: pl.DataFrame
    positions: pl.DataFrame


def make_stores(n_stores: int = 6) -> pl.DataFrame:
    """Stores S01.. in three cities plus a warehouse W1."""
    cities = [("Berlin", 52.52, 13.40), ("Munich", 48.14, 11.58), ("Hamburg", 53.55, 9.99)]
    rows = []
    for i in range(n_stores):
        city, lat, lon = cities[i % len(cities)]
        rows.append(
            {
                "store_id": f"S{i + 1:02d}",
                "name": f"{city} store {i + 1}",
                "kind": "store",
                "city": city,
                "region": "DE",
                "latitude": lat + 0.01 * i,
                "longitude": lon + 0.01 * i,
            }
        )
    rows.append(
        {
            "store_id": "W1",
            "name": "Warehouse",
            "kind": "warehouse",
            "city": "Kassel",
            "region": "DE",
            "latitude": 51.31,
            "longitude": 9.48,
        }
    )
    return pl.DataFrame(rows)


def make_products(n_styles: int = 4) -> pl.DataFrame:
    """Styles ST0.. in two categories, each in sizes S, M, L."""
    rows = []
    for s in range(n_styles):
        for size in ("S", "M", "L"):
            rows.append(
                {
                    "sku": f"ST{s}-{size}",
                    "style": f"ST{s}",
                    "color": "black" if s % 2 == 0 else "red",
                    "size": size,
                    "category": "tops" if s % 2 == 0 else "shoes",
                    "full_price": 40.0,
                    "unit_cost": 15.0,
                    "season_end": AS_OF + dt.timedelta(days=60),
                }
            )
    return pl.DataFrame(rows)


def make_run(
    n_transfers: int = 40,
    *,
    n_allocations: int = 5,
    n_stores: int = 6,
    n_styles: int = 4,
    seed: int = 0,
    forecast: bool = True,
) -> FakeRun:
    """A deterministic fake :class:`PlanResult` with ``n_transfers`` transfer lines."""
    rng = np.random.default_rng(seed)
    stores = make_stores(n_stores)
    products = make_products(n_styles)
    store_ids = [s for s in stores["store_id"].to_list() if s != "W1"]
    skus = products["sku"].to_list()
    prod = {r["sku"]: r for r in products.iter_rows(named=True)}
    clusters = pl.DataFrame(
        {
            "store_id": store_ids,
            "cluster_id": [i % 3 for i in range(len(store_ids))],
            "cluster_name": [
                ["urban", "suburban", "tourist"][i % 3] for i in range(len(store_ids))
            ],
        }
    )
    rows = []
    for i in range(n_transfers):
        a, b = rng.choice(len(store_ids), size=2, replace=False)
        sku = skus[int(rng.integers(len(skus)))]
        units = int(rng.integers(2, 20))
        gain = float(rng.uniform(20, 200))
        loss = float(rng.uniform(0, 10))
        cost = float(rng.uniform(5, 15))
        width = float(rng.uniform(0.2, 2.5)) * gain
        rows.append(
            {
                "transfer_id": f"T{i:06d}",
                "sku": sku,
                "style": prod[sku]["style"],
                "color": prod[sku]["color"],
                "size": prod[sku]["size"],
                "from_id": store_ids[int(a)],
                "to_id": store_ids[int(b)],
                "units": units,
                "ship_date": AS_OF + dt.timedelta(days=1),
                "arrival_date": AS_OF + dt.timedelta(days=3),
                "transfer_cost": cost,
                "expected_gain": gain,
                "expected_source_loss": loss,
                "net_benefit": gain - loss - cost,
                "reason": f"{store_ids[int(b)]} sells out in 1 week; "
                f"{store_ids[int(a)]} has 9 weeks",
                "gain_p10": gain - width / 2,
                "gain_p90": gain + width / 2,
            }
        )
    transfers = pl.DataFrame(
        rows,
        schema=TRANSFERS_SCHEMA,
    )
    allocation = pl.DataFrame(
        {
            "sku": [skus[i % len(skus)] for i in range(n_allocations)],
            "from_id": ["W1"] * n_allocations,
            "to_id": [store_ids[i % len(store_ids)] for i in range(n_allocations)],
            "units": [6 + i for i in range(n_allocations)],
            "expected_gain": [30.0 + i for i in range(n_allocations)],
            "reason": ["initial allocation by size curve"] * n_allocations,
        },
        schema={
            "sku": pl.String,
            "from_id": pl.String,
            "to_id": pl.String,
            "units": pl.Int64,
            "expected_gain": pl.Float64,
            "reason": pl.String,
        },
    )
    fc_rows = []
    if forecast:
        for s in store_ids:
            for sku in skus:
                base = 2.0 + (sum(map(ord, s + sku)) % 5)
                for w in range(6):
                    mean = base * (1.0 - 0.05 * w)
                    fc_rows.append(
                        {
                            "store_id": s,
                            "sku": sku,
                            "week_start": AS_OF + dt.timedelta(days=1 + 7 * w),
                            "mean": mean,
                            "var": mean * 1.5,
                            "p10": max(mean - 2.0, 0.0),
                            "p50": mean,
                            "p90": mean + 2.5,
                        }
                    )
    fc = pl.DataFrame(
        fc_rows,
        schema=FORECAST_SCHEMA,
    )
    positions = pl.DataFrame(
        [
            {"store_id": s, "sku": sku, "on_hand": 25 + (i * 7 + j) % 11, "sold_units": 10 + j}
            for i, s in enumerate([*store_ids, "W1"])
            for j, sku in enumerate(skus)
        ]
    )
    plan = PlanResult(
        as_of=AS_OF,
        clusters=clusters,
        forecast=fc,
        allocation=allocation,
        transfers=transfers,
        kpis={
            "units_moved": float(transfers["units"].sum() or 0),
            "lanes": 7.0,
            "expected_net_benefit": 3_993_748.82,
        },
        settings={"constraints": {"presentation_minimum": 1}, "as_of": AS_OF},
        data_fingerprint="sha256:fake",
        validation=pl.DataFrame(
            {
                "group": ["all", "all"],
                "candidate": ["model", "seasonal_naive"],
                "holdout_wape": [0.31, 0.42],
                "holdout_bias": [0.02, -0.1],
                "chosen": [True, False],
            }
        ),
    )
    return FakeRun(plan, stores, products, positions)


_WORKER_URLS: dict[str, str] = {}


def _worker_database(url: str) -> str:
    """Return the URL of this xdist worker's own database, created on first use."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    if url not in _WORKER_URLS:
        base = make_url(url)
        name = f"{base.database}_{worker}"
        engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if exists is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        _WORKER_URLS[url] = base.set(database=name).render_as_string(hide_password=False)
    return _WORKER_URLS[url]


def _reset_postgres(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def fresh_database(kind: str, tmp_path: Path) -> str:
    """Return the URL of a migrated, empty database of ``kind`` (sqlite or postgres)."""
    if kind == "postgres":
        url = os.environ.get(POSTGRES_ENV)
        if not url:
            pytest.skip(f"{POSTGRES_ENV} is not set (run scripts/ci-postgres.sh)")
        url = _worker_database(url)
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path / 'workflow.db'}"
    workflow.upgrade(url)
    return url


DB_PARAMS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextlib.contextmanager
def disposing_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Engine]]:
    """Record every engine made through ``workflow.connect`` and dispose them at exit.

    Closing pooled connections keeps PostgreSQL's ``DROP SCHEMA`` of the next test from
    waiting and avoids unclosed-connection warnings.
    """
    engines: list[Engine] = []
    real = workflow.connect

    def tracking(url: str, **kwargs: Any) -> Engine:
        engine = real(url, **kwargs)
        engines.append(engine)
        return engine

    monkeypatch.setattr(workflow, "connect", tracking)
    try:
        yield engines
    finally:
        for engine in engines:
            engine.dispose()


@pytest.fixture(params=DB_PARAMS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A migrated empty database: SQLite file, and PostgreSQL when configured."""
    url = fresh_database(str(request.param), tmp_path)
    with disposing_engines(monkeypatch):
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated empty SQLite file database."""
    url = fresh_database("sqlite", tmp_path)
    with disposing_engines(monkeypatch):
        yield url


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (at the moment of asking)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread for the block; yields its base URL."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
