"""Benchmark: validate and ingest a data folder with a large sales table.

Run: ``python benchmarks/ingest.py [--rows 10000000] [--format parquet|csv]``. Prints the
wall time of reading + validating (``read_data_folder``) and of a full ``Workspace.ingest``
(validation + Parquet write + swap), and the time to find a bad row near the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from stocktailor.contract import ContractError
from stocktailor.workspace import Workspace, read_data_folder


def build(folder: Path, rows: int, fmt: str, seed: int = 0) -> None:
    """A network of 200 stores + 1 warehouse, 5,000 SKUs and ``rows`` sales rows."""
    rng = np.random.default_rng(seed)
    n_stores, n_skus = 200, 5000
    days = -(-rows // (n_stores * n_skus))
    folder.mkdir(parents=True, exist_ok=True)
    stores = pl.DataFrame(
        {
            "store_id": [f"S{i:04d}" for i in range(n_stores)] + ["W1"],
            "kind": ["store"] * n_stores + ["warehouse"],
            "latitude": rng.uniform(25, 49, n_stores + 1),
            "longitude": rng.uniform(-124, -67, n_stores + 1),
        }
    )
    sizes = ["XS", "S", "M", "L", "XL"]
    products = pl.DataFrame(
        {
            "sku": [f"K{i:05d}" for i in range(n_skus)],
            "style": [f"ST{i // 5:04d}" for i in range(n_skus)],
            "color": ["black"] * n_skus,
            "size": [sizes[i % 5] for i in range(n_skus)],
            "category": ["tops"] * n_skus,
            "full_price": rng.uniform(20, 120, n_skus).round(2),
            "unit_cost": rng.uniform(5, 15, n_skus).round(2),
            "season_end": [dt.date(2024, 8, 31)] * n_skus,
        }
    )
    idx = np.arange(rows)
    start = dt.date(2024, 3, 1)
    sales = pl.DataFrame(
        {
            "day": idx // (n_stores * n_skus),
            "store": (idx // n_skus) % n_stores,
            "sku": idx % n_skus,
            "units": rng.integers(-1, 6, rows),
        }
    ).select(
        date=pl.lit(start) + pl.duration(days=pl.col("day")),
        store_id=pl.format("S{}", pl.col("store").cast(pl.String).str.zfill(4)),
        sku=pl.format("K{}", pl.col("sku").cast(pl.String).str.zfill(5)),
        units=pl.col("units"),
        revenue=pl.col("units").cast(pl.Float64) * 29.99,
    )
    inventory = pl.DataFrame(
        {
            "date": [start + dt.timedelta(days=days - 1)] * n_skus,
            "store_id": ["W1"] * n_skus,
            "sku": products["sku"],
            "on_hand": rng.integers(0, 500, n_skus),
        }
    )
    for name, frame in [
        ("stores", stores),
        ("products", products),
        ("sales", sales),
        ("inventory", inventory),
    ]:
        if fmt == "csv":
            frame.write_csv(folder / f"{name}.csv")
        else:
            frame.write_parquet(folder / f"{name}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        build(root / "data", args.rows, args.format)
        size = sum(p.stat().st_size for p in (root / "data").iterdir()) / 1e6
        print(
            f"built {args.rows:,} sales rows ({args.format}, {size:,.0f} MB) in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        t0 = time.perf_counter()
        tables = read_data_folder(root / "data")
        print(
            f"read_data_folder (read + validate): {time.perf_counter() - t0:.1f} s, "
            f"{tables.sales.height:,} sales rows"
        )
        del tables
        t0 = time.perf_counter()
        report = Workspace(root / "ws").ingest(root / "data")
        print(
            f"Workspace.ingest (validate + write Parquet + swap): {time.perf_counter() - t0:.1f} s"
        )
        t0 = time.perf_counter()
        fp = Workspace(root / "ws").fingerprint()
        print(
            f"fingerprint: {time.perf_counter() - t0:.2f} s ({fp[:12]} == "
            f"{report.fingerprint[:12]})"
        )
        # a bad cell near the end: the error must name its row without a Python loop
        name = f"sales.{args.format}"
        sales = (
            pl.read_parquet(root / "data" / name)
            if args.format == "parquet"
            else pl.read_csv(root / "data" / name, infer_schema=False)
        )
        bad_row = args.rows - 3
        sales = sales.with_columns(
            pl.when(pl.int_range(pl.len()) == bad_row)
            .then(-pl.col("units").cast(pl.Int64).abs() - 100)
            .otherwise(pl.col("units").cast(pl.Int64))
            .alias("units")
        )
        # and an unknown sku in the same row (negative units alone are valid returns)
        sales = sales.with_columns(
            pl.when(pl.int_range(pl.len()) == bad_row)
            .then(pl.lit("K?"))
            .otherwise("sku")
            .alias("sku")
        )
        if args.format == "parquet":
            sales.write_parquet(root / "data" / name)
        else:
            sales.write_csv(root / "data" / name)
        del sales
        t0 = time.perf_counter()
        try:
            read_data_folder(root / "data")
        except ContractError as err:
            print(f"error found in {time.perf_counter() - t0:.1f} s: {err}")


if __name__ == "__main__":
    main()
