"""A solved plan as allocation.csv and transfers.csv lines a planner can read.

Every line carries the position of both ends before the plan (units, weekly demand and weeks of
cover, computed once here and used both in the columns and in the sentence), what the plan
sends into the destination and out of the source in total, and a ``recommendation_id`` that
groups the sizes of one style-colour on one lane.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special

from stocktailor.contract import TRANSFERS_SCHEMA
from stocktailor.money import format_money
from stocktailor.product_text import known, product_words
from stocktailor.transfers._instance import TransferInstance
from stocktailor.transfers._lines import LineSet
from stocktailor.transfers._solve import TransferSolution

__all__ = [
    "ALLOCATION_COLUMNS",
    "CONTEXT_COLUMNS",
    "TRANSFER_COLUMNS",
    "plan_frames",
    "solution_frame",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TRANSFER_COLUMNS: tuple[str, ...] = tuple(TRANSFERS_SCHEMA)
"""transfers.csv: the contract's columns and ``gain_p10, gain_p90``."""

CONTEXT_COLUMNS: dict[str, pl.DataType] = {
    "recommendation_id": pl.String(),
    "marginal_net_benefit": pl.Float64(),
    "net_p10": pl.Float64(),
    "net_p90": pl.Float64(),
    "loss_probability": pl.Float64(),
    "from_on_hand": pl.Int64(),
    "to_on_hand": pl.Int64(),
    "from_weekly_demand": pl.Float64(),
    "to_weekly_demand": pl.Float64(),
    "from_cover_weeks": pl.Float64(),
    "to_cover_weeks": pl.Float64(),
    "from_outbound_units": pl.Int64(),
    "to_inbound_units": pl.Int64(),
}
"""Columns added to both frames: ``recommendation_id`` (one style-colour on one lane),
``marginal_net_benefit`` (the plan's value with the line minus without it, every other line
kept, currency: what rejecting only this line costs; the lane's shipment cost counts only for a
line alone on its lane), ``net_p10``/``net_p90`` (a normal 80% band of the net benefit from the
standard deviation of the units sold at the destination and given up at the source, currency:
``net_p10 < 0`` = the line may lose money) and ``loss_probability`` (the same normal
approximation's P(net benefit < 0): an exception threshold, e.g. 0.4, flags the risky few), each
end's units before the plan (on hand + in transit), its weekly demand (remaining-season average,
units per week) and weeks of cover (null without demand), and the plan's total units out of the
source and into the destination for the line's SKU (this line included)."""

ALLOCATION_COLUMNS: tuple[str, ...] = (
    "sku",
    "from_id",
    "to_id",
    "units",
    "expected_gain",
    "reason",
    "style",
    "color",
    "size",
    "ship_date",
    "arrival_date",
    "transfer_cost",
    "net_benefit",
    "gain_p10",
    "gain_p90",
)
"""allocation.csv: the contract's columns, then what transfers.csv also has. ``expected_gain``
is the marginal expected gain at the store before the lane cost; ``net_benefit = expected_gain
- transfer_cost``."""


_Z90 = 1.2815515655446004
"""The standard normal's 90% quantile."""


def _loss_probability(net: FloatArray, sd: FloatArray) -> FloatArray:
    """P(value < 0) under a normal with mean ``net`` and standard deviation ``sd``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, -net / np.where(sd > 0, sd, 1.0), np.where(net < 0, np.inf, -np.inf))
    out: FloatArray = special.ndtr(z)
    return out


@dataclass(frozen=True)
class _Context:
    """Per-line figures of a plan (index space of the instance)."""

    item: list[str]
    style: list[str]
    color: list[str]
    size: list[str]
    names: list[str]
    stock_src: IntArray
    stock_dst: IntArray
    week_src: FloatArray
    week_dst: FloatArray
    cover_src: FloatArray
    cover_dst: FloatArray
    out_tot: IntArray
    in_tot: IntArray
    held: IntArray


def _product_info(
    inst: TransferInstance, products: pl.DataFrame | None
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Style, colour, size and readable item name per SKU column."""
    info: dict[str, tuple[str, str, str, str]] = {}
    if products is not None:
        cols = products.columns
        for rec in products.filter(pl.col("sku").is_in(inst.skus)).iter_rows(named=True):
            label = next(
                (str(rec[c]) for c in ("name", "style_name") if c in cols and known(rec.get(c))),
                str(rec["style"]),
            )
            info[rec["sku"]] = (str(rec["style"]), str(rec["color"]), str(rec["size"]), label)
    per = [info.get(k, (inst.styles[i], "", "", k)) for i, k in enumerate(inst.skus)]
    item = [
        product_words(lab, col, size) or sku
        for (_, col, size, lab), sku in zip(per, inst.skus, strict=True)
    ]
    return [p[0] for p in per], [p[1] for p in per], [p[2] for p in per], item


