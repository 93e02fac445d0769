"""Exceptions: the few lines a planner should look at before approving.

Every rule compares a line with its own uncertainty or with the other lines of its run, so a
flag means the same on a 12-store network as on a 2,000-store one. Thresholds are in
:class:`~stocktailor.config.ServeConfig`:

- ``low_confidence``: the line can lose money, its expected net benefit is small against its own
  band, and the money at stake is material: net p10 < 0, net benefit <
  ``exception_band_share`` x (net p90 - net p10), and the p10 loss is at least
  ``exception_material_loss`` x the median net benefit of the run's lines;
- ``large_move``: the line's units are far out in the run's distribution of line sizes of its
  kind (allocation or transfer): above Q3 + ``exception_large_move_iqr`` x (Q3 - Q1); or a
  transfer leaves its source with less than ``exception_source_cover_weeks`` of the source's
  own forecast demand once every line of the run shipping that SKU out of it has left;
- ``soft_rule``: a soft rule the plan reports, or arrival less than
  ``exception_late_arrival_days`` before the product's season end;
- ``first_transfer_of_style``: a transfer of a style the destination does not carry (at most
  ``exception_new_style_max_units`` units of it, none sold this season, no approved transfer of
  it before).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from stocktailor.config import ServeConfig

__all__ = ["flag_exceptions", "run_context"]


def _net_band(r: dict[str, Any]) -> tuple[float, float] | None:
    """The line's net benefit p10 and p90 (currency units): the plan's net band, else its gain
    band shifted by the line's costs; ``None`` when the plan gave neither."""
    if r["net_p10"] is not None and r["net_p90"] is not None:
        return float(r["net_p10"]), float(r["net_p90"])
    g10, g90, gain, net = r["gain_p10"], r["gain_p90"], r["expected_gain"], r["net_benefit"]
    if None in (g10, g90, gain, net):
        return None
    return float(g10) + float(net) - float(gain), float(g90) + float(net) - float(gain)


def _low_confidence(r: dict[str, Any], cfg: ServeConfig, material: float) -> str | None:
    band = _net_band(r)
    net = r["net_benefit"]
    if band is None or net is None:
        return None
    p10, p90 = band
    loss = -p10
    if p10 >= 0 or net >= cfg.exception_band_share * (p90 - p10) or loss < material:
        return None
    p = r["loss_probability"]
    chance = f"{p:.0%} chance of losing money; " if p is not None else ""
    return (
        f"{chance}net benefit {net:,.0f} is under {cfg.exception_band_share:.0%} of its band "
        f"{p10:,.0f} to {p90:,.0f}, and the p10 loss {loss:,.0f} is at least "
        f"{material:,.0f} ({cfg.exception_material_loss:g} x the run's median line)"
    )


def _large_move(r: dict[str, Any], cfg: ServeConfig) -> str | None:
    units, fence = r["units"], r["size_fence"]
    if fence is not None and units > fence:
        return (
            f"{units} units is far above this run's {r['kind']} lines "
            f"(more than {fence:,.1f} = Q3 + {cfg.exception_large_move_iqr:g} x IQR)"
        )
    left, demand = r["source_left"], r["from_weekly_demand"]
    if r["kind"] != "transfer" or left is None or demand is None or demand <= 0:
        return None
    cover = max(left, 0) / demand
    if cover < cfg.exception_source_cover_weeks:
        return (
            f"leaves {max(left, 0)} at {r['from_id']} after this run's transfers: "
            f"{cover:.1f} weeks of its own demand ({demand:.1f} a week), under "
            f"{cfg.exception_source_cover_weeks:g}"
        )
    return None


def _soft_rule(r: dict[str, Any], cfg: ServeConfig) -> str | None:
    rules: list[str] = []
    if r["soft_rules"]:
        rules.append(str(r["soft_rules"]))
    season_end, arrival = r["season_end"], r["arrival_date"] or r["ship_date"]
    if (
        season_end is not None
        and arrival is not None
        and arrival > season_end - dt.timedelta(days=cfg.exception_late_arrival_days)
    ):
        rules.append(
            f"arrives {arrival.isoformat()}, less than {cfg.exception_late_arrival_days} "
            f"days before season end {season_end.isoformat()}"
        )
    return "; ".join(rules) if rules else None


