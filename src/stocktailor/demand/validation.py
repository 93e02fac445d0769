"""Rolling-origin holdout on the workspace's own history: truth, scores, choice, calibration.

The truth of a holdout is censoring-aware: per store x SKU and week, the demand of the days
on which the pair had stock (sales; a day that sold out counts ``E[D | D >= sales]``, since
a sell-out day is selected by its high demand) and the number of those days; a forecast of
``m`` units per week is scored against them as ``m * in_days / 7``. Days out of stock all day
carry no truth, so a forecast is never rewarded for predicting lost sales.

Candidates are compared by the Poisson deviance of the pair totals (its minimum is the
expected demand, where the absolute error of noisy small counts favours forecasts below it);
the WAPE and bias are reported alongside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.demand.distribution import nb_quantiles
from stocktailor.demand.history import DemandHistory

__all__ = [
    "GROUP_LEVELS",
    "VALIDATION_COLUMNS",
    "calibrate_dispersion",
    "choose",
    "group_keys",
    "holdout_truth",
    "pair_scores",
    "shrunk_bias",
    "validation_summary",
]

FloatArray = npt.NDArray[np.float64]

GROUP_LEVELS = ("category|cluster", "category", "all")
"""Grouping levels from finest to coarsest: a thin group falls back to the next."""

VALIDATION_COLUMNS = {
    "group": pl.String,
    "level": pl.String,
    "candidate": pl.String,
    "holdout_wape": pl.Float64,
    "holdout_bias": pl.Float64,
    "chosen": pl.Boolean,
    "holdout_deviance": pl.Float64,
    "pairs": pl.Int64,
    "holdout_units": pl.Float64,
    "origins": pl.Int64,
    "horizon_weeks": pl.Int64,
    "decided_at": pl.String,
    "bias_factor": pl.Float64,
    "level_dispersion": pl.Float64,
    "coverage_p10_p90": pl.Float64,
    "effects": pl.String,
}
"""Columns of the validation table (one row per group x candidate)."""


def holdout_truth(
    hist: DemandHistory, k: int, weeks: int, skus: pl.DataFrame | None = None
) -> pl.DataFrame:
    """In-stock truth of the ``weeks`` weeks after the origin ``k`` weeks before ``hist.as_of``.

    Parameters
    ----------
    hist
        The prepared history.
    k
        The origin, weeks before ``hist.as_of``.
    weeks
        Weeks of the holdout.
    skus
        Only these SKUs (a ``sku`` column; default all): a validation on a sample of styles
        builds the truth of its sample only (every pair's is ~3 GB at 1,000 stores x 20,000
        SKU-sizes).

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, week, units_in, in_days`` with ``week`` relative to the origin
        (0 .. weeks - 1), for every pair tracked at the origin: the demand of the days with
        stock (units) and the number of those days.
    """
    prods = hist.tables.products.select("sku", "style")
    weekly = hist.sku_weekly
    if skus is not None:
        prods = prods.join(skus.select("sku"), on="sku", how="semi")
        weekly = weekly.join(skus.select("sku"), on="sku", how="semi")
    start = (
        hist.carried.join(prods, on="style", how="inner")
        .filter(pl.col("w0") <= -k - 1)
        .select("store_id", "sku")
    )
    wk = pl.DataFrame({"week": pl.Series(range(weeks), dtype=pl.Int32)})
    obs = weekly.filter((pl.col("week") >= -k) & (pl.col("week") < -k + weeks)).select(
        "store_id",
        "sku",
        (pl.col("week") + k).cast(pl.Int32).alias("week"),
        pl.col("demand_sold").alias("units_in"),
        (7.0 - pl.col("out_days")).clip(0.0, 7.0).alias("in_days"),
    )
    return (
        start.join(wk, how="cross")
        .join(obs, on=["store_id", "sku", "week"], how="left")
        .with_columns(pl.col("units_in").fill_null(0.0), pl.col("in_days").fill_null(7.0))
    )


def pair_scores(pred: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Per pair: the forecast over its in-stock days and the truth, over the holdout.

    Parameters
    ----------
    pred
        ``store_id, sku, week, mean`` (units per week; missing = 0).
    truth
        :func:`holdout_truth`.

    Returns
    -------
    pl.DataFrame
        ``store_id, sku, pred, actual, pred_w, actual_w, deviance`` (totals, the weekly
        lists, and the Poisson deviance of the totals).
    """
    j = truth.join(pred, on=["store_id", "sku", "week"], how="left").with_columns(
        (pl.col("mean").fill_null(0.0) * pl.col("in_days") / 7.0).alias("p")
    )
    # Sorted and grouped in that order: every float sum adds its terms in one order, so the
    # scores (and each choice and factor drawn from them) repeat from process to process.
    out = (
        j.filter(pl.col("in_days").sum().over("store_id", "sku") > 0)
        .sort("store_id", "sku", "week")
        .group_by("store_id", "sku", maintain_order=True)
        .agg(
            pl.col("p").sum().alias("pred"),
            pl.col("units_in").sum().alias("actual"),
            pl.col("p").alias("pred_w"),
            pl.col("units_in").alias("actual_w"),
        )
    )
    return out.with_columns(poisson_deviance(pl.col("actual"), pl.col("pred")).alias("deviance"))


