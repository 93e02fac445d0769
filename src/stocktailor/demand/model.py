"""The global LightGBM demand model: censoring-aware store x SKU weekly distributions.

A global LightGBM model learns weekly demand at style x store level across the network. Its
target is *demand*, not sales: days on which the store sold out or was out of stock are
imputed with the censored-Poisson rate of :mod:`stocktailor.censoring` (see
:mod:`stocktailor.demand.history`). Each series carries a multiplicative base (its recent
censoring-corrected level, shrunk toward the style's level in the store's cluster), given to
LightGBM as an offset (``init_score``) together with the known effects of
:mod:`stocktailor.demand.offsets`, so the trees learn how the signals, the calendar and the
product lifecycle move demand away from that base. Style forecasts are split to colour and
size with the store's colour mix and size curve (:mod:`stocktailor.sizecurves`), and every
week gets a negative-binomial distribution (``mean``, ``var``, ``p10/p50/p90``).
"""

from __future__ import annotations

import copy
import datetime as dt
import inspect
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.config import DemandConfig
from stocktailor.contract import FORECAST_SCHEMA, Tables
from stocktailor.demand.distribution import nb_quantiles
from stocktailor.demand.features import (
    calendar_features,
    origin_features,
    origin_now,
    price_features,
    signal_features,
    weather_origin,
    week_start_expr,
)
from stocktailor.demand.history import SS, DemandHistory, demand_view, prepare_history
from stocktailor.demand.offsets import (
    estimate_trend_lead,
    fit_trend_slopes,
    price_elasticities,
    price_offset,
    temperature_curves,
    temperature_offset,
    trend_x,
)
from stocktailor.signals import week_of
from stocktailor.sizecurves import SizeCurveEstimator, size_group_of

__all__ = ["EFFECTS", "SIGNAL_GROUPS", "DemandModel", "HistoryTooShortError", "sku_shares"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[int], None]

SIGNAL_GROUPS = frozenset(
    {"weather", "events", "trends", "economy", "calendar", "store", "product", "price"}
)
EFFECTS = ("temperature", "price", "trend", "lifecycle")
"""Known effects entered as log offsets (switched per group by the selecting forecaster)."""
_NOT_FEATURES = frozenset(
    {
        "store_id",
        "style",
        "week",
        "origin",
        "demand",
        "units",
        "in_stock_share",
        "trend_origin",
        "cluster_id",
        "temp_off",
        "price_off",
        "trend_x",
    }
)


def sku_shares(
    hist: DemandHistory, curves: SizeCurveEstimator, color_prior_units: float
) -> pl.DataFrame:
    """Share of each SKU in its store x style demand: colour mix x size curve.

    The store's colour mix is shrunk toward the network's with ``color_prior_units`` units;
    the size split is the store's fitted size curve (its size group's mean where missing).

    Returns
    -------
    pl.DataFrame
        ``store_id, style, sku, sku_share`` (shares of a store x style sum to 1).
    """
    tables = hist.tables
    pr = tables.products.select("sku", "style", "color", "size")
    if "size_group" in tables.products.columns:
        pr = pr.with_columns(tables.products["size_group"].cast(pl.String))
    else:
        pr = pr.with_columns(size_group_of(tables.products).alias("size_group"))
    wk = hist.sku_weekly
    col_d = wk.group_by("store_id", "style", "color").agg(pl.col("demand").sum().alias("dc"))
    net_c = wk.group_by("style", "color").agg(pl.col("demand").sum().alias("nc"))
    # Rows sorted before each windowed sum: a join's row order changes with polars' per-process
    # hashing, and a float sum's last bits with the order (issue 17: same inputs, same plan).
    colors = pr.select("style", "color").unique()
    net_c = (
        colors.join(net_c, on=["style", "color"], how="left").sort("style", "color")
    ).with_columns(
        (
            (pl.col("nc").fill_null(0.0) + 0.5)
            / (pl.col("nc").fill_null(0.0) + 0.5).sum().over("style")
        ).alias("net_share")
    )
    pairs = hist.carried.select(SS)
    sc = pairs.join(net_c.select("style", "color", "net_share"), on="style", how="inner")
    sc = (
        sc.join(col_d, on=["store_id", "style", "color"], how="left")
        .sort("store_id", "style", "color")
        .with_columns(pl.col("dc").fill_null(0.0))
    )
    a = color_prior_units
    sc = sc.with_columns(
        ((pl.col("dc") + a * pl.col("net_share")) / (pl.col("dc").sum().over(SS) + a)).alias(
            "color_share"
        )
    )
    sk = sc.join(pr, on=["style", "color"], how="inner")
    sk = sk.join(curves.store_curves(), on=["store_id", "size_group", "size"], how="left").sort(
        "store_id", "sku"
    )
    sk = sk.with_columns(
        pl.col("share").fill_null(pl.col("share").mean().over(["size_group", "size"]))
    ).with_columns(pl.col("share").fill_null(1.0))
    sk = sk.with_columns(
        (pl.col("share") / pl.col("share").sum().over([*SS, "color"])).alias("size_share")
    )
    sk = sk.with_columns((pl.col("color_share") * pl.col("size_share")).alias("sku_share"))
    return sk.select("store_id", "style", "sku", "sku_share")