def _context(
    inst: TransferInstance,
    lines: LineSet,
    products: pl.DataFrame | None,
    stores: pl.DataFrame | None,
    movable: IntArray,
) -> _Context:
    """Both ends of every line before the plan, and the plan's totals per SKU and location."""
    names = list(inst.store_ids)
    if stores is not None and "name" in stores.columns:
        nm = dict(zip(stores["store_id"].to_list(), stores["name"].to_list(), strict=True))
        names = [str(nm.get(s) or s) for s in inst.store_ids]
    style, color, size, item = _product_info(inst, products)
    days = np.maximum(
        inst.season_days if inst.season_days is not None else np.full(inst.n_skus, 7.0), 1.0
    )
    s, d, k = lines.src, lines.dst, lines.sku
    stock_src, week_src, cover_src = _end_figures(inst, days, s, k)
    stock_dst, week_dst, cover_dst = _end_figures(inst, days, d, k)
    return _Context(
        item=item,
        style=style,
        color=color,
        size=size,
        names=names,
        stock_src=stock_src,
        stock_dst=stock_dst,
        week_src=week_src,
        week_dst=week_dst,
        cover_src=cover_src,
        cover_dst=cover_dst,
        out_tot=_node_totals(s * inst.n_skus + k, lines.units),
        in_tot=_node_totals(d * inst.n_skus + k, lines.units),
        held=np.maximum(stock_src - movable[s, k], 0),
    )


