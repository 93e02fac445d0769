"""Workflow benchmark: 50,000 recommendations in one run on SQLite.

Prints the time to publish the run, the p50/p95 latency of listing a filtered page (through the
workflow function and through the HTTP API), and the time to bulk-approve 10,000 lines.
Targets: filtered page p95 < 200 ms, bulk approve of 10,000 < 5 s.

Run: ``python benchmarks/workflow.py [--lines 50000] [--queries 200] [--db PATH]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from stocktailor import workflow
from stocktailor.config import Settings
from stocktailor.plan import PlanResult

AS_OF = dt.date(2025, 5, 4)
N_CATEGORIES = 5


def build_plan(
    n_lines: int, *, n_stores: int = 200, n_styles: int = 400, seed: int = 0
) -> tuple[PlanResult, pl.DataFrame, pl.DataFrame]:
    """A synthetic plan with ``n_lines`` transfers over ``n_stores`` stores, 5 categories."""
    rng = np.random.default_rng(seed)
    stores = pl.DataFrame(
        {
            "store_id": [f"S{i:04d}" for i in range(n_stores)],
            "name": [f"Store {i}" for i in range(n_stores)],
            "kind": ["store"] * n_stores,
            "city": [f"City {i % 40}" for i in range(n_stores)],
            "latitude": rng.uniform(40, 55, n_stores),
            "longitude": rng.uniform(-5, 20, n_stores),
        }
    )
    sizes = ["XS", "S", "M", "L", "XL"]
    products = pl.DataFrame(
        {
            "sku": [f"ST{s:04d}-{z}" for s in range(n_styles) for z in sizes],
            "style": [f"ST{s:04d}" for s in range(n_styles) for _ in sizes],
            "color": ["black"] * (n_styles * len(sizes)),
            "size": sizes * n_styles,
            "category": [f"cat{s % N_CATEGORIES}" for s in range(n_styles) for _ in sizes],
        }
    )
    # line i belongs to category i % 5, so each category has exactly n_lines / 5 lines
    style_idx = (rng.integers(0, n_styles // N_CATEGORIES, n_lines) * N_CATEGORIES) + (
        np.arange(n_lines) % N_CATEGORIES
    )
    size_idx = rng.integers(0, len(sizes), n_lines)
    a = rng.integers(0, n_stores, n_lines)
    b = (a + rng.integers(1, n_stores, n_lines)) % n_stores
    gain = rng.uniform(10, 300, n_lines)
    loss = rng.uniform(0, 20, n_lines)
    cost = rng.uniform(2, 15, n_lines)
    width = rng.uniform(0.1, 2.0, n_lines) * gain
    transfers = pl.DataFrame(
        {
            "transfer_id": [f"T{i:07d}" for i in range(n_lines)],
            "sku": [f"ST{s:04d}-{sizes[z]}" for s, z in zip(style_idx, size_idx, strict=True)],
            "from_id": [f"S{i:04d}" for i in a],
            "to_id": [f"S{i:04d}" for i in b],
            "units": rng.integers(2, 30, n_lines),
            "ship_date": [AS_OF + dt.timedelta(days=1)] * n_lines,
            "arrival_date": [AS_OF + dt.timedelta(days=3)] * n_lines,
            "transfer_cost": cost,
            "expected_gain": gain,
            "expected_source_loss": loss,
            "net_benefit": gain - loss - cost,
            "reason": ["destination sells out first"] * n_lines,
            "gain_p10": gain - width / 2,
            "gain_p90": gain + width / 2,
        }
    )
    clusters = pl.DataFrame(
        {
            "store_id": stores["store_id"],
            "cluster_id": [i % 8 for i in range(n_stores)],
            "cluster_name": [f"cluster {i % 8}" for i in range(n_stores)],
        }
    )
    empty_fc = pl.DataFrame(
        schema={
            "store_id": pl.String,
            "sku": pl.String,
            "week_start": pl.Date,
            "mean": pl.Float64,
            "p10": pl.Float64,
            "p50": pl.Float64,
            "p90": pl.Float64,
        }
    )
    empty_alloc = pl.DataFrame(
        schema={
            "sku": pl.String,
            "from_id": pl.String,
            "to_id": pl.String,
            "units": pl.Int64,
            "expected_gain": pl.Float64,
            "reason": pl.String,
        }
    )
    plan = PlanResult(
        as_of=AS_OF,
        clusters=clusters,
        forecast=empty_fc,
        allocation=empty_alloc,
        transfers=transfers,
        kpis={"lines": float(n_lines)},
        data_fingerprint="bench",
    )
    return plan, stores, products


def p(values: list[float], q: float) -> float:
    """Percentile ``q`` (0-100) of ``values``."""
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    db = args.db or Path(tmp.name) / "bench.db"
    url = f"sqlite:///{db}"
    workflow.upgrade(url)
    engine = workflow.connect(url)
    plan, stores, products = build_plan(args.lines)
    t0 = time.perf_counter()
    run_id = workflow.publish_run(engine, plan, stores, products)
    publish_s = time.perf_counter() - t0
    print(f"publish {args.lines:,} lines: {publish_s:.2f} s")

    rng = np.random.default_rng(1)
    sorts = ["net_benefit", "expected_gain", "units", "transfer_cost", "ship_date"]

    def random_query() -> tuple[workflow.RecFilter, str, bool, int]:
        kind = int(rng.integers(0, 5))
        store = f"S{int(rng.integers(0, 200)):04d}"
        f = [
            workflow.RecFilter(status="pending", category=f"cat{int(rng.integers(0, 5))}"),
            workflow.RecFilter(store=store),
            workflow.RecFilter(cluster=str(int(rng.integers(0, 8))), status="pending"),
            workflow.RecFilter(style=f"ST{int(rng.integers(0, 400)):04d}"),
            workflow.RecFilter(category="cat1", exception="low_confidence"),
        ][kind]
        page = int(rng.integers(1, 20))
        return f, sorts[int(rng.integers(0, len(sorts)))], bool(rng.integers(0, 2)), page

    lat: list[float] = []
    for _ in range(args.queries):
        f, sort, desc, page = random_query()
        t = time.perf_counter()
        workflow.list_recommendations(
            engine, run_id, f, sort=sort, descending=desc, page=page, page_size=50
        )
        lat.append(1000 * (time.perf_counter() - t))
    print(
        f"filtered page (workflow.list_recommendations, {args.queries} queries): "
        f"p50 {statistics.median(lat):.1f} ms, p95 {p(lat, 95):.1f} ms, max {max(lat):.1f} ms"
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

        from stocktailor.api import create_app

        app = create_app(Settings(), url)
        token = workflow.create_user(app.state.engine, "bench", "planner")
        client = TestClient(app)
        headers = {"Authorization": f"Bearer {token}"}
        http: list[float] = []
        for _ in range(args.queries):
            f, sort, desc, page = random_query()
            params = {k: v for k, v in f.__dict__.items() if v is not None}
            params.update(
                run_id=run_id, sort=sort, order="desc" if desc else "asc", page=page, page_size=50
            )
            t = time.perf_counter()
            r = client.get("/api/v1/recommendations", params=params, headers=headers)
            http.append(1000 * (time.perf_counter() - t))
            assert r.status_code == 200, r.text
    print(
        f"filtered page (GET /api/v1/recommendations, {args.queries} requests): "
        f"p50 {statistics.median(http):.1f} ms, p95 {p(http, 95):.1f} ms, max {max(http):.1f} ms"
    )

    t0 = time.perf_counter()
    res = workflow.bulk_decide(
        engine, run_id, workflow.RecFilter(category="cat0"), action="approve", user="bench"
    )
    bulk_s = time.perf_counter() - t0
    print(f"bulk approve {res.applied:,} lines: {bulk_s:.2f} s")
    assert res.applied == args.lines // N_CATEGORIES
    t0 = time.perf_counter()
    csv = workflow.export_approved(engine, run_id, "csv")
    print(
        f"export {res.applied:,} approved lines as CSV: {time.perf_counter() - t0:.2f} s "
        f"({len(csv) / 1e6:.1f} MB)"
    )
    ok_list = p(lat, 95) < 200 and p(http, 95) < 200
    print(
        f"targets: page p95 < 200 ms: {'met' if ok_list else 'MISSED'}; "
        f"bulk 10,000 < 5 s: {'met' if bulk_s < 5 else 'MISSED'}"
    )
    app.state.engine.dispose()
    engine.dispose()
    tmp.cleanup()


if __name__ == "__main__":
    main()