class HistoryTooShortError(ValueError):
    """The history holds no training example (too few weeks with sales and stock)."""


class DemandModel:
    """Global censoring-aware LightGBM demand model with negative-binomial weekly output.

    Parameters are flat, like a scikit-learn estimator; :meth:`from_config` builds one from
    a :class:`~stocktailor.config.DemandConfig` (whose field descriptions document them).

    Parameters
    ----------
    signals
        Signal groups used as features (subset of :data:`SIGNAL_GROUPS`); default all.
        Removing one is how the ablation benchmarks measure what a signal is worth.
    censoring
        Impute demand on censored days (True) or take sales as demand (False).
    random_state
        Seed of LightGBM's bagging and of training-row subsampling.
    **others
        See :class:`~stocktailor.config.DemandConfig` (same names and defaults).

    Attributes
    ----------
    history_
        The :class:`~stocktailor.demand.history.DemandHistory` of the current as-of date.
    as_of_
        As-of date of the current state (``fit`` or the last ``update``).
    booster_
        The trained LightGBM booster (style x store x week, Poisson with log-base offset).
    features_
        Feature names, in booster order.
    dispersion_
        Weekly negative-binomial shape term ``phi`` (var = mean + phi * mean^2).
    level_dispersion_
        Shared level uncertainty ``phi_L`` (the season total has var += phi_L * total^2).
    size_curves_
        The :class:`~stocktailor.sizecurves.SizeCurveEstimator` splitting styles to sizes.
    shares_
        ``store_id, style, sku, sku_share`` (:func:`sku_shares`).
    elasticity_, style_elasticity_
        Pooled log-log price elasticity and ``style, elasticity`` (price offset; only with the
        ``price`` signal and ``price_offset``).
    trend_beta_, store_trend_beta_
        Pooled trend slope and ``{store_id: slope}`` (trend offset; only with ``trends``).
    temperature_curves_
        ``style, tbin, g`` (temperature offset; empty without weather).
    trend_lead_days_
        Days by which trends lead sales (``trend_lead_days``, else estimated by
        :func:`~stocktailor.demand.offsets.estimate_trend_lead`; None: no evidence, and the
        ``trends`` signals are then not used).
    signals_
        The signal groups used.
    """

    def __init__(
        self,
        *,
        signals: frozenset[str] | None = None,
        censoring: bool = True,
        random_state: int = 0,
        censor_threshold_units: int = 0,
        quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9),
        history_days: int = 364,
        num_boost_round: int = 100,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_data_in_leaf: int = 50,
        max_bin: int = 255,
        num_threads: int = 1,
        censor_prior_days: float = 7.0,
        base_prior_weeks: float = 3.0,
        color_prior_units: float = 5.0,
        size_prior_strength: float | None = None,
        trend_lead_days: int | None = None,
        train_origins: int = 8,
        max_horizon_weeks: int = 11,
        max_train_rows: int = 150_000,
        dispersion_scale: float = 1.0,
        level_cv: float = 0.25,
        lifecycle_offset: bool = False,
        lifecycle_damping: float = 0.7,
        temperature_offset: bool = True,
        trend_offset: bool = True,
        trend_beta_sd: float = 0.5,
        trend_beta_prior: float = 0.0,
        price_offset: bool = True,
        price_elasticity_prior: float = 0.0,
        price_elasticity_prior_sd: float = 0.75,
        horizon_weeks: int = 13,
    ) -> None:
        self.signals = SIGNAL_GROUPS if signals is None else frozenset(signals)
        unknown = self.signals - SIGNAL_GROUPS
        if unknown:
            msg = f"DemandModel: unknown signal groups {sorted(unknown)}"
            raise ValueError(msg)
        self.censoring = censoring
        self.random_state = random_state
        self.censor_threshold_units = censor_threshold_units
        self.quantiles = quantiles
        self.history_days = history_days
        self.num_boost_round = num_boost_round
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.max_bin = max_bin
        self.num_threads = num_threads
        self.censor_prior_days = censor_prior_days
        self.base_prior_weeks = base_prior_weeks
        self.color_prior_units = color_prior_units
        self.size_prior_strength = size_prior_strength
        self.trend_lead_days = trend_lead_days
        self.train_origins = train_origins
        self.max_horizon_weeks = max_horizon_weeks
        self.max_train_rows = max_train_rows
        self.dispersion_scale = dispersion_scale
        self.level_cv = level_cv
        self.lifecycle_offset = lifecycle_offset
        self.lifecycle_damping = lifecycle_damping
        self.temperature_offset = temperature_offset
        self.trend_offset = trend_offset
        self.trend_beta_sd = trend_beta_sd
        self.trend_beta_prior = trend_beta_prior
        self.price_offset = price_offset
        self.price_elasticity_prior = price_elasticity_prior
        self.price_elasticity_prior_sd = price_elasticity_prior_sd
        self.horizon_weeks = horizon_weeks

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the constructor parameters."""
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (scikit-learn convention)."""
        return {p: getattr(self, p) for p in self.param_names()}

    @classmethod
    def from_config(cls, config: DemandConfig, **overrides: Any) -> DemandModel:
        """A model with the parameters of ``config`` (``overrides`` win)."""
        names = set(cls.param_names())
        params = {k: v for k, v in config.model_dump().items() if k in names}
        params.update(overrides)
        return cls(**params)

    # -- state ---------------------------------------------------------------------------

    def _history(
        self, tables: Tables, as_of: dt.date, clusters: pl.DataFrame | None
    ) -> DemandHistory:
        return prepare_history(
            tables,
            as_of,
            clusters=clusters,
            history_days=self.history_days,
            threshold_units=self.censor_threshold_units,
            censoring=self.censoring,
            prior_days=self.censor_prior_days,
        )

    def _prepare(
        self,
        hist: DemandHistory,
        size_curves: SizeCurveEstimator | None,
    ) -> None:
        """Adopt ``hist`` as the state: size curves, SKU shares, origins, temperature curves."""
        self.history_ = hist
        self.as_of_ = hist.as_of
        if size_curves is None:
            if hist.events is None:
                msg = "DemandModel: the history's stock events were released; pass size_curves"
                raise ValueError(msg)
            size_curves = SizeCurveEstimator(
                prior_strength=self.size_prior_strength,
                history_days=(hist.as_of - hist.start).days + 1,
                random_state=self.random_state,
            ).fit(hist.tables, hist.as_of, clusters=hist.clusters, events=hist.events)
        self.size_curves_ = size_curves
        # The daily stock events are ~1 GB at 1,000 stores x 20,000 SKU-sizes: free them
        # before the weekly grids are built.
        hist.release_events()
        self.origin_ = origin_features(hist.grid, hist.clusters, self.base_prior_weeks)
        self.origin_now_: pl.DataFrame | None = None
        self.shares_ = sku_shares(hist, size_curves, self.color_prior_units)
        self.temperature_curves_ = pl.DataFrame()
        if "weather" in self.signals and self.temperature_offset:
            temps = hist.signals.climate.select("store_id", "week", "temp_c")
            if temps.height:
                self.temperature_curves_ = temperature_curves(hist.grid, temps)

    def _origin_at(self, week: int) -> pl.DataFrame:
        """Origin features for origin week ``week`` (0 = now, the state after history)."""
        if week < 0:
            return self.origin_.filter(pl.col("week") == week)
        if self.origin_now_ is None:
            h = self.history_
            self.origin_now_ = origin_now(h.grid, h.carried, h.clusters, self.base_prior_weeks)
        return self.origin_now_

    # -- features ------------------------------------------------------------------------

    def _rows(
        self,
        origin_week: int,
        target_weeks: Sequence[int],
        price: pl.DataFrame | None,
        styles: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Feature rows for one origin and several target weeks (optionally some styles)."""
        org = self._origin_at(origin_week)
        if styles is not None:
            org = org.filter(pl.col("style").is_in(list(styles)))
        tw = pl.DataFrame({"week": pl.Series(list(target_weeks), dtype=pl.Int32)})
        rows = org.rename({"week": "origin"}).join(tw, how="cross")
        rows = rows.with_columns((pl.col("week") - pl.col("origin")).alias("h"))
        return self._decorate(rows, price)

    def _decorate(self, rows: pl.DataFrame, price: pl.DataFrame | None) -> pl.DataFrame:
        sig, hist, lead = self.signals_, self.history_, self.trend_lead_days_ or 0
        rows = signal_features(rows, hist, sig, lead)
        if "trends" in sig and "trend" in rows.columns and self.trend_offset:
            rows = trend_x(rows, hist.signals, lead)
        if "weather" in sig and self.temperature_offset:
            temps = hist.signals.climate.select("store_id", "week", "temp_c")
            rows = temperature_offset(rows, temps, self.temperature_curves_)
        if "weather" in sig and "temp_anom" in rows.columns:
            rows = weather_origin(rows, hist)
        if "price" in sig:
            rows = price_features(rows, hist, price)
            if self.price_offset:
                pooled = float(getattr(self, "elasticity_", self.price_elasticity_prior))
                rows = price_offset(
                    rows, pooled, getattr(self, "style_elasticity_", None), hist.price
                )
        if "calendar" in sig:
            rows = calendar_features(rows, hist)
        return rows

    def offset_parts(self, rows: pl.DataFrame) -> dict[str, FloatArray]:
        """The log offsets of ``rows``: ``base`` (log of the series base) and one per known
        effect of :data:`EFFECTS` (0 where the effect is not estimated)."""
        zero = np.zeros(rows.height)
        parts = {"base": np.log(np.maximum(rows["base"].to_numpy(), 1e-3))}
        parts["temperature"] = rows["temp_off"].to_numpy() if "temp_off" in rows.columns else zero
        parts["price"] = rows["price_off"].to_numpy() if "price_off" in rows.columns else zero
        parts["trend"] = zero
        if "trend_x" in rows.columns and hasattr(self, "trend_beta_"):
            b = rows["store_id"].replace_strict(
                self.store_trend_beta_, default=self.trend_beta_, return_dtype=pl.Float64
            )
            parts["trend"] = b.to_numpy() * rows["trend_x"].to_numpy()
        slope = rows["life_slope"].fill_null(0.0).to_numpy() * self.lifecycle_damping
        # An extrapolated slope never moves a week by more than 35 % either way.
        parts["lifecycle"] = np.clip(slope * (rows["h"].to_numpy() + 2.5), -0.3, 0.3)
        return {k: np.asarray(v, dtype=np.float64) for k, v in parts.items()}

    @property
    def default_effects(self) -> frozenset[str]:
        """The effects the booster was trained with (lifecycle only with lifecycle_offset)."""
        return frozenset(e for e in EFFECTS if e != "lifecycle" or self.lifecycle_offset)

    def _offset(self, rows: pl.DataFrame) -> FloatArray:
        """log of the series base plus the known effects (and the lifecycle, if enabled)."""
        parts = self.offset_parts(rows)
        off = parts["base"]
        for e in self.default_effects:
            off = off + parts[e]
        return np.asarray(off, dtype=np.float64)

    def _training_rows(self) -> pl.DataFrame:
        """Sampled (series, origin, target week) training rows with features and target.

        Candidates are every carried series with a positive base at each training origin,
        times the target weeks after it; at most ``max_train_rows`` are drawn uniformly
        *before* features are built, so the cost does not grow with the network (at 1,000
        stores x 20,000 SKU-sizes there are ~30M candidates).
        """
        n_weeks = self.history_.n_weeks
        origins = [o for o in range(-1, -n_weeks, -1) if o > -n_weeks + 1][: self.train_origins]
        cands: list[tuple[pl.DataFrame, list[int]]] = []
        for o in origins:
            targets = [t for t in range(o, 0) if t - o < self.max_horizon_weeks]
            if targets:
                org = self._origin_at(o).filter(pl.col("base") > 0)
                cands.append((org.rename({"week": "origin"}), targets))
        if not cands:
            msg = (
                f"DemandModel.fit: sales history before {self.as_of_} is too short "
                f"({n_weeks} weeks); need at least 3 weeks"
            )
            raise HistoryTooShortError(msg)
        sizes = np.array([org.height * len(tg) for org, tg in cands], dtype=np.int64)
        total = int(sizes.sum())
        if total == 0:  # origins without a stocked series: nothing to learn (shapes fix)
            msg = f"DemandModel.fit: no stocked series at any origin before {self.as_of_}"
            raise HistoryTooShortError(msg)
        rng = np.random.default_rng(self.random_state)
        take = (
            np.arange(total, dtype=np.int64)
            if total <= self.max_train_rows
            else np.sort(rng.choice(total, self.max_train_rows, replace=False))
        )
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        parts = []
        for i, (org, tg) in enumerate(cands):
            sel = take[(take >= bounds[i]) & (take < bounds[i + 1])] - bounds[i]
            if sel.size == 0:
                continue
            weeks = np.asarray(tg, dtype=np.int32)[sel % len(tg)]
            part = org[sel // len(tg)].with_columns(pl.Series("week", weeks, dtype=pl.Int32))
            parts.append(part.with_columns((pl.col("week") - pl.col("origin")).alias("h")))
        rows = pl.concat(parts).join(
            self.history_.grid.select(*SS, "week", "demand", "in_stock_share"),
            on=[*SS, "week"],
            how="inner",
            maintain_order="left",
        )
        return self._decorate(rows, None)

    # -- public API ----------------------------------------------------------------------

    def fit(
        self,
        tables: Tables,
        as_of: dt.date,
        clusters: pl.DataFrame | None = None,
        progress: Progress | None = None,
        *,
        size_curves: SizeCurveEstimator | None = None,
        history: DemandHistory | None = None,
    ) -> DemandModel:
        """Train on history up to ``as_of`` (inclusive).

        Parameters
        ----------
        tables
            Validated tables.
        as_of
            Last day of history.
        clusters
            Optional ``store_id, cluster_id`` used to pool sparse series.
        progress
            Called with 1 per finished stage (4 stages).
        size_curves
            Fitted size curves to split styles into sizes (default: fitted here with
            ``size_prior_strength``), so a plan fits them once for forecast and allocation.
        history
            The prepared history of ``tables`` at ``as_of`` when already built (default:
            built here with this model's window and censoring settings).
        """
        if history is not None and history.as_of != as_of:
            msg = f"DemandModel.fit: history is as of {history.as_of}, not {as_of}"
            raise ValueError(msg)
        tables = demand_view(tables)
        hist = history if history is not None else self._history(tables, as_of, clusters)
        self._prepare(hist, size_curves)
        self.trend_lead_days_ = self.trend_lead_days
        self.signals_ = self.signals
        if "price" in self.signals and self.price_offset:
            self.elasticity_, self.style_elasticity_ = price_elasticities(
                tables,
                as_of,
                hist.start,
                prior=self.price_elasticity_prior,
                prior_sd=self.price_elasticity_prior_sd,
            )
        if progress is not None:
            progress(1)
        for attr in ("trend_beta_", "store_trend_beta_"):
            if hasattr(self, attr):
                delattr(self, attr)
        rows = self._training_rows()
        if rows.height < 10:  # LightGBM cannot bag fewer rows (shapes fix)
            msg = f"DemandModel.fit: {rows.height} training rows in the history before {as_of}"
            raise HistoryTooShortError(msg)
        if self.trend_lead_days is None and "trends" in self.signals:
            rows = self._choose_trend_lead(rows)
        if progress is not None:
            progress(1)
        self.features_ = [
            c for c in rows.columns if c not in _NOT_FEATURES and rows[c].dtype.is_numeric()
        ]
        x = rows.select(self.features_).to_numpy().astype(np.float32)
        y = rows["demand"].to_numpy()
        offset = self._offset(rows)
        if "trend_x" in rows.columns:
            self.trend_beta_, self.store_trend_beta_ = fit_trend_slopes(
                rows, y, offset, prior_sd=self.trend_beta_sd, prior_mean=self.trend_beta_prior
            )
            offset = self._offset(rows)
        self._train(x, y, offset)
        if progress is not None:
            progress(1)
        self._fit_dispersion(rows, x, y, offset)
        if progress is not None:
            progress(1)
        logger.info(
            "demand model fitted: %d rows, %d features, phi=%.3f, phi_L=%.3f",
            rows.height,
            len(self.features_),
            self.dispersion_,
            self.level_dispersion_,
        )
        return self

    def _choose_trend_lead(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Estimate the trend lead on the training rows (built at lead 0) and rebuild them at
        it; without a significant lead the trends are dropped from the signals."""
        if "trend" not in rows.columns:
            self.signals_ = self.signals - {"trends"}
            return rows
        lead, _ = estimate_trend_lead(
            rows,
            rows["demand"].to_numpy(),
            self._offset(rows),
            self.history_.signals,
            prior_sd=self.trend_beta_sd,
        )
        self.trend_lead_days_ = lead
        if lead is None:
            self.signals_ = self.signals - {"trends"}
        if lead != 0:
            rows = self._training_rows()
        return rows

    def _train(self, x: npt.NDArray[np.float32], y: FloatArray, offset: FloatArray) -> None:
        import lightgbm as lgb

        params = {
            "objective": "poisson",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "max_bin": self.max_bin,
            "num_threads": self.num_threads,
            "verbose": -1,
        }
        ds = lgb.Dataset(x, y, init_score=offset, feature_name=self.features_, free_raw_data=True)
        self.booster_ = lgb.train(params, ds, num_boost_round=self.num_boost_round)

    def _fit_dispersion(
        self, rows: pl.DataFrame, x: npt.NDArray[np.float32], y: FloatArray, offset: FloatArray
    ) -> None:
        """Weekly phi by moments; level phi from 4-week sums per series-origin."""
        mu = np.exp(self.booster_.predict(x, raw_score=True) + offset)
        r2 = (y - mu) ** 2 - mu
        phi = float(max(r2.sum() / max(float((mu**2).sum()), 1e-9), 0.0))
        agg = (
            rows.select(*SS, "origin", "h")
            .with_columns(pl.Series("y", y), pl.Series("mu", mu))
            .filter(pl.col("h") < 4)
            .group_by([*SS, "origin"])
            .agg(pl.col("y").sum(), pl.col("mu").sum(), (pl.col("mu") ** 2).sum().alias("mu2"))
        )
        ys, ms, m2 = (agg[c].to_numpy() for c in ("y", "mu", "mu2"))
        lvl = ((ys - ms) ** 2 - ms - phi * m2).sum() / max(float((ms**2).sum()), 1e-9)
        # SKU-level weekly dispersion from daily in-stock sales (7 iid NB days a week).
        phi = max(phi, self.history_.phi_daily / 7.0)
        self.dispersion_ = phi * self.dispersion_scale
        self.level_dispersion_ = float(max(lvl, 0.0)) * self.dispersion_scale + self.level_cv**2

    def for_prediction(self) -> DemandModel:
        """A copy that holds only what :meth:`predict` needs.

        The SKU-level history (weekly SKU demand, training origins) and the sales and
        inventory tables are dropped, so the copy is what a partitioned forecast ships to each
        worker: the booster, the style x store history and the state of every series now, SKU
        shares, prices and the signal tables. It can predict but not :meth:`update` or be
        refitted.
        """
        if not hasattr(self, "booster_"):
            msg = "DemandModel.for_prediction: call fit() first"
            raise ValueError(msg)
        self._origin_at(0)
        slim = copy.copy(self)
        h = self.history_
        tb = h.tables.replace(sales=h.tables.sales.clear(), inventory=h.tables.inventory.clear())
        sw = copy.copy(h.signals)
        sw.tables = tb
        slim.history_ = copy.copy(h)
        slim.history_.tables = tb
        slim.history_.signals = sw
        slim.history_.sku_weekly = h.sku_weekly.clear()
        slim.history_.rates = h.rates.clear()
        slim.history_.events = None
        slim.origin_ = self.origin_.clear()
        return slim

    def update(
        self,
        tables: Tables,
        as_of: dt.date,
        clusters: pl.DataFrame | None = None,
        *,
        size_curves: SizeCurveEstimator | None = None,
        history: DemandHistory | None = None,
    ) -> DemandModel:
        """Move to a new as-of date without retraining the booster (features are rebuilt).

        Cheap weekly refresh for backtests: censoring, base levels, shares, signals and the
        temperature curves are recomputed from ``tables`` up to ``as_of``; the trees,
        dispersion, price elasticities and trend slopes are kept.
        """
        if not hasattr(self, "booster_"):
            msg = "DemandModel.update: call fit() first"
            raise ValueError(msg)
        cl = clusters if clusters is not None else self.history_.clusters
        hist = history if history is not None else self._history(tables, as_of, cl)
        self._prepare(hist, size_curves)
        return self

    def _last_day(self, until: dt.date | None) -> tuple[dt.date, pl.DataFrame]:
        """Last forecast day (``until``, else the latest season end, else ``horizon_weeks``) and the
        products' ``sku, style, season_end``."""
        pr = self.history_.tables.products
        ends = (
            pr.select("sku", "style", "season_end")
            if "season_end" in pr.columns
            else pr.select("sku", "style").with_columns(pl.lit(None, pl.Date).alias("season_end"))
        )
        if until is not None:
            return until, ends
        mx = ends["season_end"].max()
        default = self.as_of_ + dt.timedelta(days=7 * self.horizon_weeks)
        return (mx if isinstance(mx, dt.date) else default), ends

    def predict(
        self,
        until: dt.date | None = None,
        progress: Progress | None = None,
        *,
        price_plan: pl.DataFrame | None = None,
        styles: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Weekly demand distribution per store x SKU from ``as_of + 1`` on.

        Parameters
        ----------
        until
            Last day forecast (default: the latest ``season_end`` of the products). Each SKU
            is forecast up to its own ``season_end``; a week cut by it counts only its days.
        progress
            Called with 1 when done (prediction is vectorised).
        price_plan
            Optional ``style, week_start, price_factor`` (price paid / full price) for future
            weeks, e.g. planned markdowns; default: full price (1.0).
        styles
            Only these styles (used to partition prediction).

        Returns
        -------
        pl.DataFrame
            ``store_id, sku, week_start, mean, var, p10, p50, p90`` (units per week).
        """
        if not hasattr(self, "booster_"):
            msg = "DemandModel.predict: call fit() first"
            raise ValueError(msg)
        as_of = self.as_of_
        last, ends = self._last_day(until)
        n_w = max(0, math.ceil(((last - as_of).days) / 7))
        if n_w == 0:
            return pl.DataFrame(schema=FORECAST_SCHEMA)
        st = self.predict_style(n_w, price_plan=price_plan, styles=styles)
        off = st["off_base"].to_numpy()
        for e in self.default_effects:
            off = off + st[f"off_{e}"].to_numpy()
        mu = np.where(st["base"].to_numpy() > 0, np.exp(st["raw"].to_numpy() + off), 0.0)
        out = self._to_skus(st.select(*SS, "week").with_columns(pl.Series("mu", mu)), ends, last)
        if progress is not None:
            progress(1)
        return out

    def predict_style(
        self,
        n_weeks: int,
        *,
        price_plan: pl.DataFrame | None = None,
        styles: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """The store x style rows of weeks ``0 .. n_weeks - 1`` with the booster's raw score
        and each log offset, so effects can be switched when combining them.

        Returns
        -------
        pl.DataFrame
            ``store_id, style, week, h, base, raw, off_base`` and ``off_<effect>`` for each of
            :data:`EFFECTS`; the mean demand (units per week) of a set of effects ``E`` is
            ``exp(raw + off_base + sum(off_e for e in E))`` where ``base > 0``, else 0.
        """
        if not hasattr(self, "booster_"):
            msg = "DemandModel.predict: call fit() first"
            raise ValueError(msg)
        plan = None
        if price_plan is not None:
            plan = price_plan.select(
                "style",
                week_of(pl.col("week_start"), self.as_of_).alias("week"),
                pl.col("price_factor").cast(pl.Float64),
            )
        rows = self._rows(0, list(range(n_weeks)), plan, styles)
        x = rows.select(self.features_).to_numpy().astype(np.float32)
        raw = self.booster_.predict(x, raw_score=True)
        parts = self.offset_parts(rows)
        return rows.select(*SS, "week", "h", "base").with_columns(
            pl.Series("raw", np.asarray(raw, dtype=np.float64)),
            *[pl.Series(f"off_{k}", v) for k, v in parts.items()],
        )

    def _to_skus(self, st: pl.DataFrame, ends: pl.DataFrame, last: dt.date) -> pl.DataFrame:
        """Style-week means ``mu`` -> SKU-week distributions, cut at each ``season_end``."""
        sk = st.join(self.shares_, on=SS, how="inner").join(
            ends.select("sku", "season_end"), on="sku", how="left"
        )
        end_day = pl.min_horizontal(pl.col("season_end").fill_null(pl.lit(last)), pl.lit(last))
        sk = (
            sk.with_columns(week_start_expr(self.as_of_).alias("week_start"))
            .with_columns(
                (((end_day - pl.col("week_start")).dt.total_days() + 1).clip(0, 7) / 7.0).alias(
                    "_f"
                )
            )
            .filter(pl.col("_f") > 0)
        )
        sk = sk.with_columns((pl.col("mu") * pl.col("sku_share") * pl.col("_f")).alias("mean"))
        tot = sk.group_by("store_id", "sku").agg(pl.col("mean").sum().alias("_tot"))
        sk = sk.join(tot, on=["store_id", "sku"], how="left")
        m = sk["mean"].to_numpy()
        var = m + self.dispersion_ * m**2 + self.level_dispersion_ * m * sk["_tot"].to_numpy()
        q = nb_quantiles(m, var, self.quantiles)
        out = sk.select("store_id", "sku", "week_start").with_columns(
            pl.Series("mean", m),
            pl.Series("var", var),
            pl.Series("p10", q[0]),
            pl.Series("p50", q[1]),
            pl.Series("p90", q[2]),
        )
        return out.sort("store_id", "sku", "week_start").select(list(FORECAST_SCHEMA))