def _end_figures(
    inst: TransferInstance, days: FloatArray, store: IntArray, sku: IntArray
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Units (on hand + in transit, at least 0), weekly demand (remaining-season average,
    units per week) and weeks of cover (nan without demand) of ``store`` x ``sku`` pairs."""
    stock = np.maximum(inst.stock[store, sku], 0)
    weekly = (inst.mean_lead[store, sku] + inst.mean_rest[store, sku]) / days[sku] * 7.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cover: FloatArray = np.where(weekly > 1e-9, stock / weekly, np.nan)
    return stock, weekly, cover


def _node_totals(node: IntArray, units: IntArray) -> IntArray:
    """Per line: the units of every line at its node (``node`` = location x SKU key)."""
    _, inv = np.unique(node, return_inverse=True)
    tot: IntArray = np.bincount(inv, weights=units).astype(np.int64)
    return tot[inv]


def _end_text(name: str, units: int, weekly: float, cover: float, item: str | None) -> str:
    """``name`` holds ``units`` (of ``item``): weeks of cover at its weekly demand."""
    what = f" of {item}" if item else ""
    if not math.isfinite(cover):
        return f"{name} holds {units}{what} and has no demand forecast for it this season"
    if units <= 0:
        return f"{name} is out of stock{what} and sells {weekly:.1f} a week"
    return f"{name} holds {units}{what}: {cover:.1f} weeks of cover at {weekly:.1f} a week"


def _source_text(ctx: _Context, lines: LineSet, wh: list[bool]) -> list[str]:
    """Per line: the source's half of the sentence (a warehouse's stock and holdback, a
    store's cover) and what the plan ships out of it in total."""
    out = []
    for src, k, q, stock, held, weekly, cover, tot in zip(
        lines.src.tolist(),
        lines.sku.tolist(),
        lines.units.tolist(),
        ctx.stock_src.tolist(),
        ctx.held.tolist(),
        ctx.week_src.tolist(),
        ctx.cover_src.tolist(),
        ctx.out_tot.tolist(),
        strict=True,
    ):
        if wh[src]:
            text = f"{ctx.names[src]} has {stock} of {ctx.item[k]} in stock"
            if held > 0:
                text += f", {held} held back for replenishment"
        else:
            text = _end_text(ctx.names[src], stock, weekly, cover, ctx.item[k])
        if tot > q:
            text += f" and ships {tot} in this plan"
        out.append(text)
    return out


def _reasons(
    ctx: _Context, lines: LineSet, net: FloatArray, wh: npt.NDArray[np.bool_], currency: str
) -> list[str]:
    """One sentence per line; each end's cover figure appears once; net benefit in
    ``currency`` (ISO 4217) whole units."""
    out = []
    is_wh: list[bool] = wh.tolist()
    for s_txt, src, dst, q, stock, weekly, cover, tot, value in zip(
        _source_text(ctx, lines, is_wh),
        lines.src.tolist(),
        lines.dst.tolist(),
        lines.units.tolist(),
        ctx.stock_dst.tolist(),
        ctx.week_dst.tolist(),
        ctx.cover_dst.tolist(),
        ctx.in_tot.tolist(),
        net.tolist(),
        strict=True,
    ):
        d_txt = _end_text(ctx.names[dst], stock, weekly, cover, None)
        if tot > q:
            d_txt += f", and receives {tot} in this plan ({q} on this line)"
        verb = "allocating" if is_wh[src] else "moving"
        money = format_money(value, currency, cents=False)
        out.append(f"{s_txt}; {d_txt}; {verb} {q} units adds {money} net")
    return out


def _recommendation_ids(frame: pl.DataFrame, as_of: dt.date, prefix: str) -> pl.DataFrame:
    """``recommendation_id`` per style-colour x lane, numbered by total net benefit."""
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias("recommendation_id"))
    keys = ["style", "color", "from_id", "to_id"]
    groups = (
        frame.group_by(keys)
        .agg(pl.col("net_benefit").sum().alias("_tot"))
        .sort(["_tot", *keys], descending=[True, False, False, False, False])
        .with_row_index("_k", offset=1)
        .select(
            *keys,
            pl.format(
                "{}{}-{}",
                pl.lit(prefix),
                pl.lit(f"{as_of:%Y%m%d}"),
                pl.col("_k").cast(pl.String).str.zfill(5),
            ).alias("recommendation_id"),
        )
    )
    return frame.join(groups, on=keys, how="left", maintain_order="left")


