"""Size curves per store and cluster, from in-stock periods only, shrunk when data is thin.

A size curve gives the share of each size of a size group (apparel XS..XXL, footwear 36..46,
...) in a store's demand for a style offering the whole ladder. Sales of a size that was out of
stock say nothing about its demand, so only in-stock days enter: with ``u`` units sold of SKU
(style-colour ``j``, size ``z``) over ``e`` in-stock days, the model is

    u_jz ~ Poisson(e_jz * theta_j * c_z)

with ``theta_j`` the style-colour's level in the store and ``c`` the curve, fitted by
alternating updates. Store curves are shrunk toward their cluster's curve and cluster curves
toward the network's with Gamma priors worth ``prior_strength`` units.
"""

from __future__ import annotations

import datetime as dt
import logging

import polars as pl

from stocktailor.censoring import pair_demand_rates
from stocktailor.contract import Tables

__all__ = ["SizeCurveEstimator", "size_group_of", "total_variation"]

logger = logging.getLogger(__name__)

_APPAREL = {"XXS", "XS", "S", "M", "L", "XL", "XXL", "XXXL", "2XL", "3XL"}


def size_group_of(products: pl.DataFrame) -> pl.Series:
    """Size group of each product: the ``size_group`` column, else inferred from sizes.

    Letter sizes are ``apparel``, numeric sizes from 30 to 50 ``footwear``, anything else
    the product's category.
    """
    if "size_group" in products.columns:
        return products["size_group"].cast(pl.String).alias("size_group")
    size = pl.col("size").cast(pl.String).str.to_uppercase()
    num = pl.col("size").cast(pl.String).str.replace(",", ".").cast(pl.Float64, strict=False)
    expr = (
        pl.when(size.is_in(list(_APPAREL)))
        .then(pl.lit("apparel"))
        .when(num.is_between(30, 50))
        .then(pl.lit("footwear"))
        .otherwise(pl.col("category").cast(pl.String))
    )
    return products.select(expr.alias("size_group"))["size_group"]


