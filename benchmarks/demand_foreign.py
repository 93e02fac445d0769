"""Foreign-scenario benchmark: the product on networks it was not designed around.

For every foreign scenario and seed: write the network to a data folder, read it back through
the contract and run the plan with default settings, as a new user would (``ingest``, then
``rebalance``: clusters, forecast, size curves, allocation, transfers). Then score

- remaining-horizon WAPE per store x SKU against the TRUE expected demand at the network's
  declared prices (as-of date + 1 to the season end, or the simulated window's end), for the
  product's forecast, each of its candidates (when the forecaster exposes ``validation_``), the
  28-day sales velocity x days left, seasonal naive (last 7 days repeated), AutoETS on weekly
  sales (statsforecast) and the 4-week mean;
- total bias (forecast / true total) and p10-p90 coverage of realised weekly demand (one draw
  of the truth's own noise, uncensored);
- the seed stories where they apply (trench into Los Angeles / out of Seattle, wool into
  Seattle, trench forecast vs truth in Seattle);
- transfers: the uplift of the product's plan (its transfers and its warehouse allocation)
  under the true demand, as a share of the uplift of the same optimiser fed the true demand
  (``benchmarks/transfers.py``'s ``score_under`` scores both; lines the instance cannot hold,
  e.g. warehouse lines when the optimiser plans stores only, are counted as unscored), and
  whether the product's plan loses money against no moves.

Settings are never chosen here: tune on seeds 0-4, report seeds 10-14.

Usage::

    python benchmarks/demand_foreign.py --scenario foreign-base --seeds 0 1 2 3 4
    python benchmarks/demand_foreign.py --all --seeds 10 11 12 13 14 --out foreign.csv
    (--no-transfers skips the uplift; --no-ets skips AutoETS; --candidates also scores each
    candidate of the selecting forecaster alone)
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import logging
import math
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.synth import FOREIGN_SCENARIOS, SyntheticNetwork, generate

sys.path.insert(0, str(Path(__file__).resolve().parent))

FloatArray = np.ndarray


# ------------------------------------------------------------------------------------ truth


@dataclass
class Horizon:
    """The remaining horizon of a network and its true demand."""

    start: dt.date
    end: dt.date
    rates: FloatArray  # (days, stores, skus) true mean units/day at the declared prices
    store_ids: list[str]
    skus: list[str]

    @property
    def days(self) -> int:
        return int(self.rates.shape[0])

    @property
    def totals(self) -> FloatArray:
        out: FloatArray = self.rates.sum(axis=0)
        return out


def horizon(net: SyntheticNetwork) -> Horizon:
    start = net.as_of + dt.timedelta(days=1)
    end = net.season_end
    rates = net.truth.expected_demand(start, end, price_factor=net.price_factor(start, end))
    return Horizon(start, end, rates, list(net.truth.store_ids), list(net.truth.skus))


def realised(net: SyntheticNetwork, h: Horizon, seed: int) -> FloatArray:
    """One draw of daily demand over the horizon (uncensored), (days, stores, skus)."""
    rng = np.random.default_rng([seed, 7919])
    out: FloatArray = np.stack([net.truth.sample_demand(h.rates[d], rng) for d in range(h.days)])
    return out


# ------------------------------------------------------------------------- forecast arrays


@dataclass
class Weekly:
    """A forecast spread over the horizon's days and its weekly quantiles."""

    daily: FloatArray  # (days, stores, skus) mean units/day
    weeks: list[tuple[int, FloatArray, FloatArray]] = field(default_factory=list)
    # (first day index, p10 (S, K), p90 (S, K)) for forecast weeks inside the horizon


