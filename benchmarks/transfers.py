"""Transfers benchmark: speed at scale and heuristic vs HiGHS MIP with fixed lane costs.

Random misallocated networks (stock allocated by store size, demand by store x SKU affinity),
lanes derived from great-circle distance with the default economics.

Usage::

    python benchmarks/transfers.py scale [--stores 1000] [--skus 20000] [--workers 2]
    python benchmarks/transfers.py mip [--stores 50 200] [--skus 300] [--time-limit 60]
    python benchmarks/transfers.py lp   (no fixed costs: flow objective vs HiGHS LP)
    python benchmarks/transfers.py truth [--scenarios seed-stories default]
    python benchmarks/transfers.py uplift [--scenarios ...] [--seeds 0 1 2 3 4]
        (ingest + run_plan as a user would, the joint plan scored under the generator's true
        demand against the same optimiser fed the true demand; foreign-* scenarios too)
    python benchmarks/transfers.py demo [--scenario default] [--seeds 10 11 12 13 14]
        (issue 13's demo checks on run_plan with the product's own forecast: (sku, store)
        pairs both allocated and shipping, pairs fed by the warehouse and a store, and the sum
        of the line P&L against the plan's objective)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import Any

import numpy as np

from stocktailor.config import ConstraintsConfig, EngineConfig, Settings, SolverConfig
from stocktailor.engine import DaskEngine, LocalEngine
from stocktailor.positions import haversine_km
from stocktailor.transfers import (
    TransferInstance,
    add_warehouses,
    destination_lead_days,
    solve_instance,
    transfer_bounds,
)


def network(
    seed: int, n: int, m: int, *, fixed: bool = True, warehouse_share: float = 0.0
) -> TransferInstance:
    """A misallocated network of ``n`` stores and ``m`` SKU-sizes (3-6 sizes per style).

    With ``warehouse_share`` > 0 one warehouse near the network's centre holds that share of
    the buy (the joint plan: warehouse stock and store stock in one optimisation), 80% of it
    free to ship (the rest held back).
    """
    rng = np.random.default_rng(seed)
    lat = rng.uniform(26, 48, n)
    lon = rng.uniform(-123, -70, n)
    size = rng.lognormal(0.0, 0.4, n)  # store traffic
    # each style sells in ~40% of stores (its segment market) and was shipped to ~35% of
    # stores chosen by store size only (the "old way"), so stock and demand overlap partly
    seg = rng.integers(0, 4, n)
    n_styles = max(m // 4, 1)
    style_of = np.sort(rng.integers(0, n_styles, m))
    style_seg = rng.dirichlet(np.full(4, 0.4), n_styles)  # (styles, 4)
    affinity = style_seg[style_of][:, seg].T  # (n, m)
    market = affinity > 0.2
    base = rng.gamma(2.0, 0.6, m)  # season units per store where the style sells
    season = np.where(market, base[None, :] * size[:, None] * affinity * 2.5, 0.0)
    carried = rng.random((n, n_styles)) < 0.35 * size[:, None] / size.mean()
    share = np.where(carried[:, style_of], size[:, None], 0.0)
    share = share / np.maximum(share.sum(axis=0, keepdims=True), 1e-9)
    total = np.round(season.sum(axis=0) * 1.1)
    stock = rng.poisson(share * total[None, :] * (1.0 - warehouse_share)).astype(np.int64)
    w = 1 if warehouse_share > 0 else 0
    if w:
        lat = np.append(lat, np.median(lat))
        lon = np.append(lon, np.median(lon))
    km = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    unit = 0.4 + 0.0015 * km
    fc = 25.0 + 0.05 * km if fixed else np.zeros((n + w, n + w))
    lead = (2 + np.floor(km / 800)).astype(np.int64)
    for a in (unit, fc, lead):
        np.fill_diagonal(a, 0)
    dest_lead = destination_lead_days(lead, unit)[:n]
    frac = np.clip(dest_lead / 70.0, 0, 1)[:, None]
    ml = season * frac
    mr = season - ml
    price = rng.choice([29.0, 49.0, 79.0, 129.0, 199.0], m)
    inst = TransferInstance(
        store_ids=[f"S{i:04d}" for i in range(n)],
        skus=[f"K{j:05d}" for j in range(m)],
        styles=[f"ST{s:05d}" for s in style_of],
        stock=stock,
        movable=np.maximum(stock - 1, 0),
        mean_lead=ml,
        var_lead=ml * 1.5,
        mean_rest=mr,
        var_rest=mr * 1.5,
        price=price,
        salvage=0.3 * price,
        unit_cost=unit[:n, :n],
        fixed_cost=fc[:n, :n],
        lead_days=lead[:n, :n],
        season_days=np.full(m, 70.0),
    )
    if not w:
        return inst
    wh = rng.poisson(total * warehouse_share)[None, :].astype(np.int64)
    return add_warehouses(inst, ["W0"], wh, np.floor(wh * 0.8).astype(np.int64), unit, fc, lead)


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return max(own, kids)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _worker_cpu(engine: object) -> float:
    """CPU seconds used so far by all Dask worker processes (0 in process)."""
    client = getattr(engine, "client", None)
    if client is None:
        return 0.0
    return float(sum(client.run(_cpu_seconds).values()))


def run_scale(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    inst = network(0, args.stores, args.skus, warehouse_share=args.warehouse_share)
    t_gen = time.perf_counter() - t0
    settings = Settings(
        solver=SolverConfig(lp_bound=not args.no_bound, candidate_partners=args.partners),
        engine=EngineConfig(partitions=max(args.workers * 8, 1)),
    )
    engine = DaskEngine(n_workers=args.workers) if args.workers > 1 else LocalEngine()
    bound_note = "in the plan"
    try:
        print(f"  load average before: {os.getloadavg()[0]:.1f}", flush=True)
        cpu0 = _worker_cpu(engine)
        t1 = time.perf_counter()
        c1 = time.process_time()
        sol = solve_instance(inst, settings, engine=engine, method="heuristic")
        wall = time.perf_counter() - t1
        cpu = time.process_time() - c1
        load = os.getloadavg()[0]
        peak = _peak_mb()
        worker_cpu = _worker_cpu(engine) - cpu0
        no_fixed, bound = sol.no_fixed_objective, sol.lp_bound
        if not np.isfinite(bound) and not args.no_bound:
            # planned on a lane sample: the bound needs every SKU, computed separately
            t2 = time.perf_counter()
            no_fixed, bound = transfer_bounds(inst, settings, engine=engine)
            bound = max(bound, sol.objective)
            bound_note = f"computed separately over every SKU in {time.perf_counter() - t2:.1f} s"
    finally:
        engine.close()
    print(
        f"scale: {args.stores} stores x {args.skus} SKU-sizes, workers={args.workers}, "
        f"partners={args.partners}, warehouse share {args.warehouse_share:.0%}"
    )
    print(
        f"  instance build {t_gen:.1f} s; plan {wall:.1f} s wall (parent CPU {cpu:.1f} s), "
        f"load average {load:.1f} at the end; peak RSS {peak:.0f} MB (max of parent and largest "
        f"worker)"
    )
    if args.workers > 1:
        print(
            f"  CPU seconds in the workers during the plan: {worker_cpu:.1f} in total "
            f"(parent {cpu:.1f})"
        )
    print("  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in sol.timings.items()))
    lanes = len(set(zip(sol.lines.src.tolist(), sol.lines.dst.tolist(), strict=True)))
    from_wh = inst.is_warehouse[sol.lines.src]
    print(
        f"  lines {len(sol.lines)} ({int(from_wh.sum())} from the warehouse), units "
        f"{int(sol.lines.units.sum())} ({int(sol.lines.units[from_wh].sum())} from the "
        f"warehouse), lanes {lanes}"
    )
    gap = (bound - sol.objective) / bound if bound > 0 else float("nan")
    print(
        f"  objective {sol.objective:,.0f}; heuristic (before min-qty/pack) "
        f"{sol.heuristic_objective:,.0f}; no-fixed-cost optimum {no_fixed:,.0f}; "
        f"LP bound {bound:,.0f} ({bound_note}); gap to LP bound {gap:.1%}"
    )


def compare_mip(inst: TransferInstance, time_limit: float, *, relaxed: bool) -> None:
    """Heuristic vs HiGHS MIP (min quantity exact, semi-integer flows) on ``inst``.

    With ``relaxed`` also the MIP without the minimum quantity: a relaxation, so its proven
    optimum bounds every plan on the same lanes from above.
    """
    s = Settings(solver=SolverConfig(mip_time_limit_s=time_limit, lp_bound=False))
    t0 = time.perf_counter()
    heur = solve_instance(inst, s, method="heuristic")
    th = time.perf_counter() - t0
    t0 = time.perf_counter()
    mip = solve_instance(inst, s, method="mip")
    tm = time.perf_counter() - t0
    best = max(heur.objective, mip.objective)
    mb = mip.mip_bound if mip.mip_bound is not None else float("nan")
    print(
        f"  heuristic plan {heur.objective:,.0f} ({th:.1f} s; flows before min-qty/pack/"
        f"positivity {heur.heuristic_objective or 0.0:,.0f}); HiGHS MIP ({time_limit:.0f} s, "
        f"started from the heuristic plan) {mip.mip_objective or 0.0:,.0f}, dual bound "
        f"{mb:,.0f}, plan {mip.objective:,.0f} via {mip.method} ({tm:.1f} s)"
    )
    print(f"  heuristic short of the best plan by {(best - heur.objective) / best:.2%}")
    if relaxed:
        s1 = Settings(
            solver=SolverConfig(mip_time_limit_s=time_limit, lp_bound=False),
            constraints=ConstraintsConfig(min_transfer_units=1),
        )
        t0 = time.perf_counter()
        rel = solve_instance(inst, s1, method="mip")
        tr = time.perf_counter() - t0
        rb = rel.mip_bound if rel.mip_bound is not None else float("nan")
        print(
            f"  relaxation without the minimum quantity: MIP {rel.mip_objective or 0.0:,.0f}, "
            f"dual bound {rb:,.0f} ({tr:.1f} s); heuristic plan within "
            f"{(rb - heur.objective) / rb:.2%} of that upper bound"
        )


def free_flow_lanes(inst: TransferInstance) -> np.ndarray:
    """Lanes used by the exact optimum without fixed lane costs (step 1 of the heuristic)."""
    from stocktailor.transfers._partition import solve_partition

    n = inst.n_stores
    out = solve_partition(np.arange(inst.n_skus, dtype=np.int64), inst=inst, penalty=0.0)
    lanes = np.zeros((n, n), dtype=bool)
    for r in out.results:
        lanes[r.src, r.dst] = True
    return lanes


def mip_from_scratch(inst: TransferInstance, time_limit: float, *, all_lanes: bool) -> None:
    """Heuristic vs the best HiGHS MIP solution found in ``time_limit`` s WITHOUT the
    heuristic's plan as a start (minimum quantity exact, semi-integer flows).

    Lane sets: ``reduced`` = lanes of the no-fixed-cost optimum plus the heuristic's lanes;
    ``all`` = every candidate lane (pruned only by the exact first-unit margin test).
    Gap = (MIP - heuristic) / MIP, positive = the heuristic is worse.
    """
    from stocktailor.transfers._finalise import finalise, mip_lines

    s = Settings(
        solver=SolverConfig(
            mip_time_limit_s=time_limit,
            lp_bound=False,
            mip_warm_start=False,
            mip_max_variables=10**9,
        )
    )
    t0 = time.perf_counter()
    heur = solve_instance(inst, s, method="heuristic")
    th = time.perf_counter() - t0
    n = inst.n_stores
    hl = np.zeros((n, n), dtype=bool)
    hl[heur.lines.src, heur.lines.dst] = True
    free = free_flow_lanes(inst)
    sets = [("reduced", free | hl)]
    if all_lanes:
        sets.append(("all", ~np.eye(n, dtype=bool)))
    lanes_h = int(hl.sum())
    print(
        f"  heuristic {heur.objective:,.2f} ({th:.1f} s, {len(heur.lines)} lines, {lanes_h} lanes)",
        flush=True,
    )
    for name, lanes in sets:
        t0 = time.perf_counter()
        res = mip_lines(inst, s, lanes, None, 0.0, heur.lines, forced=True)
        tm = time.perf_counter() - t0
        if res is None:
            print(
                f"  MIP on {name} lanes ({int(lanes.sum())}): no feasible solution in "
                f"{time_limit:.0f} s ({tm:.1f} s)",
                flush=True,
            )
            continue
        lines, obj, bound = res
        fobj = finalise(inst, lines, s, None).objective
        best = max(obj, fobj)
        gap = (best - heur.objective) / abs(best) if best != 0 else float("nan")
        print(
            f"  MIP from scratch on {name} lanes ({int(lanes.sum())} candidate lanes): "
            f"best solution {obj:,.2f} (after our finalise {fobj:,.2f}), dual bound "
            f"{bound:,.2f}, {tm:.1f} s wall incl. model build; gap heuristic vs MIP "
            f"{gap:+.2%}; heuristic vs dual bound {(bound - heur.objective) / bound:+.2%}",
            flush=True,
        )


def run_mip(args: argparse.Namespace) -> None:
    for n in args.stores:
        inst = network(1, n, args.skus)
        print(f"mip: random {n} stores x {args.skus} SKU-sizes (fixed lane costs, 3 lanes/store)")
        if args.warm:
            compare_mip(inst, args.time_limit, relaxed=args.relaxed)
        else:
            mip_from_scratch(inst, args.time_limit, all_lanes=args.all_lanes)
    for scenario in args.scenarios:
        inst = truth_instance(scenario, args.seed)
        print(
            f"mip: {scenario} seed {args.seed}, true demand: {inst.n_stores} stores x "
            f"{inst.n_skus} SKU-sizes"
        )
        mip_from_scratch(inst, args.time_limit, all_lanes=args.all_lanes)


def truth_instance(scenario: str, seed: int) -> TransferInstance:
    """The generator's network with its true demand in place of a forecast."""
    import datetime as dt

    import polars as pl

    from stocktailor.contract import FORECAST_SCHEMA
    from stocktailor.synth import generate
    from stocktailor.transfers import build_instance, with_daily_demand

    net = generate(scenario, seed)
    tb, tr = net.tables, net.truth
    base = build_instance(tb, net.as_of, pl.DataFrame(schema=FORECAST_SCHEMA), Settings())
    rates = tr.expected_demand(net.as_of + dt.timedelta(days=1), tb.products["season_end"].max())
    return with_daily_demand(base, rates, tr.store_ids, tr.skus, tr.dispersion)