def _new_style(r: dict[str, Any], cfg: ServeConfig) -> bool:
    """The destination does not carry the style (unknown stock counts as none)."""
    units = r.get("to_style_units") or 0
    sold = r.get("to_style_sold") or 0
    return units <= cfg.exception_new_style_max_units and sold <= 0


def run_context(lines: pl.DataFrame, cfg: ServeConfig) -> tuple[pl.DataFrame, float]:
    """Add what the rules compare a line with: the run's size fence and the source's leftover.

    Parameters
    ----------
    lines
        A run's lines (``kind, sku, from_id, units, from_on_hand, net_benefit``).
    cfg
        Exception thresholds.

    Returns
    -------
    tuple of (pl.DataFrame, float)
        ``lines`` with ``size_fence`` (units above which a line of that kind is far out,
        Q3 + ``exception_large_move_iqr`` x IQR of the run's lines of the kind) and
        ``source_left`` (the source's on hand minus every unit the run's transfers ship out of
        it for that SKU, units; null without a known on hand, and for allocation lines), and
        the material loss of ``low_confidence`` (``exception_material_loss`` x the median net
        benefit of the run's lines, currency units, at least 0).
    """
    fences = lines.group_by("kind").agg(
        (
            pl.col("units").quantile(0.75, "linear")
            + cfg.exception_large_move_iqr
            * (pl.col("units").quantile(0.75, "linear") - pl.col("units").quantile(0.25, "linear"))
        ).alias("size_fence")
    )
    shipped = (
        lines.filter(pl.col("kind") == "transfer")
        .group_by("from_id", "sku")
        .agg(pl.col("units").sum().alias("_shipped"))
    )
    out = (
        lines.join(fences, on="kind", how="left")
        .join(shipped, on=["from_id", "sku"], how="left")
        .with_columns(
            pl.when(pl.col("kind") == "transfer")
            .then(pl.col("from_on_hand") - pl.col("_shipped"))
            .otherwise(None)
            .alias("source_left")
        )
        .drop("_shipped")
        .sort("line_no")
    )
    median = lines["net_benefit"].median() if lines.height else None
    typical = float(median) if isinstance(median, int | float) else 0.0
    material = max(typical, 0.0) * cfg.exception_material_loss
    return out, material


def flag_exceptions(
    lines: pl.DataFrame, prior_pairs: set[tuple[str, str]], cfg: ServeConfig
) -> list[dict[str, Any]]:
    """Return exception rows ``{line_no, kind, detail}`` for the lines of a run.

    ``prior_pairs`` are the (store, style) pairs that received an approved transfer before.
    The rules compare each line with the whole run (see :func:`run_context`), so ``lines`` is
    every line of the run.
    """
    out: list[dict[str, Any]] = []
    seen_pairs: set[tuple[str, str]] = set()
    if lines.is_empty():
        return out
    ctx, material = run_context(lines, cfg)
    for r in ctx.iter_rows(named=True):
        n = r["line_no"]
        for kind, detail in (
            ("low_confidence", _low_confidence(r, cfg, material)),
            ("large_move", _large_move(r, cfg)),
            ("soft_rule", _soft_rule(r, cfg)),
        ):
            if detail is not None:
                out.append({"line_no": n, "kind": kind, "detail": detail})
        style = r["style"]
        if r["kind"] == "transfer" and style is not None:
            pair = (r["to_id"], style)
            if pair not in prior_pairs and _new_style(r, cfg):
                first = pair not in seen_pairs
                seen_pairs.add(pair)
                out.append(
                    {
                        "line_no": n,
                        "kind": "first_transfer_of_style",
                        "detail": f"first transfer of style {style} to {r['to_id']}, which does "
                        "not carry it"
                        + ("" if first else " (another size of the same first transfer)"),
                    }
                )
    return out