def from_forecast(fc: pl.DataFrame, h: Horizon) -> Weekly:
    """Spread weekly forecast rows (``store_id, sku, week_start, mean[, p10, p90]``) evenly
    over their 7 days; keep the quantiles of weeks that lie inside the horizon."""
    si = {s: i for i, s in enumerate(h.store_ids)}
    ki = {k: i for i, k in enumerate(h.skus)}
    daily = np.zeros_like(h.rates)
    f = fc.filter(pl.col("store_id").is_in(h.store_ids), pl.col("sku").is_in(h.skus))
    s = np.array([si[x] for x in f["store_id"]], dtype=np.int64)
    k = np.array([ki[x] for x in f["sku"]], dtype=np.int64)
    t0 = f.select((pl.col("week_start") - h.start).dt.total_days())["week_start"].to_numpy()
    mean = f["mean"].to_numpy().astype(np.float64)
    for d in range(7):
        t = t0 + d
        ok = (t >= 0) & (t < h.days)
        np.add.at(daily, (t[ok], s[ok], k[ok]), mean[ok] / 7.0)
    out = Weekly(daily)
    if {"p10", "p90"} <= set(f.columns):
        for w0 in sorted(set(t0.tolist())):
            if w0 < 0 or w0 + 7 > h.days:
                continue
            m = t0 == w0
            p10 = np.zeros(h.totals.shape)
            p90 = np.zeros(h.totals.shape)
            p10[s[m], k[m]] = f["p10"].to_numpy()[m]
            p90[s[m], k[m]] = f["p90"].to_numpy()[m]
            out.weeks.append((int(w0), p10, p90))
    return out


def wape(totals: FloatArray, truth: FloatArray) -> float:
    return float(np.abs(totals - truth).sum() / max(truth.sum(), 1e-9))


def coverage(w: Weekly, real: FloatArray, truth_totals: FloatArray) -> float:
    """Share of (ranged store x SKU, week) cells whose realised demand is inside p10..p90."""
    if not w.weeks:
        return math.nan
    ranged = truth_totals > 0
    hit = n = 0
    for w0, p10, p90 in w.weeks:
        r = real[w0 : w0 + 7].sum(axis=0)
        inside = (r >= p10 - 1e-9) & (r <= p90 + 1e-9)
        hit += int(inside[ranged].sum())
        n += int(ranged.sum())
    return hit / n if n else math.nan


# ------------------------------------------------------------------------------ baselines


def _daily_sales(tables: Any, h: Horizon, as_of: dt.date, days: int) -> FloatArray:
    """(days, stores, skus) net units sold on the ``days`` days ending at ``as_of``."""
    first = as_of - dt.timedelta(days=days - 1)
    s = tables.sales.filter(
        pl.col("date") >= first,
        pl.col("date") <= as_of,
        pl.col("store_id").is_in(h.store_ids),
        pl.col("sku").is_in(h.skus),
    )
    si = {x: i for i, x in enumerate(h.store_ids)}
    ki = {x: i for i, x in enumerate(h.skus)}
    out = np.zeros((days, len(h.store_ids), len(h.skus)))
    t = s.select((pl.col("date") - first).dt.total_days())["date"].to_numpy()
    np.add.at(
        out,
        (t, [si[x] for x in s["store_id"]], [ki[x] for x in s["sku"]]),
        s["units"].to_numpy().astype(np.float64),
    )
    return out


def baselines(tables: Any, as_of: dt.date, h: Horizon, *, ets: bool) -> dict[str, FloatArray]:
    """Remaining-horizon totals (stores, skus) of the simple baselines (see module doc)."""
    hist_days = (as_of - tables.sales["date"].min()).days + 1
    daily = _daily_sales(tables, h, as_of, hist_days)
    out: dict[str, FloatArray] = {}
    last28 = np.clip(daily[-28:].sum(axis=0), 0.0, None)
    out["velocity_28d"] = last28 / min(28, hist_days) * h.days
    out["seasonal_naive"] = np.clip(daily[-7:].sum(axis=0), 0.0, None) * h.days / 7.0
    n_weeks = hist_days // 7
    weekly = daily[hist_days - 7 * n_weeks :].reshape(n_weeks, 7, *daily.shape[1:]).sum(axis=1)
    weekly = np.clip(weekly, 0.0, None)
    out["mean_4w"] = weekly[-4:].mean(axis=0) * h.days / 7.0
    if ets:
        out["auto_ets"] = _auto_ets(weekly, h.days)
    return out


