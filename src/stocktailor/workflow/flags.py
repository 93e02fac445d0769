"""Exceptions: the few lines a planner should look at before approving.

Each kind has its threshold in :class:`~stocktailor.config.ServeConfig`:

- ``low_confidence``: the probability that the line loses money (its net benefit < 0) is above
  ``exception_loss_probability``;
- ``large_move``: at least ``exception_large_move_units`` units, or a transfer taking more than
  ``exception_large_move_share`` of the source's on hand;
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

__all__ = ["flag_exceptions"]


def _low_confidence(r: dict[str, Any], cfg: ServeConfig) -> str | None:
    p = r["loss_probability"]
    if p is None or p <= cfg.exception_loss_probability:
        return None
    band = ""
    if r["net_p10"] is not None and r["net_p90"] is not None:
        band = f" (net benefit band {r['net_p10']:,.0f} to {r['net_p90']:,.0f})"
    return f"{p:.0%} chance of losing money{band}, above {cfg.exception_loss_probability:.0%}"


def _large_move(r: dict[str, Any], cfg: ServeConfig) -> str | None:
    units, src = r["units"], r["from_on_hand"]
    if units >= cfg.exception_large_move_units:
        return f"{units} units is at least {cfg.exception_large_move_units}"
    if (
        r["kind"] == "transfer"
        and src is not None
        and src > 0
        and units > cfg.exception_large_move_share * src
    ):
        return (
            f"{units} units is more than {cfg.exception_large_move_share:.0%} "
            f"of the {src} on hand at {r['from_id']}"
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


def flag_exceptions(
    lines: pl.DataFrame, prior_pairs: set[tuple[str, str]], cfg: ServeConfig
) -> list[dict[str, Any]]:
    """Return exception rows ``{line_no, kind, detail}`` for the lines of a run.

    ``prior_pairs`` are the (store, style) pairs that received an approved transfer before.
    """
    out: list[dict[str, Any]] = []
    seen_pairs: set[tuple[str, str]] = set()
    for r in lines.iter_rows(named=True):
        n = r["line_no"]
        for kind, rule in (
            ("low_confidence", _low_confidence),
            ("large_move", _large_move),
            ("soft_rule", _soft_rule),
        ):
            detail = rule(r, cfg)
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
