"""Lines grouped into recommendations a planner reads: one style-colour on one lane, with the
size breakdown inside, and groups of lanes between clusters ("move 50 units from three
suburban stores to three urban ones")."""

from __future__ import annotations

import polars as pl

from stocktailor.money import format_money

__all__ = ["RECOMMENDATION_SCHEMA", "summarise_recommendations"]

RECOMMENDATION_SCHEMA: dict[str, pl.DataType] = {
    "recommendation_id": pl.String(),
    "kind": pl.String(),
    "style": pl.String(),
    "color": pl.String(),
    "from_id": pl.String(),
    "to_id": pl.String(),
    "lines": pl.Int64(),
    "units": pl.Int64(),
    "sizes": pl.String(),
    "expected_gain": pl.Float64(),
    "transfer_cost": pl.Float64(),
    "net_benefit": pl.Float64(),
    "from_group": pl.String(),
    "to_group": pl.String(),
    "group_id": pl.String(),
    "group_summary": pl.String(),
}
"""One row per recommendation (style-colour x lane): its lines and units, the units per size
(``"S 10, M 25, L 15"``), P&L totals (currency), the cluster (else region) of both ends, and the
group of recommendations of the same style-colour between the same two groups of stores with
a one-sentence summary."""


def _lines(allocation: pl.DataFrame | None, transfers: pl.DataFrame | None) -> pl.DataFrame:
    cols = ["recommendation_id", "style", "color", "size", "sku", "from_id", "to_id", "units"]
    cols += ["expected_gain", "transfer_cost", "net_benefit"]
    parts = []
    for kind, f in (("allocation", allocation), ("transfer", transfers)):
        if f is None or f.height == 0 or "recommendation_id" not in f.columns:
            continue
        parts.append(f.select(cols).with_columns(pl.lit(kind).alias("kind")))
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts, how="vertical_relaxed")


def _groups_of(stores: pl.DataFrame | None, clusters: pl.DataFrame | None) -> pl.DataFrame | None:
    """``store_id, group`` from the cluster names, else the regions (None = none)."""
    if clusters is not None and "store_id" in clusters.columns:
        col = "cluster_name" if "cluster_name" in clusters.columns else "cluster_id"
        if col in clusters.columns:
            return clusters.select(
                pl.col("store_id").cast(pl.String), pl.col(col).cast(pl.String).alias("group")
            )
    if stores is not None and "region" in stores.columns:
        return stores.select(
            pl.col("store_id").cast(pl.String), pl.col("region").cast(pl.String).alias("group")
        )
    return None


def summarise_recommendations(
    allocation: pl.DataFrame | None,
    transfers: pl.DataFrame | None,
    *,
    clusters: pl.DataFrame | None = None,
    stores: pl.DataFrame | None = None,
    size_order: pl.DataFrame | None = None,
    currency: str = "USD",
) -> pl.DataFrame:
    """Recommendations (:data:`RECOMMENDATION_SCHEMA`) from a plan's lines.

    Parameters
    ----------
    allocation, transfers
        The plan's lines with ``recommendation_id`` (:func:`plan_network`).
    clusters, stores
        Store groups for ``from_group`` / ``to_group``: cluster names, else regions.
    size_order
        ``sku, size_order`` to list sizes in ladder order (default: by size label).
    currency
        ISO 4217 code of the net benefit in ``group_summary`` (``settings.economics.currency``).
    """
    lines = _lines(allocation, transfers)
    if lines.height == 0:
        return pl.DataFrame(schema=RECOMMENDATION_SCHEMA)
    if size_order is not None and "size_order" in size_order.columns:
        lines = lines.join(size_order.select("sku", "size_order"), on="sku", how="left")
    else:
        lines = lines.with_columns(pl.lit(None, dtype=pl.Float64).alias("size_order"))
    lines = lines.sort("recommendation_id", "size_order", "size", nulls_last=True)
    rec = lines.group_by("recommendation_id", maintain_order=True).agg(
        pl.col("kind").first(),
        pl.col("style").first(),
        pl.col("color").first(),
        pl.col("from_id").first(),
        pl.col("to_id").first(),
        pl.len().cast(pl.Int64).alias("lines"),
        pl.col("units").sum().cast(pl.Int64),
        pl.format("{} {}", pl.col("size"), pl.col("units")).str.join(", ").alias("sizes"),
        pl.col("expected_gain").sum(),
        pl.col("transfer_cost").sum(),
        pl.col("net_benefit").sum(),
    )
    groups = _groups_of(stores, clusters)
    if groups is None:
        rec = rec.with_columns(
            pl.col("from_id").alias("from_group"), pl.col("to_id").alias("to_group")
        )
    else:
        rec = rec.join(
            groups.rename({"store_id": "from_id", "group": "from_group"}), on="from_id", how="left"
        ).join(groups.rename({"store_id": "to_id", "group": "to_group"}), on="to_id", how="left")
        rec = rec.with_columns(
            pl.col("from_group").fill_null(pl.col("from_id")),
            pl.col("to_group").fill_null(pl.col("to_id")),
        )
    return _with_groups(rec, currency).sort(
        "net_benefit", "recommendation_id", descending=[True, False]
    )


def _ends(count: str, first: str, group: str) -> pl.Expr:
    """``ST013`` for one location, ``3 <group> stores`` for several."""
    many = pl.format("{} {} stores", pl.col(count), pl.col(group))
    return pl.when(pl.col(count) == 1).then(pl.col(first)).otherwise(many)


def _with_groups(rec: pl.DataFrame, currency: str) -> pl.DataFrame:
    """``group_id`` and ``group_summary`` per style-colour x (from group, to group); the
    summary's net benefit is in ``currency`` whole units."""
    keys = ["kind", "style", "color", "from_group", "to_group"]
    g = (
        rec.group_by(keys)
        .agg(
            pl.col("units").sum().alias("_u"),
            pl.col("from_id").n_unique().alias("_nf"),
            pl.col("to_id").n_unique().alias("_nt"),
            pl.col("from_id").first().alias("_f1"),
            pl.col("to_id").first().alias("_t1"),
            pl.col("net_benefit").sum().alias("_net"),
        )
        .sort(["_net", *keys], descending=[True, False, False, False, False, False])
        .with_row_index("_k", offset=1)
    )
    money = [format_money(float(v), currency, cents=False) for v in g["_net"]]
    g = g.with_columns(pl.Series("_money", money, dtype=pl.String))
    verb = (
        pl.when(pl.col("kind") == "allocation").then(pl.lit("Allocate")).otherwise(pl.lit("Move"))
    )
    g = g.with_columns(
        pl.format("G{}", pl.col("_k").cast(pl.String).str.zfill(5)).alias("group_id"),
        pl.format(
            "{} {} units of {} {} from {} to {}, net benefit {}",
            verb,
            pl.col("_u"),
            pl.col("style"),
            pl.col("color"),
            _ends("_nf", "_f1", "from_group"),
            _ends("_nt", "_t1", "to_group"),
            pl.col("_money"),
        ).alias("group_summary"),
    )
    out = rec.join(g.select(*keys, "group_id", "group_summary"), on=keys, how="left")
    return out.select(list(RECOMMENDATION_SCHEMA)).cast(RECOMMENDATION_SCHEMA)  # type: ignore[arg-type]