def _auto_ets(weekly: FloatArray, days: int) -> FloatArray:
    """AutoETS (statsforecast, non-seasonal) on each pair's weekly sales; zero-sale pairs 0."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    n_w, n_s, n_k = weekly.shape
    y = weekly.reshape(n_w, -1)
    live = np.flatnonzero(y.sum(axis=0) > 0)
    h = max(1, math.ceil(days / 7))
    out = np.zeros(n_s * n_k)
    if live.size == 0 or n_w < 3:
        return out.reshape(n_s, n_k)
    import pandas as pd

    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(live, n_w),
            "ds": np.tile(np.arange(n_w), live.size),
            "y": y[:, live].T.ravel(),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf = StatsForecast(models=[AutoETS(season_length=1)], freq=1, n_jobs=1)
        fc = sf.forecast(df=frame, h=h)
    fc = fc.sort_values(["unique_id", "ds"])
    vals = np.clip(fc["AutoETS"].to_numpy().reshape(live.size, h), 0.0, None)
    weights = np.minimum(1.0, np.maximum(0.0, days / 7.0 - np.arange(h)))
    out[live] = vals @ weights
    return out.reshape(n_s, n_k)


# ------------------------------------------------------------------------------- product


@dataclass
class ProductRun:
    forecast: pl.DataFrame | None = None
    transfers: pl.DataFrame | None = None
    validation: pl.DataFrame | None = None
    candidates: dict[str, pl.DataFrame] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    tables: Any = None
    clusters: pl.DataFrame | None = None


def product_run(net: SyntheticNetwork, settings: Settings) -> ProductRun:
    """ingest + rebalance with default settings, through the public API."""
    from stocktailor import read_data_folder, run_plan

    run = ProductRun()
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            net.write(tmp)
            tables = read_data_folder(Path(tmp), settings=settings)
        run.tables = tables
        result = run_plan(tables, net.as_of, settings)
        run.forecast = result.forecast
        run.clusters = result.clusters
        run.transfers = _moves(result)
        run.validation, run.candidates = _validation(result)
    except Exception as exc:  # the benchmark reports a crash as a result
        run.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        logging.getLogger(__name__).debug("product run failed", exc_info=True)
        traceback.print_exc(limit=3, file=sys.stderr)
    run.seconds = time.perf_counter() - t0
    return run


def _moves(result: Any) -> pl.DataFrame:
    """The plan's moves: transfers and the warehouse allocation (a joint plan ships both)."""
    cols = ["sku", "from_id", "to_id", "units"]
    frames = [
        f.select(cols).with_columns(pl.col("units").cast(pl.Int64))
        for f in (getattr(result, "allocation", None), result.transfers)
        if isinstance(f, pl.DataFrame) and f.height
    ]
    if not frames:
        return pl.DataFrame(
            schema={"sku": pl.String, "from_id": pl.String, "to_id": pl.String, "units": pl.Int64}
        )
    return pl.concat(frames)


def _validation(result: Any) -> tuple[pl.DataFrame | None, dict[str, pl.DataFrame]]:
    """The forecaster's ``validation_`` table and per-candidate forecasts, when exposed."""
    val = getattr(result, "validation", None)
    cands: dict[str, pl.DataFrame] = {}
    holders = (result, getattr(result, "model", None), getattr(result, "forecaster", None))
    for holder in holders:
        if holder is None:
            continue
        if val is None:
            val = getattr(holder, "validation_", None)
        for name in ("candidate_forecasts", "candidate_forecasts_"):
            found = getattr(holder, name, None)
            if not cands and isinstance(found, dict):
                cands = dict(found)
    return (val if isinstance(val, pl.DataFrame) else None), cands


