"""Exceptions: the lines a planner should look at before approving (each with its threshold)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from stocktailor.config import ServeConfig

__all__ = ["flag_exceptions"]


def flag_exceptions(
    lines: pl.DataFrame, prior_pairs: set[tuple[str, str]], cfg: ServeConfig
) -> list[dict[str, Any]]:
    """Return exception rows ``{line_no, kind, detail}`` for the lines of a run."""
    out: list[dict[str, Any]] = []
    seen_pairs: set[tuple[str, str]] = set()
    for r in lines.iter_rows(named=True):
        n = r["line_no"]
        p10, p90, gain = r["gain_p10"], r["gain_p90"], r["expected_gain"]
        if p10 is not None and p90 is not None:
            width = p90 - p10
            if width > cfg.exception_band_ratio * max(abs(gain), 1e-9) or p10 < 0:
                out.append(
                    {
                        "line_no": n,
                        "kind": "low_confidence",
                        "detail": f"gain band {p10:.2f} to {p90:.2f} is wide against the "
                        f"expected gain {gain:.2f}",
                    }
                )
        units, src = r["units"], r["from_on_hand"]
        if units >= cfg.exception_large_move_units:
            out.append(
                {
                    "line_no": n,
                    "kind": "large_move",
                    "detail": f"{units} units is at least {cfg.exception_large_move_units}",
                }
            )
        elif (
            r["kind"] == "transfer"
            and src is not None
            and src > 0
            and units > cfg.exception_large_move_share * src
        ):
            out.append(
                {
                    "line_no": n,
                    "kind": "large_move",
                    "detail": f"{units} units is more than "
                    f"{cfg.exception_large_move_share:.0%} of the {src} on hand at {r['from_id']}",
                }
            )
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
        if rules:
            out.append({"line_no": n, "kind": "soft_rule", "detail": "; ".join(rules)})
        style = r["style"]
        if r["kind"] == "transfer" and style is not None:
            pair = (r["to_id"], style)
            if pair not in prior_pairs:
                first = pair not in seen_pairs
                seen_pairs.add(pair)
                out.append(
                    {
                        "line_no": n,
                        "kind": "first_transfer_of_style",
                        "detail": f"first transfer of style {style} to {r['to_id']}"
                        + ("" if first else " (another size of the same first transfer)"),
                    }
                )
    return out
