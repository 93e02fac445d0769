"""Stock positions at a date and the lanes between locations.

The position of a store is its latest inventory snapshot at or before the as-of date, less the
sales (plus returns) dated after that snapshot up to the as-of date. What may move is what is on
hand less the presentation minimum and less units received in the last
``min_days_before_retransfer`` days (inferred from consecutive snapshots and the sales between).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.config import ConstraintsConfig, EconomicsConfig, Settings
from stocktailor.contract import ContractError, Tables

__all__ = ["core_sizes", "haversine_km", "lane_matrices", "lanes_for", "position_at"]

EARTH_RADIUS_KM = 6371.0088


def _constraints(c: ConstraintsConfig | Settings | None) -> ConstraintsConfig:
    if c is None:
        return ConstraintsConfig()
    if isinstance(c, Settings):
        return c.constraints
    return c


def _economics(e: EconomicsConfig | Settings | None) -> EconomicsConfig:
    if e is None:
        return EconomicsConfig()
    if isinstance(e, Settings):
        return e.economics
    return e


def core_sizes(products: pl.DataFrame) -> set[str]:
    """The SKUs that are core sizes of their style-colour.

    A style-colour's sizes are ranked by ``size_order`` (ties and missing values by the size
    label); with three or more sizes the core sizes are all but the smallest and the largest
    (the fringe sizes), with one or two sizes every size is core (a run that short has no
    fringe). Used wherever core sizes matter: the ``keep_core_size_run`` rule of
    :func:`position_at`, the broken-size-run bonus of the transfer optimiser and the
    simulator's broken-size-run effect.

    Parameters
    ----------
    products
        ``sku, style, color, size`` and optionally ``size_order``.

    Returns
    -------
    set of str
        SKUs that are core sizes.
    """
    if products.height == 0:
        return set()
    order = (
        pl.col("size_order").cast(pl.Float64)
        if "size_order" in products.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    p = (
        products.select("sku", "style", "color", pl.col("size").cast(pl.String), order.alias("_o"))
        .sort(["style", "color", "_o", "size", "sku"], nulls_last=True)
        .with_columns(
            pl.int_range(pl.len()).over("style", "color").alias("_r"),
            pl.len().over("style", "color").alias("_n"),
        )
    )
    core = p.filter((pl.col("_n") < 3) | ((pl.col("_r") > 0) & (pl.col("_r") < pl.col("_n") - 1)))
    return set(core["sku"].to_list())


def position_at(
    tables: Tables,
    as_of: dt.date,
    constraints: ConstraintsConfig | Settings | None = None,
) -> pl.DataFrame:
    """Stock position of every location x SKU at the end of ``as_of``.

    Parameters
    ----------
    tables
        Validated tables (inventory, sales, products are read).
    as_of
        Date of the position; the latest snapshot per location at or before it is used.
    constraints
        Presentation minimum, retransfer window and ``keep_core_size_run``.

    Returns
    -------
    polars.DataFrame
        ``store_id, sku, on_hand, in_transit, movable`` (Int64 units), sorted by store and SKU.
        ``on_hand`` is floored at 0; ``movable = on_hand - presentation_minimum - units received in
        the last min_days_before_retransfer days`` floored at 0 (and, with keep_core_size_run, at
        most ``on_hand - 1`` for a core size).
    """
    c = _constraints(constraints)
    inv = tables.inventory.filter(pl.col("date") <= as_of)
    if "in_transit" not in inv.columns:
        inv = inv.with_columns(pl.lit(0, dtype=pl.Int64).alias("in_transit"))
    if inv.height == 0:
        return pl.DataFrame(
            schema={
                "store_id": pl.String,
                "sku": pl.String,
                "on_hand": pl.Int64,
                "in_transit": pl.Int64,
                "movable": pl.Int64,
            }
        )
    latest = inv.group_by("store_id").agg(pl.col("date").max().alias("snap_date"))
    snap = inv.join(latest, on="store_id").filter(pl.col("date") == pl.col("snap_date"))
    sales = tables.sales.filter(pl.col("date") <= as_of).join(latest, on="store_id", how="inner")
    sold_after = (
        sales.filter(pl.col("date") > pl.col("snap_date"))
        .group_by("store_id", "sku")
        .agg(pl.col("units").sum().alias("_sold"))
    )
    pos = (
        snap.select("store_id", "sku", "on_hand", pl.col("in_transit").fill_null(0))
        .join(sold_after, on=["store_id", "sku"], how="left")
        .with_columns(
            (pl.col("on_hand") - pl.col("_sold").fill_null(0)).clip(lower_bound=0).alias("on_hand")
        )
        .drop("_sold")
    )
    # receipts inferred from consecutive snapshots within the retransfer window
    window_start = as_of - dt.timedelta(days=c.min_days_before_retransfer)
    received = _recent_receipts(tables, inv, window_start, as_of)
    pos = pos.join(received, on=["store_id", "sku"], how="left").with_columns(
        pl.col("_recv").fill_null(0)
    )
    movable = (pl.col("on_hand") - c.presentation_minimum - pl.col("_recv")).clip(lower_bound=0)
    pos = pos.with_columns(movable.alias("movable"))
    if c.keep_core_size_run:
        core = core_sizes(tables.products)
        pos = pos.with_columns(
            pl.when(pl.col("sku").is_in(list(core)) & (pl.col("on_hand") > 0))
            .then(pl.min_horizontal(pl.col("movable"), pl.col("on_hand") - 1))
            .otherwise(pl.col("movable"))
            .alias("movable")
        )
    return pos.select(
        "store_id",
        "sku",
        pl.col("on_hand").cast(pl.Int64),
        pl.col("in_transit").cast(pl.Int64),
        pl.col("movable").cast(pl.Int64),
    ).sort("store_id", "sku")


def _recent_receipts(
    tables: Tables, inv: pl.DataFrame, window_start: dt.date, as_of: dt.date
) -> pl.DataFrame:
    """Units received after ``window_start`` inferred from snapshot increases net of sales."""
    empty = pl.DataFrame(schema={"store_id": pl.String, "sku": pl.String, "_recv": pl.Int64})
    if window_start >= as_of:
        return empty
    dates = inv.select("store_id", "date").unique()
    # snapshots in the window plus the one just before it
    before = (
        dates.filter(pl.col("date") <= window_start).group_by("store_id").agg(pl.col("date").max())
    )
    inside = dates.filter(pl.col("date") > window_start)
    keep = pl.concat([before, inside.select(before.columns)]).unique()
    if inside.height == 0:
        return empty
    snaps = inv.join(keep, on=["store_id", "date"], how="inner").select(
        "store_id", "sku", "date", "on_hand"
    )
    # full (store, date) x sku grid so that a SKU missing from a snapshot counts as 0
    grid = (
        keep.join(snaps.select("store_id", "sku").unique(), on="store_id", how="inner")
        .join(snaps, on=["store_id", "sku", "date"], how="left")
        .with_columns(pl.col("on_hand").fill_null(0))
        .sort("store_id", "sku", "date")
        .with_columns(
            pl.col("date").shift(1).over("store_id", "sku").alias("prev_date"),
            pl.col("on_hand").shift(1).over("store_id", "sku").alias("prev_on_hand"),
        )
        .filter(pl.col("prev_date").is_not_null())
    )
    if grid.height == 0:
        return empty
    sales = tables.sales.filter((pl.col("date") > window_start) & (pl.col("date") <= as_of))
    sold = (
        grid.select("store_id", "sku", "date", "prev_date")
        .join(
            sales.select("store_id", "sku", pl.col("date").alias("sdate"), "units"),
            on=["store_id", "sku"],
            how="inner",
        )
        .filter((pl.col("sdate") > pl.col("prev_date")) & (pl.col("sdate") <= pl.col("date")))
        .group_by("store_id", "sku", "date")
        .agg(pl.col("units").sum().alias("_sold"))
    )
    rec = (
        grid.join(sold, on=["store_id", "sku", "date"], how="left")
        .with_columns(
            (pl.col("on_hand") - pl.col("prev_on_hand") + pl.col("_sold").fill_null(0))
            .clip(lower_bound=0)
            .alias("_r")
        )
        .group_by("store_id", "sku")
        .agg(pl.col("_r").sum().cast(pl.Int64).alias("_recv"))
    )
    return rec


def haversine_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Great-circle distance, km (broadcasting)."""
    p1, p2 = np.radians(np.asarray(lat1, float)), np.radians(np.asarray(lat2, float))
    dphi = p2 - p1
    dl = np.radians(np.asarray(lon2, float)) - np.radians(np.asarray(lon1, float))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
    return out