def poisson_deviance(y: pl.Expr, mu: pl.Expr, floor: float = 0.05) -> pl.Expr:
    """Unit Poisson deviance ``2 (y log(y / mu) - (y - mu))`` (``mu`` floored, units)."""
    m = mu.clip(lower_bound=floor)
    ylog = pl.when(y > 0).then(y * (y / m).log()).otherwise(0.0)
    return 2.0 * (ylog - (y - m))


def group_keys(
    products: pl.DataFrame, clusters: pl.DataFrame | None, stores: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The group of each SKU (``sku, category``) and store (``store_id, cluster``)."""
    cat = pl.col("category").cast(pl.String) if "category" in products.columns else pl.lit("all")
    skus = products.select("sku", cat.fill_null("none").alias("category"))
    st = pl.DataFrame({"store_id": list(stores)}, schema={"store_id": pl.String})
    if clusters is not None:
        st = st.join(
            clusters.select("store_id", pl.col("cluster_id").cast(pl.String).alias("cluster")),
            on="store_id",
            how="left",
        )
    else:
        st = st.with_columns(pl.lit(None, pl.String).alias("cluster"))
    return skus, st.with_columns(pl.col("cluster").fill_null("all"))


def with_groups(frame: pl.DataFrame, skus: pl.DataFrame, stores: pl.DataFrame) -> pl.DataFrame:
    """Add ``g_category|cluster``, ``g_category`` and ``g_all`` to a store x SKU frame."""
    return (
        frame.join(skus, on="sku", how="left")
        .join(stores, on="store_id", how="left")
        .with_columns(
            (pl.col("category").fill_null("none") + "|" + pl.col("cluster").fill_null("all")).alias(
                "g_category|cluster"
            ),
            pl.col("category").fill_null("none").alias("g_category"),
            pl.lit("all").alias("g_all"),
        )
        .drop("category", "cluster")
    )


def shrunk_bias(
    pred: FloatArray, actual: FloatArray, prior_units: float, sd: float = 0.15
) -> float:
    """Level factor ``actual / pred`` over the holdout origins, shrunk in logs toward 1.

    Each origin's log ratio has sampling variance ``1 / actual + 1 / prior_units``; the
    factor is their precision-weighted mean times ``tau^2 / (tau^2 + v)`` where ``v`` is the
    variance of that mean, the larger of the sampling one and the spread between origins,
    and ``tau = sd`` the prior spread of real level errors. Clipped to [0.5, 2].
    """
    p = np.asarray(pred, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    ok = (p > 0) & (a > 0)
    if not ok.any():
        return 1.0
    r = np.log(a[ok] / p[ok])
    w = 1.0 / (1.0 / a[ok] + 1.0 / max(prior_units, 1e-9))
    mean = float((w * r).sum() / w.sum())
    v = 1.0 / float(w.sum())
    if r.size > 1:
        v = max(v, float(((r - mean) ** 2).sum() / (r.size - 1)) / r.size)
    lam = sd**2 / (sd**2 + v)
    return float(np.clip(math.exp(lam * mean), 0.5, 2.0))


def _coverage(actual: FloatArray, mean: FloatArray, var: FloatArray) -> float:
    if actual.size == 0:
        return float("nan")
    lo, hi = nb_quantiles(mean, var, (0.1, 0.9))
    return float(((actual >= lo) & (actual <= hi)).mean())


_PHI_GRID = np.concatenate([[0.0], np.exp(np.linspace(np.log(1e-3), np.log(20.0), 60))])


def calibrate_dispersion(
    totals: tuple[FloatArray, FloatArray],
    weekly: tuple[FloatArray, FloatArray],
    phi_week: float,
    target: float = 0.8,
) -> tuple[float, float, float]:
    """Level and weekly dispersion so that p10-p90 covers ``target`` of the holdout.

    A horizon total of mean ``M`` has variance ``M + phi_week * sum(m_w^2) + phi_level * M^2``;
    ``phi_level`` is the smallest value of a grid whose coverage of the pair totals reaches
    ``target``; then ``phi_week`` is raised (never lowered) until the weekly marginal
    ``m + (phi_week + phi_level) m^2`` covers ``target`` of the pair-weeks.

    Parameters
    ----------
    totals
        Forecast and actual holdout totals per pair (units, after the bias factor).
    weekly
        Forecast and actual per pair-week (units).
    phi_week
        The forecast's own weekly dispersion (a floor).

    Returns
    -------
    tuple of float
        ``phi_level, phi_week, coverage`` (coverage of the totals at the chosen values).
    """
    m, a = totals
    mw, aw = weekly
    # Weekly squares per pair are not kept: approximate sum(m_w^2) by M^2 / weeks.
    n_w = max(1.0, mw.size / max(m.size, 1))
    phi_level = float(_PHI_GRID[-1])
    for phi in _PHI_GRID:
        var = m + phi_week * m**2 / n_w + phi * m**2
        if _coverage(a, m, var) >= target:
            phi_level = float(phi)
            break
    for phi in (p for p in _PHI_GRID if p >= phi_week):
        if _coverage(aw, mw, mw + (phi + phi_level) * mw**2) >= target:
            phi_week = float(phi)
            break
    var = m + phi_week * m**2 / n_w + phi_level * m**2
    return phi_level, phi_week, _coverage(a, m, var)


def group_scores(scores: pl.DataFrame, level: str) -> pl.DataFrame:
    """Per group of ``level`` and candidate: WAPE, bias, mean deviance, pairs and units."""
    col = f"g_{level}"
    return (
        scores.group_by(col, "candidate")
        .agg(
            pl.col("abs_err").sum(),
            pl.col("pred").sum(),
            pl.col("actual").sum().alias("units"),
            pl.col("deviance").mean().alias("holdout_deviance"),
            pl.struct("store_id", "sku").n_unique().alias("pairs"),
        )
        .with_columns(
            (pl.col("abs_err") / pl.col("units").clip(lower_bound=1e-9)).alias("holdout_wape"),
            (pl.col("pred") / pl.col("units").clip(lower_bound=1e-9) - 1.0).alias("holdout_bias"),
        )
        .rename({col: "group"})
    )


def choose(
    scores: pl.DataFrame,
    min_units: float,
    min_pairs: int,
    candidates: Sequence[str],
    margin: float = 0.02,
) -> pl.DataFrame:
    """The candidate chosen for each group, falling back to a coarser level when thin.

    Levels are decided from the network down: a group with enough holdout units and pairs
    takes the candidate of smallest mean Poisson deviance when it beats its parent group's
    choice by more than ``margin`` (relative) on the group's own pairs; otherwise (and when
    thin) it keeps the parent's choice. Ties go to the earlier of ``candidates``.

    Parameters
    ----------
    scores
        ``g_category|cluster, g_category, g_all, store_id, sku, candidate, pred, actual,
        abs_err, deviance`` per pair x candidate x origin.
    min_units, min_pairs
        A group decides for itself only with this many holdout units and pairs.

    Returns
    -------
    pl.DataFrame
        ``level, group, candidate, holdout_wape, holdout_bias, holdout_deviance, pairs,
        holdout_units, decided_at, chosen`` (one row per group x candidate of every level).
    """
    out = []
    decided: dict[str, tuple[str, str]] = {}
    order = {c: i for i, c in enumerate(candidates)}
    for level in reversed(GROUP_LEVELS):
        agg = group_scores(scores, level)
        col = f"g_{level}"
        parent_of = dict(
            scores.select(pl.col(col).alias("_g"), pl.col(_parent(level)).alias("_p"))
            .unique("_g")
            .iter_rows()
        )
        for (group,), part in agg.sort("group").group_by(["group"], maintain_order=True):
            units = float(np.max(part["units"].to_numpy()))
            pairs = int(np.max(part["pairs"].to_numpy()))
            thick = units >= min_units and pairs >= min_pairs
            inherited = decided.get(str(parent_of[group])) if level != "all" else None
            ranked = part.sort(
                "holdout_deviance", pl.col("candidate").replace_strict(order, default=99)
            )
            best = str(ranked["candidate"][0])
            pick = inherited
            if inherited is None:
                pick = (best, level)
            elif thick:
                dev = dict(zip(part["candidate"], part["holdout_deviance"], strict=True))
                ref = dev.get(inherited[0], float("inf"))
                if dev[best] < ref * (1.0 - margin):
                    pick = (best, level)
            assert pick is not None
            decided[str(group)] = pick
            out.append(
                part.with_columns(
                    pl.lit(level).alias("level"),
                    (pl.col("candidate") == pick[0]).alias("chosen"),
                    pl.lit(pick[1]).alias("decided_at"),
                )
            )
    return pl.concat(out).select(
        "level",
        pl.col("group").cast(pl.String),
        "candidate",
        "holdout_wape",
        "holdout_bias",
        "holdout_deviance",
        pl.col("pairs").cast(pl.Int64),
        pl.col("units").alias("holdout_units"),
        "decided_at",
        "chosen",
    )


def _parent(level: str) -> str:
    i = GROUP_LEVELS.index(level)
    return f"g_{GROUP_LEVELS[min(i + 1, len(GROUP_LEVELS) - 1)]}"


def validation_summary(validation: pl.DataFrame) -> pl.DataFrame:
    """A short view of a validation table: per candidate, its holdout WAPE and bias on the
    whole network and in how many category x cluster groups it was chosen."""
    if validation.is_empty():
        return validation
    net = validation.filter(pl.col("level") == "all").select(
        "candidate", "holdout_wape", "holdout_bias", "chosen"
    )
    fin = validation.filter((pl.col("level") == GROUP_LEVELS[0]) & pl.col("chosen"))
    n = fin.group_by("candidate").agg(pl.len().cast(pl.Int64).alias("groups_chosen"))
    return (
        net.join(n, on="candidate", how="left")
        .with_columns(pl.col("groups_chosen").fill_null(0))
        .rename({"chosen": "chosen_network"})
        .sort("holdout_wape", nulls_last=True)
    )
