"""The selecting forecaster: every forecast is validated on the workspace's own history.

:class:`DemandForecaster` holds out the last weeks of the history at one or more rolling
origins (the holdout scaled to the history's length), refits every candidate on the history
before each origin, and scores it on the holdout with a censoring-aware error (in-stock days
only, :mod:`stocktailor.demand.validation`). Per category x store cluster (a coarser group
when a group is thin) it chooses the candidate with the smallest error, switches each known
effect of the LightGBM candidate (temperature, price, trend, lifecycle) on only where it
improved the holdout, calibrates the level (the holdout bias, shrunk toward none) and the
spread (so that p10-p90 covers 80 % of the holdout), and caps dormant pairs at their recent
history. :attr:`DemandForecaster.validation_` says what was chosen and why.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from stocktailor.config import DemandConfig
from stocktailor.contract import FORECAST_SCHEMA, Tables
from stocktailor.demand.assemble import dormant_caps, lgbm_skus, split_styles, weekly_distribution
from stocktailor.demand.candidates import SIMPLE_CANDIDATES, YEAR, SimpleCandidate
from stocktailor.demand.effects import decide_effects, level_of, with_blend
from stocktailor.demand.history import (
    SS,
    DemandHistory,
    demand_view,
    events_until,
    prepare_history,
    with_backcast_snapshots,
)
from stocktailor.demand.model import EFFECTS, DemandModel, sku_shares
from stocktailor.demand.validation import (
    GROUP_LEVELS,
    VALIDATION_COLUMNS,
    calibrate_dispersion,
    choose,
    group_keys,
    holdout_truth,
    pair_scores,
    shrunk_bias,
    with_groups,
)
from stocktailor.sizecurves import SizeCurveEstimator

__all__ = ["CANDIDATES", "DemandForecaster"]

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]

CANDIDATES = ("lgbm", *SIMPLE_CANDIDATES, "blend")
"""Every candidate the forecaster knows (see :mod:`stocktailor.demand.candidates`)."""
_BLEND_SIZE = 3


class DemandForecaster:
    """Chooses, calibrates and combines demand candidates on a rolling-origin holdout.

    Parameters
    ----------
    model
        The LightGBM candidate's settings (a :class:`DemandModel`, cloned per origin).
    candidates
        Candidates to validate (subset of :data:`CANDIDATES`; ``seasonal*`` only run with a
        year plus the holdout of history).
    n_origins
        Rolling origins of the holdout (fewer when the history is short).
    max_holdout_weeks
        Longest holdout, weeks (the holdout is a third of the history, at most the horizon).
    min_group_units, min_group_pairs
        A group chooses for itself only with this many holdout units and pairs; else it
        takes its parent's choice (category, then the network).
    bias_prior_units
        Prior weight of "no bias" in the level calibration, units.
    coverage
        Target share of the holdout inside p10-p90.
    dormant_weeks
        A pair with no sales in this many weeks is never forecast above the larger of its
        weekly demand's 90th percentile and its mean over the last year.
    horizon_weeks
        Forecast horizon of SKUs without a ``season_end``, weeks.
    history_days
        Days of history prepared (longer than the LightGBM window so that seasonal
        candidates see last year).
    validation_max_series
        Store x style series validated at most (a random sample of styles above).
    validation_train_rows
        LightGBM training rows of the holdout refits at most.
    effect_tolerance
        Relative holdout improvement an effect must bring to be switched on.
    random_state
        Seed of the style sample and of the LightGBM refits.

    Attributes
    ----------
    validation_
        One row per group x candidate: :data:`~stocktailor.demand.validation.
        VALIDATION_COLUMNS` (``chosen`` true for exactly one candidate per group).
    choice_
        ``group, candidate, bias_factor, level_dispersion, week_dispersion, effects`` per
        finest group (category|cluster) that has pairs.
    holdout_weeks_, origins_
        The holdout length (weeks) and origins (weeks before ``as_of``).
    """

    def __init__(
        self,
        model: DemandModel | None = None,
        *,
        candidates: Sequence[str] = CANDIDATES,
        n_origins: int = 2,
        max_holdout_weeks: int = 13,
        min_group_units: float = 300.0,
        min_group_pairs: int = 30,
        bias_prior_units: float = 300.0,
        coverage: float = 0.8,
        dormant_weeks: int = 8,
        horizon_weeks: int = 13,
        history_days: int = 728,
        validation_max_series: int = 20_000,
        validation_train_rows: int = 60_000,
        effect_tolerance: float = 0.002,
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.candidates = tuple(candidates)
        unknown = set(self.candidates) - set(CANDIDATES)
        if unknown:
            msg = f"DemandForecaster: unknown candidates {sorted(unknown)}; expected {CANDIDATES}"
            raise ValueError(msg)
        self.n_origins = n_origins
        self.max_holdout_weeks = max_holdout_weeks
        self.min_group_units = min_group_units
        self.min_group_pairs = min_group_pairs
        self.bias_prior_units = bias_prior_units
        self.coverage = coverage
        self.dormant_weeks = dormant_weeks
        self.horizon_weeks = horizon_weeks
        self.history_days = history_days
        self.validation_max_series = validation_max_series
        self.validation_train_rows = validation_train_rows
        self.effect_tolerance = effect_tolerance
        self.random_state = random_state

    @classmethod
    def from_config(cls, config: DemandConfig, **overrides: Any) -> DemandForecaster:
        """A forecaster with the settings of ``config`` (``overrides`` win; pass
        ``horizon_weeks=settings.season.horizon_weeks``)."""
        params: dict[str, Any] = {
            "model": DemandModel.from_config(
                config, horizon_weeks=overrides.get("horizon_weeks", 13)
            ),
            "candidates": config.candidates,
            "n_origins": config.validation_origins,
            "max_holdout_weeks": config.max_holdout_weeks,
            "min_group_units": config.min_group_units,
            "min_group_pairs": config.min_group_pairs,
            "bias_prior_units": config.bias_prior_units,
            "dormant_weeks": config.dormant_weeks,
            "history_days": max(config.history_days, config.seasonal_history_days),
            "validation_max_series": config.validation_max_series,
            "validation_train_rows": config.validation_train_rows,
            "random_state": config.random_state,
        }
        params.update(overrides)
        return cls(**params)

    # -- fit -----------------------------------------------------------------------------

    def _model(self, **overrides: Any) -> DemandModel:
        base = self.model if self.model is not None else DemandModel()
        params = base.get_params()
        params.update(random_state=self.random_state, **overrides)
        return DemandModel(**params)

    def _history(
        self, tables: Tables, as_of: dt.date, clusters: pl.DataFrame | None, events: Any = None
    ) -> DemandHistory:
        m = self._model()
        return prepare_history(
            tables,
            as_of,
            clusters=clusters,
            history_days=max(self.history_days, m.history_days),
            threshold_units=m.censor_threshold_units,
            censoring=m.censoring,
            prior_days=m.censor_prior_days,
            events=events,
        )

    def fit(
        self,
        tables: Tables,
        as_of: dt.date,
        clusters: pl.DataFrame | None = None,
        progress: Progress | None = None,
        *,
        size_curves: SizeCurveEstimator | None = None,
        history: DemandHistory | None = None,
    ) -> DemandForecaster:
        """Validate the candidates on the history up to ``as_of``, then fit the chosen ones.

        Parameters
        ----------
        tables
            Validated tables (returns are netted into the demand target).
        as_of
            Last day of history.
        clusters
            Optional ``store_id, cluster_id``: groups and pooling.
        progress
            Called with 1 per finished stage.
        size_curves
            Fitted size curves (default: fitted here with the model's prior).
        history
            The prepared history at ``as_of`` (default: built here).
        """
        tables = demand_view(tables)
        hist = history if history is not None else self._history(tables, as_of, clusters)
        if hist.events is None:
            msg = "DemandForecaster.fit: the history's stock events were released"
            raise ValueError(msg)
        m = self._model()
        curves = size_curves
        if curves is None:
            curves = SizeCurveEstimator(
                prior_strength=m.size_prior_strength,
                history_days=(hist.as_of - hist.start).days + 1,
                random_state=self.random_state,
            ).fit(tables, as_of, clusters=clusters, events=hist.events)
        self.as_of_, self.size_curves_, self.clusters_ = as_of, curves, clusters
        self.tables_ = tables
        self.phi_week_ = hist.phi_daily / 7.0
        n_h = self._horizon(hist)
        self.holdout_weeks_ = int(np.clip(min(n_h, hist.n_weeks // 3), 1, self.max_holdout_weeks))
        self.origins_ = [
            self.holdout_weeks_ * i
            for i in range(1, self.n_origins + 1)
            if hist.n_weeks - self.holdout_weeks_ * i >= 3
        ]
        scores = self._validate(tables, hist, clusters, curves)
        # the daily stock events (0.6 GB of frames at 1,000 stores x 20,000 SKU-sizes) served
        # the size curves and the origins' histories; nothing after the validation reads them
        hist.release_events()
        if progress is not None:
            progress(1)
        self._decide(scores, hist, clusters)
        if progress is not None:
            progress(1)
        self._fit_final(tables, hist, clusters, curves)
        if progress is not None:
            progress(1)
        return self

    def _horizon(self, hist: DemandHistory) -> int:
        """Forecast horizon in weeks: to the latest season end, else ``horizon_weeks``."""
        pr = hist.tables.products
        se = pr["season_end"].max() if "season_end" in pr.columns else None
        if isinstance(se, dt.date):
            return max(1, math.ceil((se - hist.as_of).days / 7))
        return self.horizon_weeks

    def _sample_styles(self, hist: DemandHistory) -> list[str] | None:
        """Styles validated (None = all): a random sample above ``validation_max_series``."""
        n = hist.carried.height
        if n <= self.validation_max_series:
            return None
        per = hist.carried.group_by("style").len().sort("style")
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(per.height)
        cum = np.cumsum(per["len"].to_numpy()[order])
        k = int(np.searchsorted(cum, self.validation_max_series)) + 1
        return sorted(per["style"].to_numpy()[order[:k]].tolist())

    def _validate(
        self,
        tables: Tables,
        hist: DemandHistory,
        clusters: pl.DataFrame | None,
        curves: SizeCurveEstimator,
    ) -> pl.DataFrame:
        """Pair scores of every candidate (and LightGBM effect variant) at every origin."""
        assert hist.events is not None
        styles = self._sample_styles(hist)
        events = hist.events
        skus: pl.DataFrame | None = None
        vt = tables
        if styles is not None:
            skus = tables.products.filter(pl.col("style").is_in(styles)).select("sku")
            vt = tables.replace(
                sales=tables.sales.join(skus, on="sku", how="semi"),
                inventory=tables.inventory.join(skus, on="sku", how="semi"),
            )
            events = (
                events[0].join(skus, on="sku", how="semi"),
                events[1].join(skus, on="sku", how="semi"),
            )
        # A single snapshot at as_of: the origins track the back-cast positions (of the
        # sampled SKUs only when the styles are sampled: a pair's back-cast is its own).
        vt = with_backcast_snapshots(vt, hist.as_of)
        out = []
        for k in self.origins_:
            origin = hist.as_of - dt.timedelta(days=7 * k)
            h_o = self._history(vt, origin, clusters, events_until(events, vt, origin))
            truth = holdout_truth(hist, k, self.holdout_weeks_, skus)
            for name, pred in self._origin_predictions(vt, h_o, hist, k, curves):
                sc = pair_scores(pred, truth).with_columns(
                    pl.lit(name).alias("candidate"), pl.lit(k).alias("origin")
                )
                out.append(sc)
        if not out:
            return pl.DataFrame()
        return (
            pl.concat(out)
            .with_columns((pl.col("pred") - pl.col("actual")).abs().alias("abs_err"))
            .sort("candidate", "origin", "store_id", "sku")
        )

    def _origin_predictions(
        self,
        vt: Tables,
        h_o: DemandHistory,
        hist: DemandHistory,
        k: int,
        curves: SizeCurveEstimator,
    ) -> list[tuple[str, pl.DataFrame]]:
        """``(candidate, store_id/sku/week/mean)`` of every candidate fitted at the origin."""
        h = self.holdout_weeks_
        shares = sku_shares(h_o, curves, self._model().color_prior_units)
        preds: list[tuple[str, pl.DataFrame]] = []
        for name in self.candidates:
            if name in ("lgbm", "blend"):
                continue
            if name.startswith("seasonal") and h_o.n_weeks < YEAR + h:
                continue
            preds.append((name, SimpleCandidate(name).fit(h_o, shares).predict(h)))
        if "lgbm" in self.candidates:
            m = self._model(
                max_train_rows=min(self._model().max_train_rows, self.validation_train_rows)
            )
            try:
                m.fit(
                    vt,
                    h_o.as_of,
                    clusters=h_o.clusters,
                    size_curves=curves,
                    history=h_o.last_weeks(m.history_days // 7),
                )
            except ValueError as exc:
                logger.info("lgbm candidate skipped at origin -%d weeks: %s", k, exc)
                return preds
            realised = hist.price.filter((pl.col("week") >= -k) & (pl.col("week") < -k + h))
            plan = realised.select(
                "style",
                (
                    pl.lit(h_o.as_of)
                    + pl.duration(days=1 + 7 * (pl.col("week") + k).cast(pl.Int64))
                ).alias("week_start"),
                "price_factor",
            )
            st = m.predict_style(h, price_plan=plan)
            full = m.default_effects
            variants = {"lgbm": full}
            for e in full:
                variants[f"lgbm-{e}"] = full - {e}
            variants["lgbm+lifecycle"] = full | {"lifecycle"}
            for name, eff in variants.items():
                preds.append((name, lgbm_skus(st, m.shares_, eff)))
        return preds

    def _decide(
        self, scores: pl.DataFrame, hist: DemandHistory, clusters: pl.DataFrame | None
    ) -> None:
        """Choose per group, decide the effects, calibrate level and spread."""
        sku_g, store_g = group_keys(hist.tables.products, clusters, hist.tables.store_ids.to_list())
        self.group_skus_, self.group_stores_ = sku_g, store_g
        if scores.is_empty():
            self._no_validation(hist)
            return
        scores = with_groups(scores, sku_g, store_g)
        base = scores.filter(~pl.col("candidate").str.contains("[-+]"))
        self.blend_: list[str] = []
        if "blend" in self.candidates:
            base, self.blend_ = with_blend(base, _BLEND_SIZE)
        names = [c for c in self.candidates if c in set(base["candidate"].unique().to_list())]
        table = choose(base, self.min_group_units, self.min_group_pairs, names)
        effects = decide_effects(
            scores,
            self._model().default_effects,
            min_units=self.min_group_units,
            min_pairs=self.min_group_pairs,
            tolerance=self.effect_tolerance,
        )
        calib = self._calibrate(base, table)
        self._finish(table, effects, calib)
        # Groups without holdout pairs (e.g. a category that only starts now) take the
        # network's choice, calibrated on the whole holdout.
        pick = str(table.filter((pl.col("level") == "all") & pl.col("chosen"))["candidate"].item())
        b, phi_l, phi_w, _ = self._calibration(base.filter(pl.col("candidate") == pick))
        self.fallback_ = {
            "candidate": pick,
            "bias_factor": b,
            "level_dispersion": phi_l,
            "week_dispersion": phi_w,
            "effects": ",".join(sorted(self._model().default_effects)),
        }

    def _calibrate(
        self, base: pl.DataFrame, table: pl.DataFrame
    ) -> dict[str, tuple[float, float, float, float]]:
        """Per finest group: ``bias, phi_level, phi_week, coverage`` of its chosen candidate,
        calibrated on the finest group around it (itself, its category, the network) with
        enough holdout data."""
        fin = table.filter((pl.col("level") == GROUP_LEVELS[0]) & pl.col("chosen"))
        size = {
            (str(lv), str(g), str(c)): (u, p)
            for lv, g, c, u, p in table.select(
                "level", "group", "candidate", "holdout_units", "pairs"
            ).iter_rows()
        }
        cache: dict[tuple[str, str, str], tuple[float, float, float, float]] = {}
        out = {}
        for g, cand in fin.select("group", "candidate").iter_rows():
            at = "all"
            for lv in GROUP_LEVELS:
                u, p = size.get((lv, level_of(str(g), lv), str(cand)), (0.0, 0))
                if u >= self.min_group_units and p >= self.min_group_pairs:
                    at = lv
                    break
            gid = level_of(str(g), at)
            key = (at, gid, str(cand))
            if key not in cache:
                rows = base.filter((pl.col(f"g_{at}") == gid) & (pl.col("candidate") == cand))
                cache[key] = self._calibration(rows)
            out[str(g)] = cache[key]
        return out

    def _calibration(self, rows: pl.DataFrame) -> tuple[float, float, float, float]:
        """Level factor and dispersion of one group's holdout rows (pairs x origins)."""
        by_o = (
            rows.group_by("origin").agg(pl.col("pred").sum(), pl.col("actual").sum()).sort("origin")
        )
        b = shrunk_bias(by_o["pred"].to_numpy(), by_o["actual"].to_numpy(), self.bias_prior_units)
        m = rows["pred"].to_numpy() * b
        a = rows["actual"].to_numpy()
        mw = rows["pred_w"].explode().to_numpy().astype(np.float64) * b
        aw = rows["actual_w"].explode().to_numpy().astype(np.float64)
        phi_l, phi_w, cov = calibrate_dispersion((m, a), (mw, aw), self.phi_week_, self.coverage)
        return b, phi_l, phi_w, cov

    def _finish(
        self,
        table: pl.DataFrame,
        effects: dict[str, tuple[frozenset[str], str]],
        calib: dict[str, tuple[float, float, float, float]],
    ) -> None:
        """Build ``choice_`` and ``validation_`` from the decisions."""
        fin = table.filter((pl.col("level") == GROUP_LEVELS[0]) & pl.col("chosen"))
        default_eff = self._model().default_effects
        rows = []
        for g, cand in fin.select("group", "candidate").iter_rows():
            b, phi_l, phi_w, cov = calib[str(g)]
            eff, note = effects.get(str(g), (default_eff, ""))
            rows.append((str(g), str(cand), b, phi_l, phi_w, cov, ",".join(sorted(eff)), note))
        self.choice_ = pl.DataFrame(
            rows,
            schema={
                "group": pl.String,
                "candidate": pl.String,
                "bias_factor": pl.Float64,
                "level_dispersion": pl.Float64,
                "week_dispersion": pl.Float64,
                "coverage_p10_p90": pl.Float64,
                "effects": pl.String,
                "effects_note": pl.String,
            },
            orient="row",
        )
        ch = self.choice_.select(
            "group",
            "bias_factor",
            "level_dispersion",
            "coverage_p10_p90",
            pl.col("effects_note").alias("effects"),
            pl.lit(True).alias("chosen"),
            pl.lit(GROUP_LEVELS[0]).alias("level"),
        )
        v = table.join(ch, on=["level", "group", "chosen"], how="left").with_columns(
            pl.lit(len(self.origins_)).cast(pl.Int64).alias("origins"),
            pl.lit(self.holdout_weeks_).cast(pl.Int64).alias("horizon_weeks"),
        )
        self.validation_ = v.select(list(VALIDATION_COLUMNS)).cast(VALIDATION_COLUMNS)  # type: ignore[arg-type]
        self.validation_ = self.validation_.sort(
            pl.col("level").replace_strict({lv: i for i, lv in enumerate(GROUP_LEVELS)}),
            "group",
            "holdout_wape",
        )

    def _no_validation(self, hist: DemandHistory) -> None:
        """Too short a history for a holdout: velocity everywhere, uncalibrated."""
        logger.info(
            "forecast: %d weeks of history, no holdout possible; using the velocity candidate",
            hist.n_weeks,
        )
        self.blend_ = []
        groups = (
            with_groups(
                self.group_skus_.join(self.group_stores_, how="cross").select("store_id", "sku"),
                self.group_skus_,
                self.group_stores_,
            )["g_category|cluster"]
            .unique()
            .sort()
        )
        self.choice_ = pl.DataFrame(
            {
                "group": groups,
                "candidate": "velocity",
                "bias_factor": 1.0,
                "level_dispersion": 0.25,
                "week_dispersion": self.phi_week_,
                "coverage_p10_p90": None,
                "effects": "",
                "effects_note": "no holdout",
            },
            schema_overrides={"coverage_p10_p90": pl.Float64},
        )
        self.fallback_ = {
            "candidate": "velocity",
            "bias_factor": 1.0,
            "level_dispersion": 0.25,
            "week_dispersion": self.phi_week_,
            "effects": "",
        }
        self.validation_ = self.choice_.select(
            "group",
            pl.lit(GROUP_LEVELS[0]).alias("level"),
            "candidate",
            pl.lit(None, pl.Float64).alias("holdout_wape"),
            pl.lit(None, pl.Float64).alias("holdout_bias"),
            pl.lit(True).alias("chosen"),
            pl.lit(None, pl.Float64).alias("holdout_deviance"),
            pl.lit(0).alias("pairs"),
            pl.lit(0.0).alias("holdout_units"),
            pl.lit(0).alias("origins"),
            pl.lit(0).alias("horizon_weeks"),
            pl.lit("no holdout").alias("decided_at"),
            "bias_factor",
            "level_dispersion",
            "coverage_p10_p90",
            pl.col("effects_note").alias("effects"),
        ).cast(VALIDATION_COLUMNS)  # type: ignore[arg-type]

    def _fit_final(
        self,
        tables: Tables,
        hist: DemandHistory,
        clusters: pl.DataFrame | None,
        curves: SizeCurveEstimator,
    ) -> None:
        """Fit the chosen candidates on the whole history; dormant caps."""
        m = self._model()
        self.shares_ = sku_shares(hist, curves, m.color_prior_units)
        self.caps_ = dormant_caps(hist, self.dormant_weeks)
        used = set(self.choice_["candidate"].to_list())
        if "blend" in used:
            used |= set(self.blend_)
        self.used_ = sorted(used - {"blend"})
        self.simple_: dict[str, SimpleCandidate] = {}
        for name in self.used_:
            if name != "lgbm":
                self.simple_[name] = SimpleCandidate(name).fit(hist, self.shares_)
        self.model_: DemandModel | None = None
        if "lgbm" in self.used_:
            self.model_ = m.fit(
                tables,
                hist.as_of,
                clusters=clusters,
                size_curves=curves,
                history=hist.last_weeks(m.history_days // 7),
            )
        hist.release_events()
        self.history_ = hist
        self.style_category_ = (
            tables.products.group_by("style")
            .agg(pl.col("sku").first())
            .join(self.group_skus_, on="sku", how="left")
            .select("style", "category")
        )

    def for_prediction(self) -> DemandForecaster:
        """A copy holding only what :meth:`predict` needs (no sales, inventory or history):
        what a partitioned forecast ships to each worker."""
        if not hasattr(self, "choice_"):
            msg = "DemandForecaster.for_prediction: call fit() first"
            raise ValueError(msg)
        slim = copy.copy(self)
        tb = self.tables_
        slim.tables_ = tb.replace(sales=tb.sales.clear(), inventory=tb.inventory.clear())
        if self.model_ is not None:
            slim.model_ = self.model_.for_prediction()
        if hasattr(slim, "history_"):
            del slim.history_
        return slim

    # -- predict -------------------------------------------------------------------------

    def _last_day(self, until: dt.date | None) -> tuple[dt.date, pl.DataFrame]:
        pr = self.tables_.products
        ends = (
            pr.select("sku", "season_end")
            if "season_end" in pr.columns
            else pr.select("sku").with_columns(pl.lit(None, pl.Date).alias("season_end"))
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

        Each pair takes its group's chosen candidate (with the group's effects), times the
        group's level factor; a week cut by the SKU's ``season_end`` counts only its days
        (SKUs without one run ``horizon_weeks``); dormant pairs are capped. ``var`` is the
        week's share of the horizon's variance (``m + phi_w m^2 + phi_L m M`` with ``M`` the
        pair's horizon total), so variances of weeks add up to the total's; the quantiles are
        those of the week alone (``m + (phi_w + phi_L) m^2``).

        Parameters
        ----------
        until
            Last day forecast (default: the latest ``season_end``, else ``horizon_weeks``).
        price_plan
            Optional ``style, week_start, price_factor`` for future weeks (full price else).
        styles
            Only these styles (used to partition prediction).

        Returns
        -------
        pl.DataFrame
            ``store_id, sku, week_start, mean, var, p10, p50, p90`` (units per week).
        """
        if not hasattr(self, "choice_"):
            msg = "DemandForecaster.predict: call fit() first"
            raise ValueError(msg)
        last, ends = self._last_day(until)
        n_w = max(0, math.ceil((last - self.as_of_).days / 7))
        if n_w == 0:
            return pl.DataFrame(schema=FORECAST_SCHEMA)
        pairs = self.shares_
        if styles is not None:
            pairs = pairs.filter(pl.col("style").is_in(list(styles)))
        pairs = with_groups(pairs.select("store_id", "sku"), self.group_skus_, self.group_stores_)
        pairs = (
            pairs.select("store_id", "sku", pl.col("g_category|cluster").alias("group"))
            .join(self.choice_, on="group", how="left")
            .with_columns([pl.col(c).fill_null(v) for c, v in self.fallback_.items()])
        )
        weekly = self._candidate_means(pairs, n_w, price_plan, styles)
        out = weekly_distribution(weekly, pairs, ends, self.caps_, self.as_of_, last)
        if progress is not None:
            progress(1)
        return out

    def candidate_forecasts(
        self, until: dt.date | None = None, *, price_plan: pl.DataFrame | None = None
    ) -> dict[str, pl.DataFrame]:
        """Every validated candidate's own forecast of every pair (benchmarks).

        Candidates not chosen anywhere are fitted now on the whole history (LightGBM with
        every effect it was trained with); each forecast is uncalibrated (level factor 1)
        with the chosen groups' spread.

        Returns
        -------
        dict
            Candidate name -> forecast frame (the columns of :meth:`predict`).
        """
        if not hasattr(self, "history_"):
            msg = "DemandForecaster.candidate_forecasts: needs the fitted history (not a slim copy)"
            raise ValueError(msg)
        last, ends = self._last_day(until)
        n_w = max(0, math.ceil((last - self.as_of_).days / 7))
        names = sorted(set(self.validation_["candidate"].unique().to_list()) - {"blend"})
        pairs = with_groups(
            self.shares_.select("store_id", "sku"), self.group_skus_, self.group_stores_
        )
        pairs = (
            pairs.select("store_id", "sku", pl.col("g_category|cluster").alias("group"))
            .join(self.choice_.drop("candidate", "effects"), on="group", how="left")
            .with_columns(
                pl.lit(1.0).alias("bias_factor"),
                pl.col("level_dispersion").fill_null(self.fallback_["level_dispersion"]),
                pl.col("week_dispersion").fill_null(self.fallback_["week_dispersion"]),
            )
        )
        out: dict[str, pl.DataFrame] = {}
        for name in names:
            if name == "lgbm":
                model = self.model_
                if model is None:
                    m = self._model()
                    model = m.fit(
                        self.tables_,
                        self.as_of_,
                        clusters=self.clusters_,
                        size_curves=self.size_curves_,
                        history=self.history_.last_weeks(m.history_days // 7),
                    )
                st = model.predict_style(n_w, price_plan=price_plan)
                weekly = lgbm_skus(st, self.shares_, model.default_effects)
            else:
                cand = self.simple_.get(name) or SimpleCandidate(name).fit(
                    self.history_, self.shares_
                )
                weekly = cand.predict(n_w)
            out[name] = weekly_distribution(weekly, pairs, ends, self.caps_, self.as_of_, last)
        return out

    def _candidate_means(
        self,
        pairs: pl.DataFrame,
        n_w: int,
        price_plan: pl.DataFrame | None,
        styles: Sequence[str] | None,
    ) -> pl.DataFrame:
        """``store_id, sku, week, mean`` of each pair's chosen candidate (before calibration)."""
        keys = ["store_id", "sku"]
        frames: dict[str, pl.DataFrame] = {}
        for name, cand in self.simple_.items():
            frames[name] = cand.predict(n_w, styles)
        if self.model_ is not None:
            st = self.model_.predict_style(n_w, price_plan=price_plan, styles=styles)
            frames["lgbm"] = self._lgbm_with_effects(st)
        parts = []
        for name in pairs["candidate"].unique().to_list():
            want = pairs.filter(pl.col("candidate") == name).select(keys)
            if name == "blend":
                comp = [frames[c].join(want, on=keys, how="semi") for c in self.blend_]
                fr = (
                    pl.concat(comp)
                    .group_by(*keys, "week")
                    .agg((pl.col("mean").sum() / len(comp)).alias("mean"))
                )
            else:
                fr = frames[str(name)].join(want, on=keys, how="semi")
            parts.append(fr.select(*keys, pl.col("week").cast(pl.Int32), "mean"))
        if not parts:
            return pl.DataFrame(
                schema={
                    "store_id": pl.String,
                    "sku": pl.String,
                    "week": pl.Int32,
                    "mean": pl.Float64,
                }
            )
        return pl.concat(parts)

    def _lgbm_with_effects(self, st: pl.DataFrame) -> pl.DataFrame:
        """SKU means of the LightGBM rows with each group's effects switched on."""
        assert self.model_ is not None
        st = st.join(self.style_category_, on="style", how="left").join(
            self.group_stores_, on="store_id", how="left"
        )
        st = st.with_columns(
            (pl.col("category").fill_null("none") + "|" + pl.col("cluster").fill_null("all")).alias(
                "group"
            )
        ).join(self.choice_.select("group", "effects"), on="group", how="left")
        off = st["off_base"].to_numpy().copy()
        eff = st["effects"].fill_null(",".join(sorted(self.model_.default_effects)))
        for e in EFFECTS:
            on = eff.str.contains(e, literal=True).to_numpy()
            off = off + np.where(on, st[f"off_{e}"].to_numpy(), 0.0)
        mu = np.where(st["base"].to_numpy() > 0, np.exp(st["raw"].to_numpy() + off), 0.0)
        return split_styles(st.select(*SS, "week").with_columns(pl.Series("mu", mu)), self.shares_)
