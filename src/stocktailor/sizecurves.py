"""Size curves per store and cluster, from in-stock periods only, shrunk when data is thin.

A size curve gives the share of each size of a size group (apparel XS..XXL, footwear 36..46,
...) in a store's demand for a style offering the whole ladder. Sales of a size that was out of
stock say nothing about its demand, so only in-stock days enter: with ``u`` units sold of SKU
(style-colour ``j``, size ``z``) over ``e`` in-stock days, the model is

    u_jz ~ Poisson(e_jz * theta_j * c_z)

with ``theta_j`` the style-colour's level in the store and ``c`` the curve, fitted by
alternating updates. Store curves are shrunk toward their cluster's curve and cluster curves
toward the network's with Gamma priors worth ``kappa`` units: ``c_z ~ Gamma(kappa * p_z,
kappa)`` around the parent curve ``p``, so the estimate is ``(U_z + kappa p_z) / (E_z +
kappa)`` (``U`` units sold in stock, ``E`` exposure at share 1). By default ``kappa`` is chosen
per level and size group by empirical Bayes: it maximises the marginal (negative-binomial)
likelihood of the stores' size counts, i.e. it is as large as the stores' curves are alike.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl
from scipy import special

from stocktailor.censoring import pair_demand_rates
from stocktailor.contract import Tables, size_order

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
        before its own curve dominates). None (default): estimated per level and size group by
        empirical Bayes (marginal likelihood over a log grid from 10 to 100,000 units).
    n_iter
        Alternating updates of style levels and curves.
    tilt
        Shrink toward the parent curve tilted by the unit's own size skew (one log-linear
        slope in size rank per store or cluster and size group, itself shrunk toward no
        skew by empirical Bayes) instead of the parent curve as it is.
    history_days
        Days of history used.
    random_state
        Kept for the estimator convention (the fit is deterministic).

    Attributes
    ----------
    curves_
        ``level (store|cluster|network), id, size_group, size, share`` (shares of a level/id/
        group sum to 1 over the group's ladder).
    prior_strength_
        ``level (store|cluster), size_group, kappa``: the prior weight used, units.
    """

    def __init__(
        self,
        prior_strength: float | None = None,
        *,
        n_iter: int = 15,
        tilt: bool = True,
        history_days: int = 364,
        threshold_units: int = 0,
        random_state: int = 0,
    ) -> None:
        self.prior_strength = prior_strength
        self.n_iter = n_iter
        self.tilt = tilt
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
        lad_first = (
            lad.group_by("size_group", "size").agg(pl.col("_o").min()).sort("size_group", "_o")
        )
        # Rank the union of a group's sizes (styles' own ranks differ with their size runs).
        rows: list[tuple[str, str, int]] = []
        for (group,), part in lad_first.group_by(["size_group"], maintain_order=True):
            ranks = size_order(part["size"].to_list())
            rows.extend((str(group), z, ranks[z]) for z in part["size"].to_list())
        self._ladder = pl.DataFrame(
            rows,
            schema={"size_group": pl.String, "size": pl.String, "_o": pl.Int64},
            orient="row",
        ).sort("size_group", "_o", "size")
        obs = obs.with_columns((pl.col("style") + "\x1f" + pl.col("color")).alias("sc"))
        self._kappas: list[pl.DataFrame] = []
        net = self._fit_level(obs, "network", None)
        clu = self._fit_level(obs, "cluster", net)
        sto = self._fit_level(obs, "store", clu)
        self.curves_ = pl.concat([sto, clu, net]).select(
            "level", "id", "size_group", "size", "share"
        )
        self.prior_strength_ = pl.concat(self._kappas).sort("level", "size_group")
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
        ids = o.select("id", "pid", "size_group").unique()
        if level == "network":
            # Every size group has a network curve, sold or not (uniform without sales).
            ids = self._ladder.select(
                pl.lit("network").alias("id"), pl.lit("network").alias("pid"), "size_group"
            ).unique()
        units = ids.join(self._ladder.select("size_group", "size"), on="size_group", how="inner")
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
        # Series key: a style-colour in a store (levels are per store even when pooled).
        o = o.with_columns((pl.col("store_id") + "\x1f" + pl.col("sc")).alias("ser"))
        groups = units.select("size_group").unique()
        if parent is None:
            kappa = groups.with_columns(pl.lit(1e-6).alias("kappa"))
        else:
            kappa = groups.with_columns(pl.lit(float(self.prior_strength or 0.0)).alias("kappa"))
        if parent is not None and (self.prior_strength is None or self.tilt):
            # Fit once at a moderate weight for the exposures; then tilt each unit's prior
            # toward its own size skew and/or pick each group's weight by empirical Bayes.
            start = groups.with_columns(pl.lit(300.0).alias("kappa"))
            _, ue = self._iterate(o, units, start, n_iter=max(3, self.n_iter // 3))
            if self.tilt:
                units = _tilted_prior(units, ue, self._ladder)
                ue = ue.drop("prior").join(
                    units.select("id", "size_group", "size", "prior"),
                    on=["id", "size_group", "size"],
                    how="left",
                )
            if self.prior_strength is None:
                kappa = _eb_kappa(ue)
        if parent is not None:
            self._kappas.append(kappa.select(pl.lit(level).alias("level"), "size_group", "kappa"))
        curve, _ = self._iterate(o, units, kappa)
        return curve.select(
            pl.lit(level).alias("level"), "id", "size_group", "size", pl.col("c").alias("share")
        ).sort("id", "size_group", "size")

    def _iterate(
        self,
        o: pl.DataFrame,
        units: pl.DataFrame,
        kappa: pl.DataFrame,
        *,
        n_iter: int | None = None,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Alternating updates of series levels and curves at prior weight ``kappa`` per group.

        Returns the curve (``id, size_group, size, c``) and the final in-stock units and
        exposures (``id, size_group, size, U, E, prior``).
        """
        units = units.join(kappa, on="size_group", how="left").with_columns(
            pl.col("kappa").fill_null(1e-6)
        )
        curve = units.select("id", "size_group", "size", pl.col("prior").alias("c"))
        totals = o.group_by("id", "size_group", "size").agg(pl.col("u").sum().alias("U"))
        upd = units.with_columns(pl.lit(0.0).alias("U"), pl.lit(0.0).alias("E"))
        for _ in range(self.n_iter if n_iter is None else n_iter):
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
                    (
                        (pl.col("U") + pl.col("kappa") * pl.col("prior"))
                        / (pl.col("E") + pl.col("kappa") + 1e-12)
                    ).alias("c")
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
        return curve, upd.select("id", "size_group", "size", "U", "E", "prior")

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


_KAPPA_GRID = np.exp(np.linspace(np.log(10.0), np.log(1e5), 81))


def _eb_kappa(ue: pl.DataFrame) -> pl.DataFrame:
    """Prior weight per size group maximising the marginal likelihood of the size counts.

    Each unit's count of size ``z`` is ``U_z ~ Poisson(E_z c_z)`` with ``c_z ~ Gamma(kappa
    p_z, kappa)``, so ``U_z`` is negative binomial: the log marginal likelihood (up to terms
    free of ``kappa``) is summed over units and sizes and maximised over a log grid.

    Parameters
    ----------
    ue
        ``id, size_group, size, U, E, prior`` (units, exposure at share 1, parent share).

    Returns
    -------
    pl.DataFrame
        ``size_group, kappa`` (units).
    """
    rows: list[tuple[str, float]] = []
    for (group,), part in ue.filter(pl.col("prior") > 0).group_by(["size_group"]):
        u = part["U"].to_numpy().astype(np.float64)[:, None]
        e = np.maximum(part["E"].to_numpy().astype(np.float64), 0.0)[:, None]
        p = part["prior"].to_numpy().astype(np.float64)[:, None]
        k = _KAPPA_GRID[None, :]
        a = k * p
        ll = (
            special.gammaln(u + a)
            - special.gammaln(a)
            + a * np.log(k / (k + e))
            + u * np.log(np.where(e > 0, e, 1.0) / (k + e))
        ).sum(axis=0)
        rows.append((str(group), float(_KAPPA_GRID[int(np.argmax(ll))])))
    return pl.DataFrame(rows, schema={"size_group": pl.String, "kappa": pl.Float64}, orient="row")


def _tilted_prior(units: pl.DataFrame, ue: pl.DataFrame, ladder: pl.DataFrame) -> pl.DataFrame:
    """Parent curve tilted by each unit's size skew: ``p_z exp(b x_z)`` renormalised.

    ``x_z`` is the size's centred rank in its group's ladder; ``b`` maximises the Poisson
    likelihood of the unit's counts ``U_z ~ Poisson(a E_z p_z exp(b x_z))`` (scale ``a``
    profiled out, Newton steps) and is then shrunk toward 0 by empirical Bayes: with the
    estimate's variance ``se^2`` and the spread of true slopes ``tau^2 = mean(b^2 - se^2)``
    over the group's units, ``b * tau^2 / (tau^2 + se^2)``.

    Parameters
    ----------
    units
        ``id, size_group, size, prior, ...`` (one row per unit and ladder size).
    ue
        ``id, size_group, size, U, E`` from a first fit (units and exposure at share 1).
    ladder
        ``size_group, size`` in size order.

    Returns
    -------
    pl.DataFrame
        ``units`` with ``prior`` replaced by the tilted prior.
    """
    rank = ladder.with_columns(pl.int_range(pl.len()).over("size_group").alias("_r")).select(
        "size_group",
        "size",
        (pl.col("_r") - pl.col("_r").cast(pl.Float64).mean().over("size_group")).alias("x"),
    )
    d = (
        units.select("id", "size_group", "size", "prior")
        .join(ue.select("id", "size_group", "size", "U", "E"), on=["id", "size_group", "size"])
        .join(rank, on=["size_group", "size"], how="inner")
        .sort("size_group", "id", "x")
        .with_columns(pl.struct("size_group", "id").rank("dense").alias("_u"))
    )
    if d.is_empty():
        return units
    uid = d["_u"].to_numpy().astype(np.int64) - 1
    n_u = int(uid.max()) + 1
    u = d["U"].to_numpy().astype(np.float64)
    w = d["E"].to_numpy().astype(np.float64) * d["prior"].to_numpy().astype(np.float64)
    x = d["x"].to_numpy().astype(np.float64)
    b = np.zeros(n_u)
    info = np.zeros(n_u)
    tot = np.bincount(uid, weights=u, minlength=n_u)
    for _ in range(25):
        ew = w * np.exp(np.clip(b[uid] * x, -30.0, 30.0))
        s0 = np.bincount(uid, weights=ew, minlength=n_u)
        s1 = np.bincount(uid, weights=ew * x, minlength=n_u)
        s2 = np.bincount(uid, weights=ew * x * x, minlength=n_u)
        s0 = np.maximum(s0, 1e-12)
        mean_x = s1 / s0
        # Profile log-likelihood sum_z U_z (b x_z) - U log sum_z w_z e^(b x_z): gradient and
        # information (U times the tilted variance of x).
        grad = np.bincount(uid, weights=u * x, minlength=n_u) - tot * mean_x
        info = np.maximum(tot * (s2 / s0 - mean_x**2), 1e-12)
        step = np.clip(grad / info, -0.5, 0.5)
        b = np.clip(b + step, -3.0, 3.0)
        if np.max(np.abs(step)) < 1e-6:
            break
    se2 = np.where(tot > 0, 1.0 / info, np.inf)
    gid = d.group_by("_u").agg(pl.col("size_group").first()).sort("_u")["size_group"].to_numpy()
    shrunk = np.zeros(n_u)
    for g in np.unique(gid):
        m = (gid == g) & np.isfinite(se2)
        if not m.any():
            continue
        tau2 = max(float(np.mean(b[m] ** 2 - se2[m])), 0.0)
        shrunk[m] = b[m] * tau2 / (tau2 + se2[m])
    d = d.with_columns((pl.col("prior") * np.exp(shrunk[uid] * x)).alias("prior")).with_columns(
        pl.col("prior") / pl.col("prior").sum().over("id", "size_group")
    )
    return units.drop("prior").join(
        d.select("id", "size_group", "size", "prior"), on=["id", "size_group", "size"], how="left"
    )