def _lines_frame(
    inst: TransferInstance,
    sol: TransferSolution,
    as_of: dt.date,
    products: pl.DataFrame | None,
    stores: pl.DataFrame | None,
    movable: IntArray,
    currency: str,
) -> pl.DataFrame:
    """Every line of the solution with its P&L and context, sorted by net benefit."""
    lines = sol.lines
    order = np.lexsort((lines.dst, lines.src, lines.sku, -np.round(sol.net_benefit, 6)))
    ln = lines.take(order)
    net = sol.net_benefit[order]
    marginal = net if sol.marginal_net_benefit is None else sol.marginal_net_benefit[order]
    sd = np.zeros(len(order)) if sol.value_sd is None else sol.value_sd[order]
    wh = inst.is_warehouse
    ctx = _context(inst, ln, products, stores, movable)
    ids = np.array(inst.store_ids, dtype=object)
    k = ln.sku.tolist()
    ship = as_of + dt.timedelta(days=1)
    frame = pl.DataFrame(
        {
            "sku": [inst.skus[j] for j in k],
            "style": [ctx.style[j] for j in k],
            "color": [ctx.color[j] for j in k],
            "size": [ctx.size[j] for j in k],
            "from_id": ids[ln.src].tolist(),
            "to_id": ids[ln.dst].tolist(),
            "units": ln.units.astype(np.int64),
            "lead": sol.lead_days[order].astype(np.int64),
            "transfer_cost": sol.transfer_cost[order].astype(np.float64),
            "expected_gain": sol.gain[order].astype(np.float64),
            "expected_source_loss": sol.source_loss[order].astype(np.float64),
            "net_benefit": net.astype(np.float64),
            "marginal_net_benefit": marginal.astype(np.float64),
            "net_p10": (net - _Z90 * sd).astype(np.float64),
            "net_p90": (net + _Z90 * sd).astype(np.float64),
            "loss_probability": _loss_probability(net, sd),
            "reason": _reasons(ctx, ln, net, wh, currency),
            "gain_p10": sol.gain_p10[order].astype(np.float64),
            "gain_p90": sol.gain_p90[order].astype(np.float64),
            "from_on_hand": ctx.stock_src.astype(np.int64),
            "to_on_hand": ctx.stock_dst.astype(np.int64),
            "from_weekly_demand": np.where(wh[ln.src], np.nan, ctx.week_src),
            "to_weekly_demand": ctx.week_dst,
            "from_cover_weeks": np.where(wh[ln.src], np.nan, ctx.cover_src),
            "to_cover_weeks": ctx.cover_dst,
            "from_outbound_units": ctx.out_tot.astype(np.int64),
            "to_inbound_units": ctx.in_tot.astype(np.int64),
            "_wh": wh[ln.src],
        },
        strict=False,
    ).with_columns(
        pl.col(
            "from_weekly_demand", "to_weekly_demand", "from_cover_weeks", "to_cover_weeks"
        ).fill_nan(None),
        pl.lit(ship, dtype=pl.Date).alias("ship_date"),
        (pl.lit(ship, dtype=pl.Date) + pl.duration(days=pl.col("lead"))).alias("arrival_date"),
    )
    return frame


def plan_frames(
    inst: TransferInstance,
    sol: TransferSolution,
    as_of: dt.date,
    products: pl.DataFrame | None = None,
    stores: pl.DataFrame | None = None,
    *,
    movable: IntArray | None = None,
    currency: str = "USD",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The plan's allocation lines (from warehouses) and transfer lines (between stores).

    Parameters
    ----------
    movable
        Units that could ship before the plan, ``(n, m)`` (a warehouse's stock less the
        holdback); default the instance's.
    currency
        ISO 4217 code the reasons write money in (``settings.economics.currency``).

    Returns
    -------
    tuple
        ``(allocation, transfers)``: :data:`ALLOCATION_COLUMNS` and :data:`TRANSFER_COLUMNS`,
        each followed by :data:`CONTEXT_COLUMNS`, sorted by net benefit (descending).
    """
    mv = inst.movable if movable is None else movable
    if len(sol.lines) == 0:
        frame = pl.DataFrame(schema={"_wh": pl.Boolean})
    else:
        frame = _lines_frame(inst, sol, as_of, products, stores, mv, currency)
    tr_schema = {**TRANSFERS_SCHEMA, **CONTEXT_COLUMNS}
    al_schema = {c: tr_schema[c] for c in ALLOCATION_COLUMNS} | CONTEXT_COLUMNS
    if frame.height == 0:
        return pl.DataFrame(schema=al_schema), pl.DataFrame(schema=tr_schema)
    tr, al = frame.filter(~pl.col("_wh")), frame.filter(pl.col("_wh"))
    del frame
    tr = tr.with_columns(
        pl.format(
            "T{}-{}",
            pl.lit(f"{as_of:%Y%m%d}"),
            pl.int_range(1, tr.height + 1).cast(pl.String).str.zfill(5),
        ).alias("transfer_id")
    )
    tr = _recommendation_ids(tr, as_of, "RT")
    al = _recommendation_ids(al, as_of, "RA")
    return (
        al.select(list(al_schema)).cast(al_schema),  # type: ignore[arg-type]
        tr.select(list(tr_schema)).cast(tr_schema),  # type: ignore[arg-type]
    )


def solution_frame(
    inst: TransferInstance,
    sol: TransferSolution,
    as_of: dt.date,
    products: pl.DataFrame | None = None,
    stores: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The store-to-store lines of a solution (:func:`plan_frames`' second frame)."""
    return plan_frames(inst, sol, as_of, products, stores)[1]
