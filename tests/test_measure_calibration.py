"""Calibration of new lines from measured ones (issue 15): shrinkage worked by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from stocktailor.measure.calibration import (
    apply_calibration,
    calibration_ratios,
    measured_to_season_end,
)

# 4 tops lines into cluster 1, low risk: estimated 10 each, realised 6 each (raw 0.6);
# 1 shoes line into cluster 2, high risk: estimated 10, realised 20 (raw 2.0).
MEASURED = pl.DataFrame(
    {
        "estimated": [10.0] * 5,
        "measured": [6.0] * 4 + [20.0],
        "category": ["tops"] * 4 + ["shoes"],
        "to_cluster": ["1"] * 4 + ["2"],
        "loss_probability": [0.05] * 4 + [0.5],
        "net_p10": [None] * 5,
    },
    schema_overrides={"net_p10": pl.Float64},
)


def _ratio(r: pl.DataFrame, level: str, **keys: str) -> float:
    rows = r.filter(pl.col("level") == level, *(pl.col(k) == v for k, v in keys.items()))
    assert rows.height == 1
    return float(rows["ratio"][0])


def test_credibility_shrinks_each_level_toward_the_coarser_one() -> None:
    r = calibration_ratios(MEASURED, strength=4.0, max_ratio=5.0)
    # all: n=5, raw 44/50=0.88, w=5/9: 5/9 x 0.88 + 4/9 x 1
    top = 8.4 / 9
    assert _ratio(r, "all") == pytest.approx(top)
    # tops: n=4, raw 0.6, w=4/8=0.5, toward the overall ratio; then each finer level alike
    tops = 0.5 * 0.6 + 0.5 * top
    assert _ratio(r, "category", category="tops") == pytest.approx(tops)
    tops1 = 0.5 * 0.6 + 0.5 * tops
    assert _ratio(r, "category_cluster", category="tops", to_cluster="1") == pytest.approx(tops1)
    band = _ratio(r, "category_cluster_band", category="tops", to_cluster="1", band="low_risk")
    assert band == pytest.approx(0.5 * 0.6 + 0.5 * tops1)  # 0.641667
    assert band == pytest.approx(0.6416667, abs=1e-6)
    # shoes: one line, w=1/5: stays near the overall ratio despite its raw 2.0
    shoes = 0.2 * 2.0 + 0.8 * top
    assert _ratio(r, "category", category="shoes") == pytest.approx(shoes)  # 1.146667
    assert r.filter(pl.col("level") == "all")["lines"].to_list() == [5]
    assert r.filter(pl.col("level") == "all")["weight"][0] == pytest.approx(5 / 9)


def test_no_shrinkage_gives_raw_ratios_and_the_cap_clips() -> None:
    r = calibration_ratios(MEASURED, strength=0.0, max_ratio=1.5)
    assert _ratio(r, "category", category="tops") == pytest.approx(0.6)
    assert _ratio(r, "category", category="shoes") == 1.5  # raw 2.0, capped


def test_groups_without_positive_estimates_keep_their_parent() -> None:
    m = MEASURED.with_columns(pl.lit(-1.0).alias("estimated"))
    r = calibration_ratios(m, strength=4.0)
    assert r["ratio"].to_list() == [1.0] * r.height
    assert r["raw_ratio"].null_count() == r.height
    assert calibration_ratios(MEASURED.head(0)).height == 0


def test_apply_scales_lines_falls_back_and_drops() -> None:
    ratios = calibration_ratios(MEASURED, strength=4.0, max_ratio=5.0)
    products = pl.DataFrame(
        {"sku": ["T-M", "B-1"], "category": ["tops", "bags"]},
    )
    clusters = pl.DataFrame(
        {
            "store_id": ["S1", "S2"],
            "cluster_id": ["1", "3"],
            "cluster_name": ["coastal casual", "city"],
        }
    )
    transfers = pl.DataFrame(
        {
            "sku": ["T-M", "T-M", "B-1", "T-M"],
            "from_id": ["S9"] * 4,
            "to_id": ["S1", "S2", "S1", "S1"],
            "units": [3, 3, 3, 1],
            "transfer_cost": [2.0] * 4,
            "expected_gain": [15.0, 15.0, 15.0, 9.0],
            "expected_source_loss": [1.0] * 4,
            "net_benefit": [12.0, 12.0, 12.0, 6.0],
            "net_p10": [2.0, 2.0, 2.0, 1.0],
            "loss_probability": [0.05, 0.05, 0.05, 0.05],
            "reason": ["S1 sells out", "S2 sells out", "", "x"],
        }
    )
    out, dropped = apply_calibration(transfers, ratios, products, clusters, min_net_benefit=5.0)
    assert dropped == 1  # 6 x 0.6417 = 3.85 is not above 5
    assert out.columns == transfers.columns
    band = 0.6416667
    tops = 0.5 * 0.6 + 0.5 * 8.4 / 9
    top = 8.4 / 9
    assert out["net_benefit"].to_list() == pytest.approx([12 * band, 12 * tops, 12 * top], abs=1e-5)
    # the identity net = gain - source loss - cost still holds; the band moved with it
    assert (out["expected_gain"] - 1.0 - 2.0).to_list() == pytest.approx(
        out["net_benefit"].to_list()
    )
    assert out["net_p10"][0] == pytest.approx(2.0 + (band - 1) * 12, abs=1e-5)
    assert out["reason"].to_list() == [
        "S1 sells out; calibrated x0.64 from 4 measured lines in tops / coastal casual / low risk",
        "S2 sells out; calibrated x0.77 from 4 measured lines in tops",
        "calibrated x0.93 from 5 measured lines in all categories",
    ]


def test_nothing_measured_leaves_the_plan_alone() -> None:
    t = pl.DataFrame({"sku": ["A"], "to_id": ["S1"], "net_benefit": [5.0], "reason": ["r"]})
    out, dropped = apply_calibration(
        t, calibration_ratios(MEASURED.head(0)), pl.DataFrame(), pl.DataFrame()
    )
    assert out.equals(t)
    assert dropped == 0


def test_only_lines_measured_to_their_season_end_calibrate() -> None:
    d = dt.date(2026, 3, 1)
    measured = pl.DataFrame(
        {
            "sku": ["A", "B", "C", "C"],
            "as_of": [d] * 4,
            "until": [d + dt.timedelta(days=30)] * 3 + [d + dt.timedelta(days=91)],
            "estimated": [1.0] * 4,
            "measured": [1.0] * 4,
        }
    )
    products = pl.DataFrame(
        {
            "sku": ["A", "B", "C"],
            "season_end": [d + dt.timedelta(days=30), d + dt.timedelta(days=31), None],
        }
    )
    kept = measured_to_season_end(measured, products)
    # A ends on the last measured day; B a day later; C has no end: as_of + 13 weeks = 91 days
    assert kept["sku"].to_list() == ["A", "C"]
    assert kept["until"].to_list()[1] == d + dt.timedelta(days=91)
    with_default = measured_to_season_end(measured, products, default_end=d + dt.timedelta(days=10))
    assert with_default["sku"].to_list() == ["A", "C", "C"]


def test_rows_of_grouped_lines_weigh_by_their_line_count() -> None:
    # the 4 tops lines as one row of 4 lines (estimated 40, measured 24): same ratios
    grouped = pl.concat(
        [
            MEASURED.head(1).with_columns(
                pl.lit(40.0).alias("estimated"), pl.lit(24.0).alias("measured")
            ),
            MEASURED.tail(1),
        ]
    ).with_columns(pl.Series("lines", [4, 1]))
    by_line = calibration_ratios(MEASURED, strength=4.0, max_ratio=5.0)
    by_group = calibration_ratios(grouped, strength=4.0, max_ratio=5.0)
    assert by_group["lines"].to_list() == by_line["lines"].to_list()
    assert by_group["ratio"].to_list() == pytest.approx(by_line["ratio"].to_list())
    assert _ratio(by_group, "category", category="tops") == pytest.approx(0.5 * 0.6 + 0.5 * 8.4 / 9)