def total_variation(a: pl.DataFrame, b: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    """Total variation distance between two sets of curves (``on`` keys + ``size, share``).

    Returns ``on`` keys and ``tv`` = 0.5 * sum |share_a - share_b| over sizes (shares are
    renormalised over the union of sizes; a missing size has share 0).
    """
    j = (
        a.select(*on, "size", pl.col("share").alias("sa"))
        .join(
            b.select(*on, "size", pl.col("share").alias("sb")),
            on=[*on, "size"],
            how="full",
            coalesce=True,
        )
        .with_columns(pl.col("sa").fill_null(0.0), pl.col("sb").fill_null(0.0))
    )
    j = j.with_columns(
        (pl.col("sa") / pl.col("sa").sum().over(on)).fill_nan(0.0),
        (pl.col("sb") / pl.col("sb").sum().over(on)).fill_nan(0.0),
    )
    return (
        j.group_by(on).agg((0.5 * (pl.col("sa") - pl.col("sb")).abs().sum()).alias("tv")).sort(on)
    )


class SizeCurveEstimator:
    """Store, cluster and network size curves from in-stock sales.

    Parameters
    ----------
    prior_strength
        Weight of the parent curve (cluster for a store, network for a cluster), in units of
        expected sales at share 1 (roughly: how many units a store must sell of a size group
        before its own curve dominates).
    n_iter
        Alternating updates of style levels and curves.
    history_days
        Days of history used.
    random_state
        Kept for the estimator convention (the fit is deterministic).

    Attributes
    ----------
    curves_
        ``level (store|cluster|network), id, size_group, size, share`` (shares of a level/id/
        group sum to 1 over the group's ladder).
    """

    def __init__(
        self,
        prior_strength: float = 300.0,
        *,
        n_iter: int = 15,
        history_days: int = 364,
        threshold_units: int = 0,
        random_state: int = 0,
    ) -> None:
        self.prior_strength = prior_strength
        self.n_iter = n_iter
        self.history_days = history_days
        self.threshold_units = threshold_units
        self.random_state = random_state

    def fit(
        self,
        tables: Tables,
        as_of: dt.date,
        clusters: pl.DataFrame | None = None,
        *,
        events: tuple[pl.DataFrame, pl.DataFrame] | None = None,
    ) -> SizeCurveEstimator:
        """Estimate curves from history up to ``as_of``.

        Parameters
        ----------
        tables
            Validated tables.
        as_of
            Last day of history.
        clusters
            Optional ``store_id, cluster_id`` (default: one cluster of all stores).
        events
            Precomputed :func:`stocktailor.censoring.stock_events` output for the same
            window (saves recomputing it).
        """
        start = as_of - dt.timedelta(days=self.history_days - 1)
        first = tables.sales["date"].min()
        if isinstance(first, dt.date):
            start = max(start, first)
        rates = pair_demand_rates(
            tables,
            as_of,
            start=start,
            threshold_units=self.threshold_units,
            prior_days=0.0,
            events=events,
        )
        pr = tables.products.select("sku", "style", "color", "size").with_columns(
            size_group_of(tables.products)
        )
        obs = rates.select(
            "store_id",
            "sku",
            pl.col("in_stock_units").cast(pl.Float64).alias("u"),
            pl.col("in_stock_days").cast(pl.Float64).alias("e"),
        ).join(pr, on="sku", how="inner")
        if clusters is not None:
            cl = clusters.select("store_id", pl.col("cluster_id").cast(pl.String))
        else:
            cl = obs.select("store_id").unique().with_columns(pl.lit("all").alias("cluster_id"))
        obs = obs.join(cl, on="store_id", how="left").with_columns(
            pl.col("cluster_id").fill_null("unassigned")
        )
        # Ladder of each size group: every size seen in products, in size order.
        order_col = "size_order" if "size_order" in tables.products.columns else None
        lad = tables.products.select(
            size_group_of(tables.products),
            pl.col("size").cast(pl.String),
            (pl.col(order_col) if order_col else pl.lit(0)).alias("_o"),
        )
        self._ladder = (
            lad.group_by("size_group", "size")
            .agg(pl.col("_o").min())
            .sort("size_group", "_o", "size")
        )
        obs = obs.with_columns((pl.col("style") + "\x1f" + pl.col("color")).alias("sc"))
        net = self._fit_level(obs, "network", None)
        clu = self._fit_level(obs, "cluster", net)
        sto = self._fit_level(obs, "store", clu)
        self.curves_ = pl.concat([sto, clu, net]).select(
            "level", "id", "size_group", "size", "share"
        )
        self._store_cluster = obs.select("store_id", "cluster_id").unique()
        return self

    def _fit_level(
        self, obs: pl.DataFrame, level: str, parent: pl.DataFrame | None
    ) -> pl.DataFrame:
        """Curves of every unit of ``level`` (network / cluster / store)."""
        if level == "network":
            o = obs.with_columns(pl.lit("network").alias("id"), pl.lit("network").alias("pid"))
        elif level == "cluster":
            o = obs.with_columns(pl.col("cluster_id").alias("id"), pl.lit("network").alias("pid"))
        else:
            o = obs.with_columns(pl.col("store_id").alias("id"), pl.col("cluster_id").alias("pid"))
        # Each (id, size group) has the full ladder; prior = parent curve (uniform at top).
        units = (
            o.select("id", "pid", "size_group")
            .unique()
            .join(self._ladder.select("size_group", "size"), on="size_group", how="inner")
        )
        if parent is not None:
            units = units.join(
                parent.select(
                    pl.col("id").alias("pid"), "size_group", "size", pl.col("share").alias("prior")
                ),
                on=["pid", "size_group", "size"],
                how="left",
            )
        else:
            units = units.with_columns(pl.lit(None, pl.Float64).alias("prior"))
        units = units.with_columns(
            pl.col("prior").fill_null(1.0 / pl.len().over("id", "size_group"))
        )
        kappa = self.prior_strength if parent is not None else 1e-6
        # Series key: a style-colour in a store (levels are per store even when pooled).
        o = o.with_columns((pl.col("store_id") + "\x1f" + pl.col("sc")).alias("ser"))
        curve = units.select("id", "size_group", "size", pl.col("prior").alias("c"))
        totals = o.group_by("id", "size_group", "size").agg(pl.col("u").sum().alias("U"))
        for _ in range(self.n_iter):
            oc = o.join(curve, on=["id", "size_group", "size"], how="left").with_columns(
                pl.col("c").fill_null(0.0)
            )
            theta = oc.group_by("ser").agg(
                (
                    pl.col("u").sum() / (pl.col("e") * pl.col("c")).sum().clip(lower_bound=1e-9)
                ).alias("theta")
            )
            ex = (
                oc.join(theta, on="ser", how="left")
                .group_by("id", "size_group", "size")
                .agg((pl.col("e") * pl.col("theta")).sum().alias("E"))
            )
            # Gamma prior worth kappa units of exposure at the parent curve:
            # c_z = (U_z + kappa * prior_z) / (E_z + kappa).
            upd = (
                units.join(totals, on=["id", "size_group", "size"], how="left")
                .join(ex, on=["id", "size_group", "size"], how="left")
                .with_columns(pl.col("U").fill_null(0.0), pl.col("E").fill_null(0.0))
                .with_columns(
                    ((pl.col("U") + kappa * pl.col("prior")) / (pl.col("E") + kappa + 1e-12)).alias(
                        "c"
                    )
                )
            )
            upd = upd.with_columns(
                pl.when(pl.col("E") + pl.col("U") <= 0)
                .then(pl.col("prior"))
                .otherwise(pl.col("c"))
                .alias("c")
            )
            upd = upd.with_columns(
                (pl.col("c") / pl.col("c").sum().over("id", "size_group")).alias("c")
            )
            curve = upd.select("id", "size_group", "size", "c")
        return curve.select(
            pl.lit(level).alias("level"), "id", "size_group", "size", pl.col("c").alias("share")
        ).sort("id", "size_group", "size")

    def store_curves(self) -> pl.DataFrame:
        """``store_id, size_group, size, share`` for every store seen in the fit."""
        c = self.curves_.filter(pl.col("level") == "store")
        return c.select(pl.col("id").alias("store_id"), "size_group", "size", "share")

    def curve_for(self, store_id: str, size_group: str) -> pl.DataFrame:
        """The curve of one store (falls back to its cluster, then the network)."""
        for level, key in (("store", store_id),):
            c = self.curves_.filter(
                (pl.col("level") == level)
                & (pl.col("id") == key)
                & (pl.col("size_group") == size_group)
            )
            if c.height:
                return c.select("size", "share")
        c = self.curves_.filter(
            (pl.col("level") == "network") & (pl.col("size_group") == size_group)
        )
        return c.select("size", "share")
