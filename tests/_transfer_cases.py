"""Shared cases of the transfer tests: random networks, an independent LP, a tiny network."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import linprog

from stocktailor.config import ConstraintsConfig, Settings, SolverConfig
from stocktailor.contract import Tables
from stocktailor.positions import haversine_km
from stocktailor.transfers import (
    TransferInstance,
    solve_instance,
)
from stocktailor.valuation import arrival_tail, prob_at_least

AS_OF = dt.date(2026, 3, 1)


def random_instance(
    seed: int,
    n: int,
    m: int,
    *,
    fixed: bool = True,
    eligible_share: float = 1.0,
    capacity: bool = False,
    mean_stock: float = 4.0,
) -> TransferInstance:
    """A misallocated network: stock drawn independently of demand."""
    rng = np.random.default_rng(seed)
    lat = rng.uniform(30, 47, n)
    lon = rng.uniform(-122, -72, n)
    km = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    unit = 0.4 + 0.0015 * km
    fc = (25.0 + 0.05 * km) if fixed else np.zeros((n, n))
    lead = (2 + np.floor(km / 800)).astype(np.int64)
    for a in (unit, fc, lead):
        np.fill_diagonal(a, 0)
    stock = rng.poisson(mean_stock, (n, m)).astype(np.int64)
    movable = np.maximum(stock - 1, 0)
    movable = np.minimum(movable, rng.integers(0, 12, (n, m)))
    rate = rng.gamma(0.8, 1.0, (n, m)) * rng.uniform(0.3, 1.5, (1, m))
    ml = rate * 0.4
    mr = rate * 5.0
    price = rng.uniform(20, 120, m)
    elig = rng.random((n, m)) < eligible_share if eligible_share < 1 else None
    head = None
    if capacity:
        head = rng.integers(-3, 15, n).astype(np.int64)
    return TransferInstance(
        store_ids=[f"S{i:03d}" for i in range(n)],
        skus=[f"K{j:03d}" for j in range(m)],
        styles=[f"ST{j // 3}" for j in range(m)],
        stock=stock,
        movable=movable,
        mean_lead=ml,
        var_lead=ml * 1.6,
        mean_rest=mr,
        var_rest=mr * 1.6,
        price=price,
        salvage=price * 0.3,
        unit_cost=unit,
        fixed_cost=fc,
        lead_days=lead,
        eligible=elig,
        headroom=head,
        season_days=np.full(m, 60.0),
    )


def lp_optimum(inst: TransferInstance) -> float:
    """Independent LP (HiGHS) of the no-fixed-cost model: all pairs, all units, no pruning."""
    n = inst.n_stores
    total = 0.0
    for s in range(inst.n_skus):
        margin = inst.price[s] - inst.salvage[s]
        mv = inst.movable[:, s]
        src = np.nonzero(mv > 0)[0]
        if src.shape[0] == 0:
            continue
        supply = int(mv.sum())
        x = np.maximum(inst.stock[:, s], 0)
        season = prob_at_least(
            inst.mean_lead[:, s] + inst.mean_rest[:, s],
            inst.var_lead[:, s] + inst.var_rest[:, s],
            int(x.max()) + 1,
        )
        arr = arrival_tail(
            x,
            inst.mean_lead[:, s],
            inst.var_lead[:, s],
            inst.mean_rest[:, s],
            inst.var_rest[:, s],
            supply,
        )
        elig = np.ones(n, bool) if inst.eligible is None else inst.eligible[:, s]
        dst = np.nonzero(elig)[0]
        pairs = [(i, j) for i in src for j in dst if i != j]
        cost: list[float] = []
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        nv = 0
        row_src = {i: r for r, i in enumerate(src)}
        row_dst = {j: len(src) + r for r, j in enumerate(dst)}
        for i, j in pairs:
            cost.append(inst.unit_cost[i, j])
            rows += [row_src[i], row_dst[j]]
            cols += [nv, nv]
            vals += [1.0, 1.0]
            nv += 1
        for i in src:
            for k in range(1, mv[i] + 1):
                cost.append(margin * season[i, x[i] - k])
                rows.append(row_src[i])
                cols.append(nv)
                vals.append(-1.0)
                nv += 1
        for j in dst:
            for k in range(1, supply + 1):
                cost.append(-margin * arr[j, k - 1])
                rows.append(row_dst[j])
                cols.append(nv)
                vals.append(-1.0)
                nv += 1
        a = sparse.csr_array((vals, (rows, cols)), shape=(len(src) + len(dst), nv))
        ub = [None] * len(pairs) + [1.0] * (nv - len(pairs))
        res = linprog(
            np.array(cost),
            A_eq=a,
            b_eq=np.zeros(a.shape[0]),
            bounds=list(zip([0.0] * nv, ub, strict=True)),
            method="highs",
        )
        assert res.status == 0
        total += -res.fun
    return float(total)


def loose(**solver: object) -> Settings:
    big = 10**6
    return Settings(
        constraints=ConstraintsConfig(
            min_transfer_units=1,
            pack_size=1,
            max_outbound_lanes_per_store=big,
            max_inbound_lanes_per_store=big,
            respect_capacity=False,
        ),
        solver=SolverConfig(**solver),  # type: ignore[arg-type]
    )


def constrained(min_units: int, pack: int, lanes: int, budget: float | None) -> Settings:
    """Settings with these constraints: minimum line units, pack size, the same lane limit out
    of and into a store, the transfer budget; capacity respected."""
    return Settings(
        constraints=ConstraintsConfig(
            min_transfer_units=min_units,
            pack_size=pack,
            max_outbound_lanes_per_store=lanes,
            max_inbound_lanes_per_store=lanes,
            respect_capacity=True,
            transfer_budget=budget,
        )
    )


def check_plan(inst: TransferInstance, s: Settings) -> None:
    sol = solve_instance(inst, s, method="heuristic")
    ln = sol.lines
    c = s.constraints
    n, m = inst.n_stores, inst.n_skus
    out = np.zeros((n, m), dtype=np.int64)
    inn = np.zeros((n, m), dtype=np.int64)
    np.add.at(out, (ln.src, ln.sku), ln.units)
    np.add.at(inn, (ln.dst, ln.sku), ln.units)
    # never more than movable out (presentation minimum, recent receipts), never negative
    assert (out <= inst.movable).all()
    final = inst.stock - out + inn
    assert (final >= 0).all()
    assert (final.sum(axis=0) == inst.stock.sum(axis=0)).all()  # units conserved
    assert (sol.net_benefit > 0).all()
    np.testing.assert_allclose(
        sol.net_benefit, sol.gain - sol.source_loss - sol.transfer_cost, rtol=1e-12, atol=1e-9
    )
    assert (ln.units >= c.min_transfer_units).all()
    assert (ln.units % c.pack_size == 0).all()
    assert (ln.src != ln.dst).all()
    if inst.eligible is not None:
        assert inst.eligible[ln.dst, ln.sku].all()
    if inst.headroom is not None and c.respect_capacity:
        net_in = inn.sum(axis=1) - out.sum(axis=1)
        assert (net_in <= np.maximum(inst.headroom, 0)).all()
    # lane limits and the budget count store-to-store lanes (a warehouse's are not transfers)
    stl = ~inst.is_warehouse[ln.src]
    lanes = {(int(a), int(b)) for a, b in zip(ln.src[stl], ln.dst[stl], strict=True)}
    outdeg = np.bincount([a for a, _ in lanes], minlength=n)
    indeg = np.bincount([b for _, b in lanes], minlength=n)
    assert outdeg.max(initial=0) <= c.max_outbound_lanes_per_store
    assert indeg.max(initial=0) <= c.max_inbound_lanes_per_store
    if c.transfer_budget is not None:
        assert sol.transfer_cost[stl].sum() <= c.transfer_budget + 1e-6
    assert (sol.gain_p10 <= sol.gain_p90 + 1e-9).all()
    # same input, same output
    again = solve_instance(inst, s, method="heuristic")
    assert np.array_equal(again.lines.units, ln.units)
    assert np.array_equal(again.lines.src, ln.src)
    assert np.array_equal(again.lines.dst, ln.dst)
    assert np.array_equal(again.lines.sku, ln.sku)


def tiny_tables(*, assortment: pl.DataFrame | None = None) -> tuple[Tables, pl.DataFrame]:
    stores = pl.DataFrame(
        {
            "store_id": ["SEA", "SMO", "DEN", "WH"],
            "name": ["Seattle Downtown", "Santa Monica", "Denver", "Central DC"],
            "kind": ["store", "store", "store", "warehouse"],
            "latitude": [47.61, 34.02, 39.74, 39.0],
            "longitude": [-122.33, -118.49, -104.99, -95.0],
            "capacity_units": [500, 500, 500, None],
            "region": ["NW", "CA", "MT", "C"],
        },
        schema_overrides={"capacity_units": pl.Int64},
    )
    products = pl.DataFrame(
        {
            "sku": ["TR-M", "TR-L"],
            "style": ["TR", "TR"],
            "color": ["Beige", "Beige"],
            "size": ["M", "L"],
            "category": ["coats", "coats"],
            "full_price": [150.0, 150.0],
            "unit_cost": [50.0, 50.0],
            "salvage_value": [40.0, 40.0],
            "season_end": [dt.date(2026, 4, 30)] * 2,
            "name": ["Trench Coat"] * 2,
            "gender": ["W", "W"],
        }
    )
    sales = pl.DataFrame(
        {"date": [AS_OF], "store_id": ["SEA"], "sku": ["TR-M"], "units": [1], "revenue": [150.0]}
    )
    inv = pl.DataFrame(
        {
            "date": [AS_OF - dt.timedelta(days=30)] * 6,
            "store_id": ["SEA", "SMO", "DEN", "SEA", "SMO", "WH"],
            "sku": ["TR-M", "TR-M", "TR-M", "TR-L", "TR-L", "TR-M"],
            "on_hand": [21, 0, 2, 9, 1, 80],
            "in_transit": [0] * 6,
        }
    )
    weeks = [AS_OF + dt.timedelta(days=1 + 7 * i) for i in range(9)]
    rate = {"SEA": 0.3, "SMO": 4.0, "DEN": 1.0}
    fc = pl.DataFrame(
        [(s, k, w, r, 1.5 * r) for s, r in rate.items() for k in ("TR-M", "TR-L") for w in weeks],
        schema=["store_id", "sku", "week_start", "mean", "var"],
        orient="row",
    )
    t = Tables(stores=stores, products=products, sales=sales, inventory=inv, assortment=assortment)
    return t, fc
