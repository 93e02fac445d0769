"""The generated network object shared by every scenario: :class:`SyntheticNetwork`."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from stocktailor.contract import TABLE_SPECS, Tables
from stocktailor.synth._common import FloatArray
from stocktailor.synth._model import Truth
from stocktailor.synth._prices import PRICE_PLAN_SCHEMA, StylePrices

if TYPE_CHECKING:
    from stocktailor.synth.foreign._truth import ForeignTruth

__all__ = ["PARQUET_MIN_ROWS", "SyntheticNetwork", "with_price_plan"]

PARQUET_MIN_ROWS = 250_000  # tables with more rows are written as Parquet
DEMAND_CELLS_WRITTEN = 3_000_000  # truth/demand.parquet is written up to this many cells


def with_price_plan(tables: Tables, plan: pl.DataFrame) -> Tables:
    """``tables`` with ``price_plan`` set when the contract has that table (else unchanged)."""
    spec = TABLE_SPECS.get("price_plan")
    if spec is None:
        return tables
    casts = [pl.col(c.name).cast(c.dtype) for c in spec.columns if c.name in plan.columns]
    return tables.replace(price_plan=plan.with_columns(casts))


@dataclass(frozen=True)
class SyntheticNetwork:
    """A generated network: what the retailer sees at ``as_of`` and the ground truth.

    Attributes
    ----------
    tables
        Contract tables as of ``as_of``: sales and inventory snapshots up to ``as_of``, weather
        actuals to ``as_of`` plus forecasts (``is_forecast``) for the days after, planned
        events, trends and economy up to ``as_of``, lanes (and ``price_plan`` once the
        contract has that table).
    truth
        Ground truth (segments, size curves, position, initial stock, true demand):
        :class:`~stocktailor.synth.Truth` for the fashion scenarios,
        :class:`~stocktailor.synth.foreign.ForeignTruth` for the foreign ones.
    as_of, season_start, season_end
        As-of date, first selling day and the last selling day (the latest product
        ``season_end``; for a never-ending assortment the end of the simulated window).
    scenario, seed
        How the network was generated.
    markdown_calendar
        The clearance the network declares: ``(weeks before season end, price factor)``
        steps (empty: no markdowns). Its rows are in :attr:`price_plan`.
    prices
        The declared daily price factor of every style (promotions and markdowns).
    open_ended
        True when products have no ``season_end`` (never-ending assortment).
    """

    tables: Tables
    truth: Truth | ForeignTruth
    as_of: dt.date
    season_start: dt.date
    season_end: dt.date
    scenario: str
    seed: int
    markdown_calendar: tuple[tuple[int, float], ...] = ()
    prices: StylePrices | None = None
    open_ended: bool = False

    @property
    def price_plan(self) -> pl.DataFrame:
        """The declared prices as ``price_plan`` rows (start_date, end_date, scope, ...)."""
        if self.prices is None:
            return pl.DataFrame(schema=PRICE_PLAN_SCHEMA)
        return self.prices.frame()

    def price_factor(self, start: dt.date, end: dt.date) -> FloatArray:
        """Declared price factor ``(days, skus)`` (``truth.skus`` order) for ``[start, end]``.

        Pass it to ``truth.expected_demand(start, end, price_factor=...)`` for the true
        demand at the prices the network declares.
        """
        n = (end - start).days + 1
        styles = (
            pl.DataFrame({"sku": list(self.truth.skus)})
            .join(self.tables.products.select("sku", "style"), on="sku", how="left")["style"]
            .to_list()
        )
        if self.prices is None:
            out: FloatArray = np.ones((max(n, 0), len(styles)))
            return out
        t0 = (start - self.prices.start).days
        return self.prices.sku_path(styles, t0, t0 + n - 1)

    def write(self, out_dir: Path | str) -> None:
        """Write the data folder (``NAME.csv``, or ``NAME.parquet`` when large) and ``truth/``.

        The declared prices are written as ``price_plan.csv`` whether or not the contract in
        use reads that table. Output bytes depend only on the scenario, seed and options.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables.items():
            _write_frame(frame, out / name)
        if self.prices is not None and "price_plan" not in TABLE_SPECS:
            _write_frame(self.price_plan, out / "price_plan")
        truth_dir = out / "truth"
        truth_dir.mkdir(exist_ok=True)
        t = self.truth
        for name, frame in (
            ("segments", t.segments),
            ("size_curves", t.size_curves),
            ("position", t.position),
            ("initial_stock", t.initial_stock),
            ("products", t.products),
            ("stores", t.stores),
        ):
            frame.write_parquet(truth_dir / f"{name}.parquet")
        season_dir = truth_dir / "season"
        season_dir.mkdir(exist_ok=True)
        for name in ("weather", "events", "trends", "economy"):
            season_frame = t.season_tables.get(name)
            if season_frame is not None:
                season_frame.write_parquet(season_dir / f"{name}.parquet")
        n_cells = t.demand_cells()
        if n_cells <= DEMAND_CELLS_WRITTEN:
            t.demand_frame(self.season_start, t.window_end).write_parquet(
                truth_dir / "demand.parquet"
            )
        meta: dict[str, Any] = {
            "scenario": self.scenario,
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
            "season_start": self.season_start.isoformat(),
            "season_end": self.season_end.isoformat(),
            "dispersion": t.dispersion,
            "n_stores": len(t.store_ids),
            "n_skus": len(t.skus),
            "trend_lead_days": t.trend_lead_days,
            "demand_written": n_cells <= DEMAND_CELLS_WRITTEN,
        }
        if not isinstance(t, Truth):
            meta.update(
                markdown_calendar=[list(x) for x in self.markdown_calendar],
                open_ended=self.open_ended,
                return_rate=t.return_rate,
            )
        (truth_dir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _write_frame(frame: pl.DataFrame, stem: Path) -> None:
    if frame.height > PARQUET_MIN_ROWS:
        frame.write_parquet(stem.with_suffix(".parquet"))
    else:
        frame.write_csv(stem.with_suffix(".csv"))