def candidate_forecasts(
    tables: Any, as_of: dt.date, settings: Settings, clusters: pl.DataFrame | None
) -> tuple[pl.DataFrame | None, dict[str, pl.DataFrame]]:
    """The selecting forecaster's validation table and, per candidate it validated, that
    candidate's own forecast from the same fit (uncalibrated). Empty when the product has no
    selecting forecaster."""
    try:
        from stocktailor.demand import forecast
        from stocktailor.demand.forecaster import DemandForecaster
        from stocktailor.plan import forecast_prices
    except ImportError:
        return None, {}
    f = DemandForecaster.from_config(settings.demand, horizon_weeks=settings.season.horizon_weeks)
    forecast(tables, as_of, settings, clusters, model=f)
    val = getattr(f, "validation_", None)
    if not isinstance(val, pl.DataFrame):
        return None, {}
    # Every validated candidate's own forecast from the same fit (uncalibrated: level factor
    # 1, the chosen groups' spread), see DemandForecaster.candidate_forecasts.
    plan = forecast_prices(tables, as_of, settings)
    out = f.candidate_forecasts(price_plan=plan)
    return val, out


# ------------------------------------------------------------------------------ transfers


def uplift(
    net: SyntheticNetwork, tables: Any, product: pl.DataFrame | None, s: Settings
) -> dict[str, Any]:
    """Expected profit of the product's moves and of the same optimiser fed the true demand,
    both under the true demand (currency, 0 = no moves): ``benchmarks/transfers.py``'s
    ``truth_plan_instance``, ``frame_lines`` and ``score_under``."""
    from stocktailor.transfers import plan_transfers_from_arrays
    from transfers import frame_lines, score_under, truth_plan_instance

    if net.open_ended:
        # products without a season_end: the truth's window is the horizon both plans are
        # scored on (an empty forecast would otherwise end it at the as-of date)
        s = s.model_copy(update={"season": s.season.model_copy(update={"end": net.season_end})})
    truth = truth_plan_instance(net, tables, s)
    true_frame, best = plan_transfers_from_arrays(
        truth, net.as_of, s, products=tables.products, stores=tables.stores
    )
    up_true = score_under(truth, truth, best.lines)
    lines, dropped = frame_lines(truth, [product])
    up_fc = score_under(truth, truth, lines)
    return {
        "uplift_true": up_true,
        "uplift_product": up_fc,
        "capture": up_fc / up_true if up_true > 0 else math.nan,
        "loses_money": up_fc < -1e-6,
        "units_true": int(best.lines.units.sum()),
        "units_product": int(lines.units.sum()),
        "lines_unscored": dropped,
        "true_plan": true_frame,
    }


# -------------------------------------------------------------------------------- stories


def _cells(net: SyntheticNetwork, h: Horizon, city: str, style: str) -> tuple[list[int], list[int]]:
    st = net.tables.stores
    ids = st.filter(pl.col("city") == city, pl.col("kind") == "store")["store_id"].to_list()
    skus = net.tables.products.filter(pl.col("style_name") == style)["sku"].to_list()
    return [h.store_ids.index(x) for x in ids], [h.skus.index(k) for k in skus]


def _net_in(net: SyntheticNetwork, plan: pl.DataFrame | None, city: str, style: str) -> int:
    if plan is None or plan.height == 0:
        return 0
    ids = set(net.tables.stores.filter(pl.col("city") == city)["store_id"].to_list())
    skus = set(net.tables.products.filter(pl.col("style_name") == style)["sku"].to_list())
    p = plan.filter(pl.col("sku").is_in(list(skus)))
    inn = p.filter(pl.col("to_id").is_in(list(ids)))["units"].sum()
    out = p.filter(pl.col("from_id").is_in(list(ids)))["units"].sum()
    return int(inn or 0) - int(out or 0)


