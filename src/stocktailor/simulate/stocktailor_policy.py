"""The ``stocktailor`` policy: the product's pipeline inside the simulator.

Store clusters, the demand model (refitted every ``refit_every_weeks`` weeks, demand sensing in
between), the warehouse allocation and the cost-benefit transfer optimiser, on the simulator's
arrays within a work budget per decision (see :class:`~.optimiser.OptimiserPolicy`).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.simulate._types import FloatArray, IntArray
from stocktailor.simulate.optimiser import OptimiserPolicy
from stocktailor.simulate.sensing import DemandSensor, WeeklyForecast, scale_windows
from stocktailor.simulate.view import PolicyView

__all__ = ["StocktailorPolicy"]

logger = logging.getLogger(__name__)


class StocktailorPolicy(OptimiserPolicy):
    """Clusters + demand model + allocation + transfer optimiser (the product's pipeline).

    The demand model (and the store clusters) are fitted on the first decision and refitted
    every ``simulation.refit_every_weeks`` weeks; the forecast is kept as dense weekly arrays.
    Between refits the remaining forecast is corrected by demand sensing (``simulation.sensing``:
    in-stock sales since the fit against the forecast of the same cells, per store x style,
    see :mod:`stocktailor.simulate.sensing`), or, with ``simulation.update_between_refits``,
    re-predicted by the last model moved to the new as-of date (``DemandModel.update``).

    The position, allocation and transfers are those of every optimiser policy (see
    ``OptimiserPolicy``): arrays in, :func:`stocktailor.allocation.allocate_arrays` and
    :func:`stocktailor.transfers.plan_transfers_from_arrays` out.
    """

    name = "stocktailor"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.model_: Any = None
        self.clusters_: pl.DataFrame | None = None
        self.fitted_day_: int | None = None
        self.forecast_: WeeklyForecast | None = None
        self.sensor_: DemandSensor | None = None
        self.ratio_: FloatArray | None = None
        self.last_decision_: int | None = None

    def prepare(self, view: PolicyView) -> None:
        """Fit or refit on schedule, else update the forecast (sensing or model update)."""
        assert self.static_ is not None
        if self.sensor_ is None:
            self.sensor_ = DemandSensor(self.static_.style_index, view.space.n_stores)
        if self._refit_due(view):
            self._refit(view)
        else:
            self._update(view)
        self.last_decision_ = view.day_index

    # -- forecast --------------------------------------------------------------------------

    def _refit_due(self, view: PolicyView) -> bool:
        every = 7 * self.settings.simulation.refit_every_weeks
        return self.fitted_day_ is None or view.day_index - self.fitted_day_ >= every

    def _predict(self, view: PolicyView, tables: Any) -> WeeklyForecast:
        from stocktailor.demand import forecast as demand_forecast

        sp = view.space
        n_days = len(view.price_factor)
        n_w = max(1, math.ceil((n_days - view.day_index) / 7))
        fc = WeeklyForecast.empty(view.day_index, n_w, sp.n_stores, len(sp.skus))
        si = {s: i for i, s in enumerate(sp.store_ids)}
        ki = sp.sku_index()
        cfg = self.settings.demand
        if cfg.model == "baseline" or self.model_ is None:
            frame = demand_forecast(tables, view.as_of, self.settings, clusters=self.clusters_)
            fc.add_frame(frame, view.day, si, ki)
            return fc
        plan = view.price_plan()
        styles = sorted(set(sp.products["style"].cast(pl.String).to_list()))
        n_parts = max(1, min(self.settings.simulation.predict_partitions, len(styles)))
        for i in range(n_parts):
            part = styles[i::n_parts]
            frame = self.model_.predict(price_plan=plan, styles=part if n_parts > 1 else None)
            fc.add_frame(frame, view.day, si, ki)
        return fc

    def _refit(self, view: PolicyView) -> None:
        from stocktailor.clustering import StoreClusterer
        from stocktailor.demand import DemandModel

        tables = view.tables()
        if self.clusters_ is None or self.settings.simulation.recluster_on_refit:
            t0 = time.perf_counter()
            try:
                self.clusters_ = (
                    StoreClusterer.from_config(self.settings.clustering)
                    .fit(tables, view.as_of)
                    .labels_
                )
            except ValueError as exc:
                logger.info("stocktailor policy: clustering skipped on %s: %s", view.day, exc)
            self._time("clusters", t0)
        t0 = time.perf_counter()
        cfg = self.settings.demand
        if cfg.model != "baseline":
            self.model_ = DemandModel.from_config(
                cfg, horizon_weeks=self.settings.season.horizon_weeks
            ).fit(tables, view.as_of, clusters=self.clusters_)
        self._time("fit", t0)
        t0 = time.perf_counter()
        self.forecast_ = self._predict(view, tables)
        self._time("predict", t0)
        self.fitted_day_ = view.day_index
        if self.sensor_ is not None:
            self.sensor_.reset()
        self.ratio_ = None

    def _update(self, view: PolicyView) -> None:
        """Between refits: demand sensing, or the model moved to the new as-of date."""
        sim = self.settings.simulation
        t0 = time.perf_counter()
        if sim.update_between_refits and self.model_ is not None:
            tables = view.tables()
            self.model_.update(tables, view.as_of, clusters=self.clusters_)
            self.forecast_ = self._predict(view, tables)
            self.ratio_ = None
        elif sim.sensing and self.sensor_ is not None and self.forecast_ is not None:
            prev = self.last_decision_
            if prev is not None and prev < view.day_index:
                days = view.day_index - prev
                n_s, n_k = self.sensor_.n_stores, len(view.skus)
                fm, _fv = self.forecast_.window(
                    np.full((n_s, n_k), prev, dtype=np.int64),
                    np.full((n_s, n_k), view.day_index - 1, dtype=np.int64),
                )
                in_stock = (view.on_hand[:n_s] > 0) & (view.received_days_ago[:n_s] >= days)
                self.sensor_.observe(view.sales_units(days), fm, in_stock)
            self.ratio_ = self.sensor_.ratio(sim.sensing_prior_units, sim.sensing_bounds)
        self._time("update", t0)

    def windows(
        self, view: PolicyView, lead: IntArray, cols: IntArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """The forecast's lead-time and rest-of-season windows, scaled by the sensing ratios."""
        assert self.forecast_ is not None and self.static_ is not None
        ml, vl, mr, vr = self.forecast_.lead_rest(view.day_index, lead, self.static_.sku_end, cols)
        r = None if self.ratio_ is None else self.ratio_[:, cols]
        ml, vl = scale_windows(ml, vl, r)
        mr, vr = scale_windows(mr, vr, r)
        return ml, vl, mr, vr
