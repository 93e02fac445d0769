"""Benchmark: generate the ``scale`` scenario and write it.

Run ``python benchmarks/generate_scale.py [--stores 1000] [--skus 20000] [--no-write]``.
Prints wall time, peak traced memory (``tracemalloc``: Python and numpy allocations; polars'
Rust allocations are not traced) and peak resident memory (``resource.getrusage``), plus the
table sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from stocktailor.synth import generate


def _rss_mb() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stores", type=int, default=1000)
    ap.add_argument("--skus", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-tracemalloc", action="store_true")
    args = ap.parse_args(argv)

    if not args.no_tracemalloc:
        tracemalloc.start()
    t0 = time.perf_counter()
    net = generate("scale", args.seed, n_stores=args.stores, n_sku_sizes=args.skus)
    t_gen = time.perf_counter() - t0
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if not args.no_tracemalloc else 0.0
    rss_gen = _rss_mb()
    print(f"scale {args.stores} stores x {args.skus} SKU-sizes, seed {args.seed}")
    print(
        f"generate: {t_gen:.1f} s; tracemalloc peak {traced_peak:.0f} MiB; "
        f"max RSS {rss_gen:.0f} MiB"
    )
    for name, frame in net.tables.items():
        print(f"  {name:<11} {frame.height:>12,d} rows  {frame.estimated_size('mb'):8.1f} MB")
    f = net.truth.factors
    carried = f.carried[:, f.sku_sc]
    print(f"  ranged store x SKU pairs {int(carried.sum()):,d} ({carried.mean():.1%} breadth)")
    print(
        f"  allocated pairs {net.truth.initial_stock.height:,d}; "
        f"units sold {net.tables.sales['units'].sum():,d}"
    )

    # one day of true demand for the whole network (dense) and for the allocated pairs
    day = net.as_of + dt.timedelta(days=1)
    t1 = time.perf_counter()
    dense = net.truth.expected_demand(day, day)
    t_dense = time.perf_counter() - t1
    ids = {s: i for i, s in enumerate(net.truth.store_ids)}
    skus = {k: i for i, k in enumerate(net.truth.skus)}
    pos = net.truth.position.filter(net.truth.position["store_id"] != "WH01")
    ps = np.array([ids[s] for s in pos["store_id"].to_list()])
    pk = np.array([skus[k] for k in pos["sku"].to_list()])
    t2 = time.perf_counter()
    week = net.truth.expected_demand_pairs(day, day + dt.timedelta(days=6), ps, pk)
    t_pairs = time.perf_counter() - t2
    print(
        f"expected_demand 1 day dense {dense.shape}: {t_dense:.2f} s; "
        f"7 days x {ps.size:,d} pairs: {t_pairs:.2f} s ({week.sum():,.0f} units)"
    )
    del dense

    if not args.no_write:
        with tempfile.TemporaryDirectory() as tmp:
            t3 = time.perf_counter()
            net.write(Path(tmp))
            t_write = time.perf_counter() - t3
            size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
            files = sorted(str(p.relative_to(tmp)) for p in Path(tmp).glob("*") if p.is_file())
            print(f"write: {t_write:.1f} s, {size / 2**20:.0f} MiB on disk: {', '.join(files)}")
    if not args.no_tracemalloc:
        print(f"tracemalloc peak overall {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB")
    print(f"max RSS overall {_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