def run_lp(args: argparse.Namespace) -> None:
    sys.path.insert(0, "tests")
    from _transfer_cases import loose, lp_optimum

    for seed in range(args.seeds):
        inst = network(seed, 12, 20, fixed=False)
        t0 = time.perf_counter()
        sol = solve_instance(inst, loose())
        tf = time.perf_counter() - t0
        t0 = time.perf_counter()
        lp = lp_optimum(inst)
        tl = time.perf_counter() - t0
        print(
            f"lp: seed {seed}: flow {sol.no_fixed_objective:,.6f} ({tf:.2f} s) vs HiGHS LP "
            f"{lp:,.6f} ({tl:.2f} s); rel diff {abs(sol.no_fixed_objective - lp) / lp:.1e}"
        )


def run_truth(args: argparse.Namespace) -> None:
    """The generator's true demand in place of forecasts."""
    import dataclasses
    import datetime as dt

    import polars as pl

    from stocktailor.contract import FORECAST_SCHEMA
    from stocktailor.synth import generate
    from stocktailor.transfers import build_instance, with_daily_demand

    sys.path.insert(0, "tests")
    from _transfer_cases import loose, lp_optimum

    for scenario in args.scenarios:
        net = generate(scenario, args.seed)
        tb, tr = net.tables, net.truth
        empty = pl.DataFrame(schema=FORECAST_SCHEMA)
        base = build_instance(tb, net.as_of, empty, Settings())
        rates = tr.expected_demand(
            net.as_of + dt.timedelta(days=1), tb.products["season_end"].max()
        )
        inst = with_daily_demand(base, rates, tr.store_ids, tr.skus, tr.dispersion)
        print(
            f"truth: {scenario} seed {args.seed}: {inst.n_stores} stores x {inst.n_skus} "
            f"SKU-sizes with movable stock"
        )
        # no fixed costs: flow optimum vs an independent HiGHS LP (all pairs, all units)
        cols = np.arange(min(args.lp_skus, inst.n_skus))
        sub = dataclasses.replace(
            inst.take_skus(cols),
            fixed_cost=np.zeros_like(inst.fixed_cost),
            eligible=None,
            headroom=None,
            style_color=None,
            core_size=None,
        )
        t0 = time.perf_counter()
        flow = solve_instance(sub, loose()).no_fixed_objective
        tf = time.perf_counter() - t0
        t0 = time.perf_counter()
        lp = lp_optimum(sub)
        tl = time.perf_counter() - t0
        print(
            f"  no fixed costs, {len(cols)} SKUs: flow {flow:,.4f} ({tf:.1f} s) vs HiGHS LP "
            f"{lp:,.4f} ({tl:.1f} s); rel diff {abs(flow - lp) / max(lp, 1e-9):.1e}"
        )
        compare_mip(inst, args.time_limit, relaxed=True)


