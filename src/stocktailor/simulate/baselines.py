"""Baseline policies: what a retailer does without the product.

``none``
    What the retailer does without the product: the initial allocation, then the warehouse
    replenishes the stores by the weeks-of-cover rule below (warehouse stock only, no
    store-to-store moves).
``rule``
    A planner's weeks-of-cover rule, SKU by SKU, like common commercial tools: velocity is the
    recent sales rate; a store holding more than ``rule_donor_multiple`` times its target cover
    gives its excess (and the warehouse gives what it holds) to the stores with the least cover,
    least covered first, ignoring lane costs beyond the minimum transfer quantity.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.simulate._types import FloatArray, IntArray
from stocktailor.simulate.decisions import Decisions
from stocktailor.simulate.view import PolicyView

__all__ = ["HoldPolicy", "NonePolicy", "RulePolicy", "northwest_corner"]


class HoldPolicy:
    """Moves nothing: the initial allocation sells where it was put and the warehouse keeps
    what it holds (not a fair baseline when the warehouse holds stock; ``none`` is)."""

    name = "hold"

    def decide(self, view: PolicyView) -> Decisions:
        return Decisions.nothing()


def northwest_corner(supply: IntArray, need: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Greedy matching of ordered donors to ordered receivers.

    The first donor fills the first receiver, then the next, and so on (the north-west
    corner rule), in O(donors + receivers).

    Returns
    -------
    tuple
        ``(donor position, receiver position, units)`` of every non-empty pair.
    """
    cs = np.cumsum(supply)
    cn = np.cumsum(need)
    total = min(int(cs[-1]) if cs.size else 0, int(cn[-1]) if cn.size else 0)
    if total <= 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    cuts = np.unique(np.concatenate([cs[cs < total], cn[cn < total], [total]]))
    lo = np.concatenate([[0], cuts[:-1]])
    units = cuts - lo
    keep = units > 0
    lo, units = lo[keep], units[keep]
    d = np.searchsorted(cs, lo, side="right")
    r = np.searchsorted(cn, lo, side="right")
    return d.astype(np.int64), r.astype(np.int64), units.astype(np.int64)


class _Cover(NamedTuple):
    """Per (store, sku): sales rate (units per day), stock and target (units), cover (days),
    need (units)."""

    rate: FloatArray
    stock: FloatArray
    target: FloatArray
    cover: FloatArray
    need: IntArray


class RulePolicy:
    """Weeks-of-cover rebalancing, SKU by SKU (see the module docstring).

    Parameters
    ----------
    settings
        ``simulation.rule_*`` and the constraints (presentation minimum, minimum transfer,
        pack size).
    store_donors
        Stores above their donor cover give stock to other stores (True); False leaves only
        the warehouse as a donor (replenishment without store-to-store moves).
    """

    name = "rule"

    def __init__(self, settings: Settings, *, store_donors: bool = True) -> None:
        self.settings = settings
        self.store_donors = store_donors

    def _cover(self, view: PolicyView, window: int) -> _Cover:
        """Rates, stock, target, cover and need of every (store, sku)."""
        sim = self.settings.simulation
        n_s = view.space.n_stores
        v = view.sales_units(window).astype(np.float64) / window  # units/day
        stock = (view.on_hand + view.in_transit)[:n_s].astype(np.float64)
        # a store that sold out looks slow: give it at least half the chain's average rate
        chain = v.mean(axis=0)
        v_eff = np.where(view.on_hand[:n_s] == 0, np.maximum(v, 0.5 * chain[None, :]), v)
        horizon = min(sim.rule_target_weeks * 7.0, float(view.remaining_days))
        target = np.ceil(v_eff * horizon)
        cover = np.where(v_eff > 0, stock / np.maximum(v_eff, 1e-12), np.inf)
        need = np.maximum(target - stock, 0.0).astype(np.int64)
        need[(v_eff <= 0)] = 0
        return _Cover(v_eff, stock, target, cover, need)

    def _excess(self, view: PolicyView, c: _Cover) -> tuple[IntArray, IntArray]:
        """Units each store and each warehouse may give, per sku."""
        sim = self.settings.simulation
        n_s = view.space.n_stores
        on_hand = view.on_hand
        movable = view.movable()
        keep = np.maximum(c.target, self.settings.constraints.presentation_minimum)
        donor = (c.stock > sim.rule_donor_multiple * c.target) | (c.rate <= 0)
        excess_s = (
            np.where(donor, np.minimum(movable[:n_s], on_hand[:n_s] - keep), 0)
            .clip(0)
            .astype(np.int64)
        )
        if not self.store_donors:
            excess_s = np.zeros_like(excess_s)
        return excess_s, movable[n_s:].astype(np.int64)

    def decide(self, view: PolicyView) -> Decisions:
        window = min(self.settings.simulation.rule_window_days, view.day_index)
        if window < 7:
            return Decisions.nothing()  # no sales rate yet
        cons = self.settings.constraints
        n_s = view.space.n_stores
        c = self._cover(view, window)
        cover, need = c.cover, c.need
        excess_s, excess_w = self._excess(view, c)
        out: list[tuple[IntArray, IntArray, IntArray, IntArray]] = []
        has_need = np.flatnonzero(need.sum(axis=0) > 0)
        has_excess = excess_s.sum(axis=0) + excess_w.sum(axis=0) > 0
        for k in has_need:
            if not has_excess[k]:
                continue
            recv = np.flatnonzero(need[:, k] > 0)
            recv = recv[np.argsort(cover[recv, k], kind="stable")]
            ds = np.flatnonzero(excess_s[:, k] > 0)
            ds = ds[np.argsort(-cover[ds, k], kind="stable")]
            dw = np.flatnonzero(excess_w[:, k] > 0) + n_s
            donors = np.concatenate([dw, ds])
            supply = np.concatenate([excess_w[dw - n_s, k], excess_s[ds, k]])
            d, r, u = northwest_corner(supply, need[recv, k])
            u = (u // cons.pack_size) * cons.pack_size
            ok = u >= cons.min_transfer_units
            if ok.any():
                out.append((np.full(int(ok.sum()), k), donors[d[ok]], recv[r[ok]], u[ok]))
        if not out:
            return Decisions.nothing()
        locs = pl.Series(list(view.location_ids), dtype=pl.String)
        frame = pl.DataFrame(
            {
                "sku": pl.Series(list(view.skus), dtype=pl.String).gather(
                    np.concatenate([o[0] for o in out])
                ),
                "from_id": locs.gather(np.concatenate([o[1] for o in out])),
                "to_id": locs.gather(np.concatenate([o[2] for o in out])),
                "units": np.concatenate([o[3] for o in out]).astype(np.int64),
            }
        )
        return Decisions(transfers=frame)


class NonePolicy(RulePolicy):
    """The retailer without the product: warehouse replenishment by weeks of cover, no
    store-to-store moves (the ``rule`` with the warehouse as its only donor)."""

    name = "none"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, store_donors=False)
