"""Options of a foreign network and the named foreign scenarios."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Literal

__all__ = ["FOREIGN_SCENARIOS", "ForeignSpec", "foreign_spec"]


@dataclass(frozen=True)
class ForeignSpec:
    """How a foreign network is built (every option has a retail reason, see the docs).

    Attributes
    ----------
    n_stores, n_sku_sizes
        Selling stores (one distribution centre comes on top) and SKU-sizes (exact).
    season_start
        First selling day (a Monday).
    history_days
        Days of sales history up to and including the as-of date.
    horizon_days
        Days after the as-of date up to the season end (or, without clearance, the end of the
        simulated window).
    store_daily_units
        Mean units a store sells a day (before the store's own size of traffic).
    effects
        ``multiplicative``: time effects multiply; ``additive``: their relative lifts add
        (``1 + sum(lift - 1)``, clipped at 0), so effects do not compound.
    lifecycle
        ``mixed``: basics flat, fashion styles peak and fade, gift styles rise toward the end;
        ``flat``: no lifecycle; ``declining``: every style fades from launch.
    snapshots
        Inventory snapshots: ``daily`` (every evening and the opening), ``weekly`` (Sunday
        evenings, the opening and the as-of date) or ``single`` (the as-of date only).
    unrecorded_receipts
        Every Wednesday evening each stocked store x SKU is topped up to half its opening
        units by a delivery no table records (only later inventory counts show it), as when
        a chain's replenishment is not in its export.
    stock_cover
        The buy per SKU as a multiple of its expected demand over the whole window.
    warehouse_share
        Share of the buy held back in the distribution centre.
    cold_snap
        A cold anomaly over the Pacific Northwest from 10 days before the as-of date to the
        end of the window.
    cooling_c_per_week
        Extra cooling of every store's temperature, deg C per week since season start.
    independent_attributes
        Store segment drawn independently of city, format, area and demographics.
    trend_lead_days
        Days by which the social-trend index leads demand of the trended style.
    trend_strength
        Demand lift per unit of relative index change in trend-led stores (others 40 %).
    return_rate
        Share of sold units returned to the same store 2-28 days later (net sales rows, units
        may be negative).
    clearance
        Products have a ``season_end``; without it the assortment never ends (no
        ``season_end``, no markdowns, no deep promotions).
    markdowns
        With clearance, the chain declares clearance markdowns before the season end
        (otherwise it clears leftovers through other channels at salvage value).
    required_cities
        Cities that get a store first (stories need them).
    story_styles
        Style templates always in the catalogue.
    """

    n_stores: int = 30
    n_sku_sizes: int = 200
    season_start: dt.date = dt.date(2025, 8, 4)
    history_days: int = 77
    horizon_days: int = 56
    store_daily_units: float = 40.0
    effects: Literal["multiplicative", "additive"] = "multiplicative"
    lifecycle: Literal["mixed", "flat", "declining"] = "mixed"
    snapshots: Literal["daily", "weekly", "single"] = "daily"
    unrecorded_receipts: bool = False
    stock_cover: float = 1.15
    warehouse_share: float = 0.2
    cold_snap: bool = False
    cooling_c_per_week: float = 0.0
    independent_attributes: bool = False
    trend_lead_days: int = 7
    trend_strength: float = 1.0
    return_rate: float = 0.0
    clearance: bool = True
    markdowns: bool = True
    required_cities: tuple[str, ...] = ("Seattle", "Los Angeles")
    story_styles: tuple[str, ...] = ("Classic Trench Coat", "Wool Overcoat")

    @property
    def as_of(self) -> dt.date:
        """The last day of history."""
        return self.season_start + dt.timedelta(days=self.history_days - 1)

    @property
    def end(self) -> dt.date:
        """Season end (last selling day) or the end of the simulated window."""
        return self.as_of + dt.timedelta(days=self.horizon_days)

    @property
    def n_days(self) -> int:
        """Days from season start to :attr:`end`, inclusive."""
        return self.history_days + self.horizon_days

    def check(self) -> None:
        """Raise ValueError naming the first option out of range."""
        rules = (
            ("n_stores", self.n_stores >= 2, ">= 2"),
            ("n_sku_sizes", self.n_sku_sizes >= 10, ">= 10"),
            ("history_days", self.history_days >= 7, ">= 7"),
            ("horizon_days", self.horizon_days >= 7, ">= 7"),
            ("store_daily_units", self.store_daily_units > 0, "> 0"),
            ("stock_cover", self.stock_cover > 0, "> 0"),
            ("warehouse_share", 0 <= self.warehouse_share < 1, "in [0, 1)"),
            ("trend_lead_days", 0 <= self.trend_lead_days <= 28, "in 0..28"),
            ("return_rate", 0 <= self.return_rate < 0.5, "in [0, 0.5)"),
            ("season_start", self.season_start.weekday() == 0, "a Monday"),
        )
        for name, ok, what in rules:
            if not ok:
                msg = f"foreign option {name} must be {what}, got {getattr(self, name)!r}"
                raise ValueError(msg)


_BASE = ForeignSpec()

# The named default set: the base network and one stress per scenario, plus the held-out-like
# composite. Each entry changes only what its name says.
_SPECS: dict[str, ForeignSpec] = {
    "foreign-base": _BASE,
    "foreign-additive": dataclasses.replace(_BASE, effects="additive"),
    "foreign-flat-lifecycle": dataclasses.replace(_BASE, lifecycle="flat"),
    "foreign-declining": dataclasses.replace(_BASE, lifecycle="declining"),
    "foreign-short-history": dataclasses.replace(
        _BASE, season_start=dt.date(2025, 8, 25), history_days=56
    ),
    "foreign-weekly-snapshots": dataclasses.replace(_BASE, snapshots="weekly"),
    "foreign-weekly-receipts": dataclasses.replace(
        _BASE, snapshots="weekly", unrecorded_receipts=True
    ),
    "foreign-understocked": dataclasses.replace(_BASE, stock_cover=0.75, warehouse_share=0.1),
    "foreign-cold-snap": dataclasses.replace(_BASE, cold_snap=True, cooling_c_per_week=0.4),
    "foreign-independent-attributes": dataclasses.replace(_BASE, independent_attributes=True),
    "foreign-trend-lead-3": dataclasses.replace(_BASE, trend_lead_days=3),
    "foreign-trend-lead-21": dataclasses.replace(_BASE, trend_lead_days=21),
    "foreign-returns": dataclasses.replace(_BASE, return_rate=0.08),
    "foreign-no-clearance": dataclasses.replace(_BASE, clearance=False, lifecycle="flat"),
    "foreign-single-snapshot": dataclasses.replace(_BASE, snapshots="single"),
    "foreign-heldout-like": ForeignSpec(
        n_stores=24,
        n_sku_sizes=85,
        season_start=dt.date(2025, 8, 11),
        history_days=56,
        horizon_days=42,
        store_daily_units=9.0,
        snapshots="weekly",
        stock_cover=0.75,
        warehouse_share=0.1,
        cold_snap=True,
        cooling_c_per_week=0.4,
        markdowns=False,
    ),
}

FOREIGN_SCENARIOS: tuple[str, ...] = tuple(_SPECS)
"""Names of the foreign scenarios (``generate(name, seed)``)."""


def foreign_spec(name: str) -> ForeignSpec:
    """The options of foreign scenario ``name`` (ValueError for an unknown name)."""
    spec = _SPECS.get(name)
    if spec is None:
        msg = f"unknown foreign scenario {name!r}; expected one of {list(FOREIGN_SCENARIOS)}"
        raise ValueError(msg)
    return spec
