"""Randomised holdback and common-random-numbers replays: the true value of executed lines.

In a simulated season the counterfactual is known: the same season (same customers, the draws
being common random numbers) can be replayed with the same moves except a chosen set of lines.
The difference in profit is the true incremental profit of those lines, given every other
move of the season (issue 15's ground truth for a measured uplift).

- :class:`HoldbackPolicy` wraps a policy and keeps a random share of its recommended transfer
  lines out of execution (a control group for a measurement);
- :class:`ReplayPolicy` ships recorded moves again, in their recorded order;
- :func:`replay_without` replays a run without some of its lines;
- :func:`true_uplift_by_decision` gives, per decision day, the estimated net benefit of the
  lines executed that day and their true incremental profit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from stocktailor.config import Settings
from stocktailor.simulate._types import IntArray, SeasonNetwork, SimResult, SimSpace
from stocktailor.simulate.decisions import Decisions, Policy
from stocktailor.simulate.season import simulate_season
from stocktailor.simulate.view import PolicyView

__all__ = ["HoldbackPolicy", "ReplayPolicy", "replay_without", "true_uplift_by_decision"]

HOLDBACK_STREAM = 0x401D


class HoldbackPolicy:
    """A policy whose recommended transfer lines are executed only at random.

    On each decision, every transfer line is held back with probability ``share`` (a
    generator seeded ``[seed, stream, day]``, so the control group is reproducible and does not
    disturb the customers' draws); allocation lines always ship. The held-back lines are kept in
    ``held_`` (``day_index`` and the line's columns). Other attributes are the wrapped
    policy's.
    """

    def __init__(self, inner: Policy, share: float) -> None:
        if not 0.0 <= share < 1.0:
            msg = f"holdback share must be in [0, 1), got {share}"
            raise ValueError(msg)
        self.inner = inner
        self.name = inner.name
        self.share = float(share)
        self.held_: list[pl.DataFrame] = []

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def decide(self, view: PolicyView) -> Decisions:
        d = self.inner.decide(view)
        tr = d.transfers
        if tr is None or tr.height == 0 or self.share == 0.0:
            return d
        rng = np.random.default_rng([view.seed, HOLDBACK_STREAM, view.day_index])
        held = pl.Series(rng.random(tr.height) < self.share)
        if held.any():
            self.held_.append(
                tr.filter(held).with_columns(
                    pl.lit(view.day_index, dtype=pl.Int64).alias("day_index")
                )
            )
        return Decisions(transfers=tr.filter(~held), allocation=d.allocation)

    def held_back(self) -> pl.DataFrame:
        """Every held-back line: ``day_index`` and the line's columns (empty frame if none)."""
        if not self.held_:
            return pl.DataFrame(schema={"day_index": pl.Int64})
        return pl.concat(self.held_, how="diagonal_relaxed")


class ReplayPolicy:
    """Ships recorded moves again: on each day, its rows of ``moves`` in their order.

    ``moves`` is a run's moves log (:attr:`SimResult.moves`): ``ship_date, kind, sku,
    from_id, to_id, requested`` (and ``estimated``); the requested units are shipped again, so
    replaying a whole log reproduces the run exactly (the same cuts included).
    """

    name = "replay"

    def __init__(self, moves: pl.DataFrame) -> None:
        self.by_day: dict[dt.date, tuple[pl.DataFrame, pl.DataFrame]] = {}
        cols = [
            "sku",
            "from_id",
            "to_id",
            pl.col("requested").alias("units"),
            pl.col("estimated").alias("net_benefit"),
        ]
        for (day,), rows in moves.group_by("ship_date", maintain_order=True):
            assert isinstance(day, dt.date)
            alloc = rows.filter(pl.col("kind") == "allocation").select(cols)
            trans = rows.filter(pl.col("kind") != "allocation").select(cols)
            self.by_day[day] = (alloc, trans)

    def decide(self, view: PolicyView) -> Decisions:
        alloc, trans = self.by_day.get(view.day, (None, None))
        return Decisions(transfers=trans, allocation=alloc)


def _profit(r: SimResult) -> float:
    d = r.daily
    total = d.select(pl.col("revenue").sum() + pl.col("salvage_value").sum())
    return float(total.item()) - float(d["transfer_cost"].sum())


def replay_without(
    network: SeasonNetwork,
    settings: Settings,
    result: SimResult,
    drop: pl.Series | None = None,
    *,
    space: tuple[SimSpace, IntArray] | None = None,
) -> SimResult:
    """The season of ``result`` again, with its moves except the rows where ``drop`` is True.

    ``drop`` is a boolean mask over ``result.moves`` (None: replay everything, which gives
    ``result`` back).
    """
    moves = result.moves if drop is None else result.moves.filter(~drop)
    return simulate_season(
        network,
        ReplayPolicy(moves),
        settings,
        seed=result.seed,
        policy_name=f"{result.policy}-replay",
        space=space,
    )


def true_uplift_by_decision(
    network: SeasonNetwork,
    settings: Settings,
    result: SimResult,
    *,
    kinds: tuple[str, ...] = ("transfer",),
    space: tuple[SimSpace, IntArray] | None = None,
) -> pl.DataFrame:
    """Estimated and true value of the lines executed on each decision day.

    For each day with executed lines of ``kinds``, the season is replayed without them (same
    customers, every other move kept); ``true = profit of the run - profit of the replay``.

    Returns
    -------
    polars.DataFrame
        ``decision_date, lines, units, estimated, true`` (currency; ``estimated`` is the sum of
        the lines' net benefit at decision time, null when the policy gave none).
    """
    moves = result.moves
    executed = (pl.col("units") > 0) & pl.col("kind").is_in(list(kinds))
    days = moves.filter(executed)["ship_date"].unique().sort().to_list()
    base = _profit(result)
    rows = []
    for day in days:
        mask = moves.select(executed & (pl.col("ship_date") == day)).to_series()
        lines = moves.filter(mask)
        replay = replay_without(network, settings, result, mask, space=space)
        est = lines["estimated"]
        rows.append(
            {
                "decision_date": day,
                "lines": lines.height,
                "units": int(lines["units"].sum()),
                "estimated": None if est.null_count() == est.len() else float(est.sum()),
                "true": base - _profit(replay),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "decision_date": pl.Date,
            "lines": pl.Int64,
            "units": pl.Int64,
            "estimated": pl.Float64,
            "true": pl.Float64,
        },
    )
