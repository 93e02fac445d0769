"""Moves in the simulator: checked against stock, priced, queued and delivered."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from stocktailor.simulate._types import IntArray, SimSpace

__all__ = ["MOVES_SCHEMA", "Shipper", "moves_frame"]

MOVES_SCHEMA = pl.Schema(
    {
        "ship_date": pl.Date(),
        "arrival_date": pl.Date(),
        "sku": pl.String(),
        "from_id": pl.String(),
        "to_id": pl.String(),
        "units": pl.Int64(),
        "requested": pl.Int64(),
        "cost": pl.Float64(),
        "kind": pl.String(),
    }
)


def moves_frame(rows: list[pl.DataFrame]) -> pl.DataFrame:
    """Executed moves of a run in one frame (the columns of :data:`MOVES_SCHEMA`)."""
    if not rows:
        return pl.DataFrame(schema=MOVES_SCHEMA)
    return pl.concat(rows, how="vertical").select(list(MOVES_SCHEMA)).cast(MOVES_SCHEMA)


class Shipper:
    """Applies moves: checks them against stock, prices them and queues their arrival."""

    def __init__(self, space: SimSpace) -> None:
        self.space = space
        self.li = space.loc_index()
        self.ki = space.sku_index()
        # arrival day index -> (loc, sku, units)
        self.pending: dict[int, list[tuple[IntArray, IntArray, IntArray]]] = {}

    def _indices(self, f: pl.DataFrame, kind: str) -> tuple[IntArray, IntArray, IntArray]:
        """Location and SKU positions of the rows; an unknown id is an error."""
        src = f["from_id"].replace_strict(self.li, return_dtype=pl.Int64, default=-1).to_numpy()
        dst = f["to_id"].replace_strict(self.li, return_dtype=pl.Int64, default=-1).to_numpy()
        k = f["sku"].replace_strict(self.ki, return_dtype=pl.Int64, default=-1).to_numpy()
        for name, arr, col in (
            ("location", src, "from_id"),
            ("location", dst, "to_id"),
            ("sku", k, "sku"),
        ):
            bad = np.flatnonzero(arr < 0)
            if bad.size:
                msg = (
                    f"policy decisions ({kind}): row {int(bad[0]) + 1} column {col!r}: "
                    f"unknown {name} {f[col][int(bad[0])]!r}"
                )
                raise ValueError(msg)
        return src, dst, k

    def ship(
        self,
        frame: pl.DataFrame,
        kind: str,
        day_i: int,
        day: dt.date,
        on_hand: IntArray,
        in_transit: IntArray,
    ) -> tuple[pl.DataFrame, int, float, int]:
        """Ship ``frame`` (sku, from_id, to_id, units); return the executed moves.

        Units beyond the source's on-hand stock are cut (a policy cannot ship what is not
        there); the cut is visible as ``requested - units``.

        Returns
        -------
        tuple
            ``(executed moves, units shipped, cost (currency), shipments (lanes used))``.
        """
        for col in ("sku", "from_id", "to_id", "units"):
            if col not in frame.columns:
                msg = f"policy decisions ({kind}): column {col!r} is missing"
                raise ValueError(msg)
        f = frame.select("sku", "from_id", "to_id", pl.col("units").cast(pl.Int64))
        f = f.filter((pl.col("units") > 0) & (pl.col("from_id") != pl.col("to_id")))
        if f.height == 0:
            return moves_frame([]), 0, 0.0, 0
        src, dst, k = self._indices(f, kind)
        req = f["units"].to_numpy().astype(np.int64)
        # Serve rows in order; a source's stock is shared by its rows of the same sku.
        units = np.zeros_like(req)
        avail = on_hand.copy()
        for r in range(len(req)):
            take = min(int(req[r]), int(avail[src[r], k[r]]))
            if take > 0:
                units[r] = take
                avail[src[r], k[r]] -= take
        keep = units > 0
        np.subtract.at(on_hand, (src[keep], k[keep]), units[keep])
        lead = self.space.lane_lead_days[src, dst]
        cost, n_lanes = self._cost(src, dst, units, keep)
        for lt in np.unique(lead[keep]):
            sel = keep & (lead == lt)
            np.add.at(in_transit, (dst[sel], k[sel]), units[sel])
            self.pending.setdefault(day_i + int(lt), []).append((dst[sel], k[sel], units[sel]))
        out = pl.DataFrame(
            {
                "ship_date": [day] * len(req),
                "arrival_date": [day + dt.timedelta(days=int(x)) for x in lead],
                "sku": f["sku"],
                "from_id": f["from_id"],
                "to_id": f["to_id"],
                "units": units,
                "requested": req,
                "cost": cost,
                "kind": [kind] * len(req),
            }
        ).filter(pl.col("requested") > 0)
        return out, int(units.sum()), float(cost.sum()), n_lanes

    def _cost(
        self, src: IntArray, dst: IntArray, units: IntArray, keep: np.ndarray
    ) -> tuple[np.ndarray, int]:
        """Cost per row (currency) and the number of lanes used.

        The fixed cost is paid once per (from, to) lane used today, allocated over its units.
        """
        cu = self.space.lane_cost_unit[src, dst]
        cs = self.space.lane_cost_shipment[src, dst]
        lane_key = src * len(self.li) + dst
        lane_units: dict[int, int] = {}
        for key, u in zip(lane_key[keep].tolist(), units[keep].tolist(), strict=True):
            lane_units[key] = lane_units.get(key, 0) + int(u)
        share = np.array(
            [
                units[r] / lane_units[int(lane_key[r])] if keep[r] else 0.0
                for r in range(len(units))
            ],
            dtype=np.float64,
        )
        return units * cu + share * cs, len(lane_units)

    def cancel(self, skus: IntArray) -> None:
        """Drop pending arrivals of ``skus`` (their season ended; they were salvaged)."""
        for key, items in list(self.pending.items()):
            kept = []
            for dst, k, u in items:
                keep = ~np.isin(k, skus)
                if keep.any():
                    kept.append((dst[keep], k[keep], u[keep]))
            if kept:
                self.pending[key] = kept
            else:
                del self.pending[key]

    def arrive(self, day_i: int, on_hand: IntArray, in_transit: IntArray) -> None:
        """Put the shipments due on ``day_i`` on the shelf."""
        for dst, k, u in self.pending.pop(day_i, []):
            np.add.at(on_hand, (dst, k), u)
            np.subtract.at(in_transit, (dst, k), u)