def score_under(truth_inst: TransferInstance, plan_inst: TransferInstance, lines: object) -> float:
    """Expected season profit gained by ``lines`` (of ``plan_inst``) under ``truth_inst``'s
    demand, after unit and shipment costs, currency (0 = no moves): the plan's exact value
    (:func:`stocktailor.transfers.plan_value`), warehouse lines included."""
    from stocktailor.transfers import LineSet, plan_value

    assert isinstance(lines, LineSet)
    if len(lines) == 0:
        return 0.0
    spos = {s: i for i, s in enumerate(truth_inst.store_ids)}
    kpos = {k: i for i, k in enumerate(truth_inst.skus)}
    mapped = LineSet(
        np.array([kpos[plan_inst.skus[k]] for k in lines.sku], dtype=np.int64),
        np.array([spos[plan_inst.store_ids[i]] for i in lines.src], dtype=np.int64),
        np.array([spos[plan_inst.store_ids[j]] for j in lines.dst], dtype=np.int64),
        lines.units,
    )
    return plan_value(truth_inst, mapped)


def truth_plan_instance(net: Any, tables: Any, settings: Settings) -> TransferInstance:
    """The joint instance of a generated network with its true demand (at the network's
    declared prices, markdowns and promotions, when it declares them)."""
    import datetime as dt

    import polars as pl

    from stocktailor.contract import FORECAST_SCHEMA
    from stocktailor.transfers import build_instance, with_daily_demand

    base = build_instance(tables, net.as_of, pl.DataFrame(schema=FORECAST_SCHEMA), settings)
    start = net.as_of + dt.timedelta(days=1)
    end = tables.products["season_end"].max() if "season_end" in tables.products.columns else None
    end = end or getattr(net, "season_end", None)
    pf = net.price_factor(start, end) if hasattr(net, "price_factor") else None
    rates = net.truth.expected_demand(start, end, price_factor=pf)
    return with_daily_demand(base, rates, net.truth.store_ids, net.truth.skus, net.truth.dispersion)