def stories(
    net: SyntheticNetwork,
    h: Horizon,
    product: FloatArray | None,
    plans: dict[str, pl.DataFrame | None],
) -> dict[str, Any]:
    """Seed-story figures where the network has the stores and styles (else empty)."""
    cities = set(net.tables.stores["city"].to_list())
    names = set(net.tables.products["style_name"].to_list())
    trench, wool = "Classic Trench Coat", "Wool Overcoat"
    if not ({"Seattle", "Los Angeles"} <= cities and {trench, wool} <= names):
        return {}
    out: dict[str, Any] = {}
    s, k = _cells(net, h, "Seattle", trench)
    out["trench_seattle_truth"] = float(h.totals[np.ix_(s, k)].sum())
    if product is not None:
        out["trench_seattle_forecast"] = float(product[np.ix_(s, k)].sum())
    moves = {}
    for name, plan in plans.items():
        la = _net_in(net, plan, "Los Angeles", trench)
        sea = _net_in(net, plan, "Seattle", trench)
        wool_sea = _net_in(net, plan, "Seattle", wool)
        moves[name] = (la, sea, wool_sea)
        out[f"story_{name}"] = (
            f"LA trench {la:+d}, Seattle trench {sea:+d}, Seattle wool {wool_sea:+d}"
        )
        # the rule: LA keeps or gains trench, Seattle does not gain it, wool not out
        out[f"story_{name}_ok"] = la >= 0 and sea <= 0 and wool_sea >= 0
    if "true" in moves:
        # no move against the direction the true-demand plan takes
        out["story_agrees_with_true"] = all(
            a * b >= 0 for a, b in zip(moves["product"], moves["true"], strict=True)
        )
    return out


# -------------------------------------------------------------------------------- one run


