"""Lanes planners keep rejecting as unreliable (issue 15): the premium the planner adds to
such a lane, the workflow query that counts the rejections, and the run that records them."""

from __future__ import annotations

import polars as pl
import pytest

from _transfer_cases import AS_OF, tiny_tables
from stocktailor.config import Settings, SolverConfig
from stocktailor.transfers import lane_premium_matrix, plan_network

STORES_ONLY = Settings(solver=SolverConfig(joint_warehouse=False))


def _premium(value: float) -> pl.DataFrame:
    return pl.DataFrame({"from_id": ["SEA"], "to_id": ["SMO"], "premium": [value]})


def _lane(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter((pl.col("from_id") == "SEA") & (pl.col("to_id") == "SMO"))


def test_a_premium_on_a_lane_keeps_its_lines_only_when_they_clear_it() -> None:
    t, fc = tiny_tables()
    base = plan_network(t, AS_OF, fc, STORES_ONLY).transfers
    lane = _lane(base)
    assert lane.height >= 1  # without a premium the lane carries lines
    # the lane's lines together earn this after their real costs (fixed cost included)
    worth = float(lane["net_benefit"].sum())
    assert worth > 10.0
    above = plan_network(t, AS_OF, fc, STORES_ONLY, lane_premiums=_premium(worth + 5.0))
    assert _lane(above.transfers).height == 0
    below = plan_network(t, AS_OF, fc, STORES_ONLY, lane_premiums=_premium(worth - 5.0))
    kept = _lane(below.transfers)
    assert kept.height == lane.height
    # the premium chose the lanes; the lines still report the lane's real costs
    assert kept["transfer_cost"].sum() == pytest.approx(lane["transfer_cost"].sum())
    assert kept["net_benefit"].sum() == pytest.approx(worth)
    assert below.objective == pytest.approx(base["net_benefit"].sum())


def test_premium_matrix_maps_known_lanes_and_refuses_bad_values() -> None:
    ids = ["A", "B", "C"]
    frame = pl.DataFrame(
        {
            "from_id": ["A", "A", "X", "B"],
            "to_id": ["B", "B", "A", "B"],
            "premium": [2.0, 3.0, 9.0, 4.0],
        }
    )
    m = lane_premium_matrix(ids, frame)
    assert m is not None
    assert m[0, 1] == 5.0  # a pair given twice adds up
    assert m.sum() == 5.0  # unknown store and the diagonal ignored
    assert lane_premium_matrix(ids, frame.head(0)) is None
    with pytest.raises(ValueError, match="row 1: column 'premium'"):
        lane_premium_matrix(ids, frame.with_columns(pl.lit(-1.0).alias("premium")))