def frame_lines(inst: TransferInstance, frames: list[Any]) -> tuple[Any, int]:
    """Plan lines (``sku, from_id, to_id, units`` frames) in ``inst``'s index space, and how
    many could not be mapped (a SKU without stock to move in ``inst``)."""
    from stocktailor.transfers import LineSet

    sp = {s: i for i, s in enumerate(inst.store_ids)}
    kp = {k: i for i, k in enumerate(inst.skus)}
    rows = [
        (kp.get(k), sp.get(a), sp.get(b), int(u))
        for f in frames
        if f is not None and f.height
        for k, a, b, u in f.select("sku", "from_id", "to_id", "units").iter_rows()
    ]
    ok = [r for r in rows if None not in r[:3]]
    if not ok:
        return LineSet.empty(), len(rows)
    arr = np.array(ok, dtype=np.int64)
    return LineSet(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]), len(rows) - len(ok)


def run_uplift(args: argparse.Namespace) -> None:
    """The product's joint plan (ingest + run_plan, default settings) scored under the
    generator's true demand, against the same optimiser fed the true demand."""
    import tempfile
    from pathlib import Path

    from stocktailor import read_data_folder, run_plan
    from stocktailor.synth import generate

    s = Settings(solver=SolverConfig(lp_bound=False))
    for scenario in args.scenarios:
        caps: list[float] = []
        for seed in args.seeds:
            net = generate(scenario, seed)
            with tempfile.TemporaryDirectory() as tmp:
                net.write(tmp)
                tables = read_data_folder(Path(tmp), settings=s)
            t0 = time.perf_counter()
            st = s
            if getattr(net, "open_ended", False):
                # no season_end in the data: the truth's window is the horizon both plans are
                # scored on (an empty forecast would otherwise end it at the as-of date)
                st = s.model_copy(
                    update={"season": s.season.model_copy(update={"end": net.season_end})}
                )
            truth = truth_plan_instance(net, tables, st)
            best = solve_instance(truth, st, method="heuristic")
            t_true = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = run_plan(tables, net.as_of, s)
            t_plan = time.perf_counter() - t0
            up_true = score_under(truth, truth, best.lines)
            lines, unmapped = frame_lines(truth, [result.allocation, result.transfers])
            alloc, _ = frame_lines(truth, [result.allocation])
            up = score_under(truth, truth, lines)
            up_alloc = score_under(truth, truth, alloc)
            true_tr = ~truth.is_warehouse[best.lines.src]
            prod_tr = ~truth.is_warehouse[lines.src]
            cap = up / up_true if up_true > 0 else float("nan")
            caps.append(cap)
            u_tw, u_ts = int(best.lines.units[~true_tr].sum()), int(best.lines.units[true_tr].sum())
            print(
                f"uplift: {scenario} seed {seed}: true-demand plan {up_true:,.0f} "
                f"({u_tw} + {u_ts} units warehouse + stores, {t_true:.1f} s); "
                f"product plan {up:,.0f} "
                f"({int(lines.units[~prod_tr].sum())} + {int(lines.units[prod_tr].sum())} units, "
                f"it expected {result.kpis.get('plan_objective', float('nan')):,.0f}; "
                f"{t_plan:.1f} s with the forecast); captures {cap:.1%}; "
                f"its transfers add {up - up_alloc:,.0f} on top of its allocation"
                + (f"; {unmapped} lines unmapped" if unmapped else "")
                + ("; LOSES MONEY" if up < 0 else ""),
                flush=True,
            )
        ok = [c for c in caps if np.isfinite(c)]
        if ok:
            print(f"uplift: {scenario}: mean {np.mean(ok):.1%}, min {np.min(ok):.1%}", flush=True)