def run_one(scenario: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    if args.candidates:
        # Output only (the chosen forecast is unchanged): every validated candidate's own
        # forecast from the product's fit, PlanResult.candidate_forecasts.
        settings = settings.model_copy(
            update={"demand": settings.demand.model_copy(update={"keep_candidate_forecasts": True})}
        )
    t0 = time.perf_counter()
    net = generate(scenario, seed)
    h = horizon(net)
    truth = h.totals
    row: dict[str, Any] = {
        "scenario": scenario,
        "seed": seed,
        "stores": len(h.store_ids),
        "skus": len(h.skus),
        "horizon_days": h.days,
        "true_total": float(truth.sum()),
    }
    run = product_run(net, settings)
    row["product_seconds"] = run.seconds
    row["product_error"] = run.error
    tables = run.tables if run.tables is not None else net.tables
    product_totals = None
    if run.forecast is not None:
        w = from_forecast(run.forecast, h)
        product_totals = w.daily.sum(axis=0)
        row["product_wape"] = wape(product_totals, truth)
        row["product_bias"] = float(product_totals.sum() / max(truth.sum(), 1e-9))
        row["product_coverage"] = coverage(w, realised(net, h, seed), truth)
    if args.candidates and run.error == "" and not run.candidates:
        try:
            val, run.candidates = candidate_forecasts(tables, net.as_of, settings, run.clusters)
            run.validation = run.validation if run.validation is not None else val
        except Exception as exc:
            row["candidates_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            traceback.print_exc(limit=3, file=sys.stderr)
    for name, fc in run.candidates.items():
        row[f"cand_{name}_wape"] = wape(from_forecast(fc, h).daily.sum(axis=0), truth)
    if run.validation is not None:
        row["validation_chosen"] = ";".join(
            sorted(set(run.validation.filter(pl.col("chosen"))["candidate"].cast(pl.String)))
        )
    for name, tot in baselines(tables, net.as_of, h, ets=not args.no_ets).items():
        row[f"{name}_wape"] = wape(tot, truth)
        row[f"{name}_bias"] = float(tot.sum() / max(truth.sum(), 1e-9))
    plans: dict[str, pl.DataFrame | None] = {"product": run.transfers}
    if not args.no_transfers:
        try:
            up = uplift(net, tables, run.transfers if not run.error else None, settings)
            plans["true"] = up.pop("true_plan")
            row.update(up)
        except Exception as exc:
            row["uplift_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            traceback.print_exc(limit=3, file=sys.stderr)
    row.update(stories(net, h, product_totals, plans))
    row["seconds"] = time.perf_counter() - t0
    return row


# ------------------------------------------------------------------------------- reporting

_COLUMNS = (
    ("product_wape", "WAPE", "{:.3f}"),
    ("velocity_28d_wape", "velocity", "{:.3f}"),
    ("seasonal_naive_wape", "s-naive", "{:.3f}"),
    ("auto_ets_wape", "AutoETS", "{:.3f}"),
    ("mean_4w_wape", "4w mean", "{:.3f}"),
    ("product_bias", "bias", "{:.2f}"),
    ("product_coverage", "p10-p90", "{:.2f}"),
    ("capture", "capture", "{:.2f}"),
    ("uplift_product", "uplift", "{:,.0f}"),
    ("uplift_true", "true upl.", "{:,.0f}"),
)


def _fmt(row: dict[str, Any], key: str, spec: str) -> str:
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return spec.format(v)


def markdown(rows: list[dict[str, Any]]) -> str:
    """One markdown table: a row per scenario x seed and a mean row per scenario."""
    head = ["scenario", "seed", *(c[1] for c in _COLUMNS), "best candidate", "stories", "error"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scen in dict.fromkeys(r["scenario"] for r in rows):
        group = [r for r in rows if r["scenario"] == scen]
        for r in [*group, _mean_row(group)]:
            cands = {
                k[5:-5]: v for k, v in r.items() if k.startswith("cand_") and k.endswith("_wape")
            }
            best = min(cands.items(), key=lambda kv: kv[1]) if cands else None
            story = r.get("story_product", "")
            if story:
                story += " (rule ok" if r.get("story_product_ok") else " (rule fails"
                if "story_agrees_with_true" in r:
                    agree = r["story_agrees_with_true"]
                    story += "; agrees with true plan" if agree else "; against true plan"
                story += f"; true plan: {r.get('story_true', '-')})"
            cells = [
                r["scenario"] if r["seed"] != "mean" else f"**{r['scenario']}**",
                str(r["seed"]),
                *(_fmt(r, k, f) for k, _, f in _COLUMNS),
                f"{best[0]} {best[1]:.3f}" if best else "-",
                story,
                (r.get("product_error") or r.get("uplift_error") or "")[:80],
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_row(group: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"scenario": group[0]["scenario"], "seed": "mean"}
    keys = {k for r in group for k, v in r.items() if isinstance(v, float | int)} - {"seed"}
    for k in keys:
        vals = [float(r[k]) for r in group if isinstance(r.get(k), float | int)]
        vals = [v for v in vals if not math.isnan(v)]
        if vals and not isinstance(group[0].get(k), bool):
            out[k] = float(np.mean(vals))
    n_loss = sum(bool(r.get("loses_money")) for r in group)
    out["product_error"] = f"{n_loss} of {len(group)} plans lose money" if n_loss else ""
    errs = sum(bool(r.get("product_error")) for r in group)
    if errs:
        out["product_error"] = f"{errs} of {len(group)} runs failed " + out["product_error"]
    return out


def _rng_of(group: list[dict[str, Any]], key: str, spec: str = "{:.2f}") -> str:
    vals = [float(r[key]) for r in group if isinstance(r.get(key), float | int)]
    vals = [v for v in vals if not math.isnan(v)]
    if not vals:
        return "-"
    mean = spec.format(float(np.mean(vals)))
    return f"{mean} ({spec.format(min(vals))}-{spec.format(max(vals))})"


def summary_markdown(rows: list[dict[str, Any]]) -> str:
    """One row per scenario: means (min-max over the seeds) and the acceptance checks."""
    head = [
        "scenario",
        "seeds",
        "WAPE",
        "velocity",
        "s-naive",
        "AutoETS",
        "4w mean",
        "bias",
        "p10-p90",
        "capture",
        "plans losing money",
        "runs failed",
        "stories (rule / agrees)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scen in dict.fromkeys(r["scenario"] for r in rows):
        g = [r for r in rows if r["scenario"] == scen]
        st = [r for r in g if "story_product_ok" in r]
        stories = "-"
        if st:
            ok = sum(bool(r["story_product_ok"]) for r in st)
            agree = sum(bool(r.get("story_agrees_with_true")) for r in st)
            stories = f"{ok} / {agree} of {len(st)}"
        lines.append(
            "| "
            + " | ".join(
                [
                    scen,
                    ",".join(str(r["seed"]) for r in g),
                    _rng_of(g, "product_wape", "{:.3f}"),
                    _rng_of(g, "velocity_28d_wape", "{:.3f}"),
                    _rng_of(g, "seasonal_naive_wape", "{:.3f}"),
                    _rng_of(g, "auto_ets_wape", "{:.3f}"),
                    _rng_of(g, "mean_4w_wape", "{:.3f}"),
                    _rng_of(g, "product_bias"),
                    _rng_of(g, "product_coverage"),
                    _rng_of(g, "capture"),
                    str(sum(bool(r.get("loses_money")) for r in g)),
                    str(sum(bool(r.get("product_error")) for r in g)),
                    stories,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def acceptance(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's acceptance checks, per scenario (means over the seeds run)."""
    out = []
    for scen in dict.fromkeys(r["scenario"] for r in rows):
        m = _mean_row([r for r in rows if r["scenario"] == scen])
        checks = {
            "WAPE <= 0.67 x velocity": m.get("product_wape", math.inf)
            <= 0.67 * m.get("velocity_28d_wape", 0.0),
            "bias within +-10%": abs(m.get("product_bias", math.inf) - 1.0) <= 0.10,
            "p10-p90 coverage 70-90%": 0.7 <= m.get("product_coverage", 0.0) <= 0.9,
            "capture >= 0.85": m.get("capture", 0.0) >= 0.85,
            "no plan loses money": not any(
                r.get("loses_money") for r in rows if r["scenario"] == scen
            ),
        }
        failed = [k for k, ok in checks.items() if not ok]
        out.append(f"{scen}: " + ("all pass" if not failed else "FAILS " + "; ".join(failed)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", nargs="+", default=[], help="foreign scenario names")
    p.add_argument("--all", action="store_true", help="every foreign scenario")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", type=Path, default=None, help="CSV of every figure")
    p.add_argument("--no-transfers", action="store_true")
    p.add_argument("--no-ets", action="store_true")
    p.add_argument(
        "--candidates",
        action="store_true",
        help="also forecast with each validated candidate alone (one forecast per candidate)",
    )
    args = p.parse_args()
    scenarios = list(FOREIGN_SCENARIOS) if args.all else args.scenario
    if not scenarios:
        p.error("give --scenario NAME [...] or --all")
    logging.basicConfig(level=logging.WARNING)
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        for seed in args.seeds:
            row = run_one(scenario, seed, args)
            rows.append(row)
            shown = ", ".join(f"{lbl} {_fmt(row, k, f)}" for k, lbl, f in _COLUMNS)
            print(f"{scenario} seed {seed}: {shown}; {row['seconds']:.0f} s", flush=True)
            if row.get("product_error"):
                print(f"  product error: {row['product_error']}", flush=True)
            for key in ("story_product", "story_true", "trench_seattle_forecast"):
                if key in row:
                    print(f"  {key}: {row[key]}", flush=True)
            if args.out is not None:
                _write_csv(args.out, rows)
    print()
    print(summary_markdown(rows))
    print()
    print(markdown(rows))
    print()
    print("\n".join(acceptance(rows)))


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow(r)


if __name__ == "__main__":
    main()