def lane_matrices(
    tables: Tables,
    economics: EconomicsConfig | Settings | None,
    ids: list[str],
    *,
    origins: list[str] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Dense lane matrices over ``ids`` (row = from, column = to).

    Given lanes override distance-derived ones. A location without coordinates has only its
    given lanes: every pair that needs a lane (from ``origins``, default every location) must
    then have one, else :class:`~stocktailor.contract.ContractError` names the stores.

    Returns
    -------
    tuple
        ``(cost_per_unit, cost_per_shipment, lead_time_days)``, each ``(n, n)``; the diagonal
        is 0; a pair with neither coordinates nor a lane that is not needed costs ``inf``
        (lead time: the largest lead time of the network).
    """
    e = _economics(economics)
    index = {s: i for i, s in enumerate(ids)}
    lat, lon = _coordinates(tables, ids)
    km = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    unit = e.lane_cost_per_unit_base + e.lane_cost_per_unit_per_km * km
    fixed = e.lane_cost_per_shipment_base + e.lane_cost_per_shipment_per_km * km
    lead_f = e.lane_lead_time_base_days + np.floor(km / e.lane_km_per_day)
    lanes = tables.lanes
    if lanes is not None and lanes.height:
        fr = lanes["from_id"].to_list()
        to = lanes["to_id"].to_list()
        ok = [i for i, (a, b) in enumerate(zip(fr, to, strict=True)) if a in index and b in index]
        if ok:
            r = np.array([index[fr[i]] for i in ok], dtype=np.int64)
            cidx = np.array([index[to[i]] for i in ok], dtype=np.int64)
            unit[r, cidx] = lanes["cost_per_unit"].to_numpy()[ok]
            fixed[r, cidx] = lanes["cost_per_shipment"].to_numpy()[ok]
            lead_f[r, cidx] = lanes["lead_time_days"].to_numpy()[ok]
    np.fill_diagonal(unit, 0.0)
    np.fill_diagonal(fixed, 0.0)
    np.fill_diagonal(lead_f, 0.0)
    absent = np.isnan(unit)
    if absent.any():
        needed = absent.copy()
        if origins is not None:
            keep = np.array([s in set(origins) for s in ids], dtype=bool)
            needed &= keep[:, None]
        if needed.any():
            raise _no_lanes(ids, lat, lon, needed)
        unit[absent] = np.inf
        fixed[absent] = np.inf
        finite = lead_f[~absent]
        lead_f[absent] = float(finite.max()) if finite.size else 0.0
    return unit, fixed, lead_f.astype(np.int64)


def _coordinates(
    tables: Tables, ids: list[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Latitude and longitude of ``ids`` (NaN where the stores table has none)."""
    st = tables.stores
    have = set(st["store_id"].to_list())
    missing = [s for s in ids if s not in have]
    if missing:
        msg = f"no row for store_id {missing[0]!r} (needed for lanes)"
        raise ContractError(msg, file="stores")
    cols = [
        pl.col(c).cast(pl.Float64) if c in st.columns else pl.lit(None, pl.Float64).alias(c)
        for c in ("latitude", "longitude")
    ]
    xy = (
        pl.DataFrame({"store_id": ids})
        .join(st.select("store_id", *cols), on="store_id", how="left", maintain_order="left")
        .fill_null(float("nan"))
    )
    return xy["latitude"].to_numpy().astype(np.float64), xy["longitude"].to_numpy().astype(
        np.float64
    )


def _no_lanes(
    ids: list[str],
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    needed: npt.NDArray[np.bool_],
) -> ContractError:
    """The one-line error for pairs that have neither coordinates nor a lane."""
    blind = ~(np.isfinite(lat) & np.isfinite(lon))
    names = [ids[i] for i in np.nonzero(blind & (needed.any(axis=0) | needed.any(axis=1)))[0]]
    r, c = np.nonzero(needed)
    pairs = [f"{ids[i]} -> {ids[j]}" for i, j in zip(r[:3].tolist(), c[:3].tolist(), strict=True)]
    more = f" and {len(r) - 3} more" if len(r) > 3 else ""
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    msg = (
        f"stores without latitude/longitude ({shown}) need a lane for every move to or from "
        f"them; the lanes table has no row for {', '.join(pairs)}{more}: add latitude and "
        "longitude to stores or these from_id,to_id rows to lanes"
    )
    return ContractError(msg, file="stores", column="latitude")


def lanes_for(tables: Tables, economics: EconomicsConfig | Settings | None = None) -> pl.DataFrame:
    """Every ordered pair of distinct locations with its costs and lead time.

    Given lanes (the ``lanes`` table) are used as they are; missing pairs are derived from the
    great-circle distance with the ``economics`` rates: cost per unit ``base + per_km * km``
    (currency per unit), cost per shipment ``base + per_km * km`` (currency), lead time
    ``base_days + floor(km / km_per_day)`` (days).

    Returns
    -------
    polars.DataFrame
        ``from_id, to_id, cost_per_unit, cost_per_shipment, lead_time_days``.
    """
    ids = sorted(tables.stores["store_id"].to_list())
    unit, fixed, lead = lane_matrices(tables, economics, ids)
    n = len(ids)
    r, c = np.nonzero(~np.eye(n, dtype=bool))
    arr = np.array(ids, dtype=object)
    return pl.DataFrame(
        {
            "from_id": pl.Series(arr[r].tolist(), dtype=pl.String),
            "to_id": pl.Series(arr[c].tolist(), dtype=pl.String),
            "cost_per_unit": unit[r, c],
            "cost_per_shipment": fixed[r, c],
            "lead_time_days": pl.Series(lead[r, c], dtype=pl.Int64),
        }
    )