def demo_checks(allocation: Any, transfers: Any, objective: float) -> dict[str, Any]:
    """Issue 13's demo figures for one plan: (sku, store) pairs both allocated and shipping the
    SKU, pairs fed by the warehouse and by a store (and whether their lines account for it:
    ``to_inbound_units`` equals the units of all their lines and each line's reason says what
    the store receives in the plan), and the sum of the lines' net benefit vs the objective."""
    import polars as pl

    alloc_to = set(zip(allocation["sku"], allocation["to_id"], strict=True))
    ships = set(zip(transfers["sku"], transfers["from_id"], strict=True))
    receives = set(zip(transfers["sku"], transfers["to_id"], strict=True))
    both = alloc_to & receives
    cols = ["sku", "to_id", "units", "to_inbound_units", "reason"]
    lines = pl.concat([allocation.select(cols), transfers.select(cols)])
    pairs = pl.DataFrame(list(both), schema={"sku": pl.String, "to_id": pl.String}, orient="row")
    fed = lines.join(pairs, on=["sku", "to_id"], how="semi")
    per = fed.group_by("sku", "to_id").agg(
        pl.col("units").sum(),
        pl.col("to_inbound_units").min().alias("lo"),
        pl.col("to_inbound_units").max().alias("hi"),
        pl.col("reason").str.contains("receives").all().alias("said"),
    )
    accounted = per.filter(
        (pl.col("units") == pl.col("lo")) & (pl.col("lo") == pl.col("hi")) & pl.col("said")
    ).height
    total = float(allocation["net_benefit"].sum() + transfers["net_benefit"].sum())
    return {
        "allocation_lines": allocation.height,
        "transfer_lines": transfers.height,
        "allocated_and_shipping": len(alloc_to & ships),
        "receiving_and_shipping": len(receives & ships),
        "double_fed": len(both),
        "double_fed_accounted": accounted,
        "lines_sum": total,
        "objective": objective,
        "rel_gap": abs(total - objective) / max(abs(objective), 1e-9),
    }


def run_demo(args: argparse.Namespace) -> None:
    """run_plan (default settings, the product's own forecast) on generated networks and the
    demo checks of issue 13 on its allocation and transfers."""
    import tempfile
    from pathlib import Path

    from stocktailor import read_data_folder, run_plan
    from stocktailor.synth import generate

    s = Settings()
    for seed in args.seeds:
        net = generate(args.scenario, seed)
        with tempfile.TemporaryDirectory() as tmp:
            net.write(tmp)
            tables = read_data_folder(Path(tmp), settings=s)
        t0 = time.perf_counter()
        result = run_plan(tables, net.as_of, s)
        obj = float(result.kpis.get("plan_objective", float("nan")))
        c = demo_checks(result.allocation, result.transfers, obj)
        ok = (
            c["allocated_and_shipping"] == 0
            and c["double_fed"] == c["double_fed_accounted"]
            and c["rel_gap"] <= 0.01
        )
        print(
            f"demo: {args.scenario} seed {seed}: {c['allocation_lines']} allocation + "
            f"{c['transfer_lines']} transfer lines; (sku, store) allocated and shipping "
            f"{c['allocated_and_shipping']}, receiving and shipping {c['receiving_and_shipping']}; "
            f"fed by warehouse and store {c['double_fed']} (lines account for it: "
            f"{c['double_fed_accounted']}); line P&L sum {c['lines_sum']:,.0f} vs objective "
            f"{c['objective']:,.0f} (gap {c['rel_gap']:.2%}); {time.perf_counter() - t0:.0f} s "
            f"[{'PASS' if ok else 'MISS'}]",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("scale")
    a.add_argument("--stores", type=int, default=1000)
    a.add_argument("--skus", type=int, default=20000)
    a.add_argument("--workers", type=int, default=2)
    a.add_argument("--partners", type=int, default=None)
    a.add_argument("--no-bound", action="store_true")
    a.add_argument(
        "--warehouse-share",
        type=float,
        default=0.0,
        help="share of the buy at one warehouse (the joint plan); 0 = stores only",
    )
    b = sub.add_parser("mip")
    b.add_argument("--stores", type=int, nargs="+", default=[50, 200])
    b.add_argument("--skus", type=int, default=300)
    b.add_argument("--time-limit", type=float, default=60.0)
    b.add_argument("--relaxed", action="store_true")
    b.add_argument("--warm", action="store_true", help="old comparison: MIP started from our plan")
    b.add_argument("--all-lanes", action="store_true", help="also the MIP on all candidate lanes")
    b.add_argument("--scenarios", nargs="*", default=[], help="e.g. default seed-stories")
    b.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("lp")
    c.add_argument("--seeds", type=int, default=3)
    d = sub.add_parser("truth")
    d.add_argument("--scenarios", nargs="+", default=["seed-stories", "default"])
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--lp-skus", type=int, default=30)
    d.add_argument("--time-limit", type=float, default=60.0)
    e = sub.add_parser("uplift")
    e.add_argument(
        "--scenarios", nargs="+", default=["seed-stories", "default"], help="or foreign-* names"
    )
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    f = sub.add_parser("demo")
    f.add_argument("--scenario", default="default")
    f.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    args = p.parse_args()
    {
        "scale": run_scale,
        "mip": run_mip,
        "lp": run_lp,
        "truth": run_truth,
        "uplift": run_uplift,
        "demo": run_demo,
    }[args.cmd](args)


if __name__ == "__main__":
    _ = ConstraintsConfig
    main()
