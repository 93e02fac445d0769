"""Tests of the signal features: weeks, weather anomaly, event scopes, trend matching."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stocktailor.contract import Tables
from stocktailor.signals import (
    anomaly_persistence,
    build_features,
    climate_normals,
    economy_weekly,
    event_weekly,
    match_trends,
    trend_weekly,
    weather_weekly,
    week_of,
    week_start,
)

D = dt.date
AS_OF = D(2024, 1, 14)


def _tables(**extra: pl.DataFrame) -> Tables:
    stores = pl.DataFrame(
        {
            "store_id": ["A", "B", "C"],
            "kind": ["store"] * 3,
            "latitude": [0.0] * 3,
            "longitude": [0.0] * 3,
            "city": ["Oslo", "Oslo", "Rome"],
            "region": ["North", "North", "South"],
        }
    )
    products = pl.DataFrame(
        {
            "sku": ["p1", "p2", "q1"],
            "style": ["p", "p", "q"],
            "color": ["red", "red", "blue"],
            "size": ["M", "L", "M"],
            "category": ["tops", "tops", "shoes"],
            "full_price": [10.0, 10.0, 50.0],
            "unit_cost": [4.0, 4.0, 20.0],
            "tags": ["bright;sneaker", "bright;sneaker", "classic"],
        }
    )
    empty_sales = pl.DataFrame(
        schema={
            "date": pl.Date,
            "store_id": pl.String,
            "sku": pl.String,
            "units": pl.Int64,
            "revenue": pl.Float64,
        }
    )
    empty_inv = pl.DataFrame(
        schema={"date": pl.Date, "store_id": pl.String, "sku": pl.String, "on_hand": pl.Int64}
    )
    return Tables(stores, products, empty_sales, empty_inv, **extra)  # type: ignore[arg-type]


def test_week_index() -> None:
    f = pl.DataFrame(
        {"d": [D(2024, 1, 8), D(2024, 1, 14), D(2024, 1, 15), D(2024, 1, 21), D(2024, 1, 22)]}
    )
    assert f.select(week_of("d", AS_OF))["d"].to_list() == [-1, -1, 0, 0, 1]
    assert week_start(0, AS_OF) == D(2024, 1, 15)
    assert week_start(-2, AS_OF) == D(2024, 1, 1)


def test_event_scopes_reach_the_right_stores() -> None:
    ev = pl.DataFrame(
        {
            "start_date": [D(2024, 1, 15), D(2024, 1, 16), D(2024, 1, 20)],
            "end_date": [D(2024, 1, 16), D(2024, 1, 16), D(2024, 1, 20)],
            "scope": ["city", "store", "all"],
            "scope_id": ["Oslo", "C", "all"],
            "name": ["fest", "opening", "holiday"],
            "kind": ["festival", "local", "holiday"],
        }
    )
    out = event_weekly(_tables(events=ev), AS_OF).filter(pl.col("week") == 0).sort("store_id")
    # A, B: 2 festival days + 1 holiday; C: 1 local day + 1 holiday.
    assert out["event_days"].to_list() == [3.0, 3.0, 2.0]
    assert out["ev_holiday"].to_list() == [1.0, 1.0, 1.0]


def test_weather_anomaly_vs_store_normal() -> None:
    days = [AS_OF - dt.timedelta(days=i) for i in range(27, -1, -1)]
    future = [AS_OF + dt.timedelta(days=i) for i in range(1, 8)]
    w = pl.DataFrame(
        {
            "date": days + future,
            "store_id": ["A"] * 35,
            "temp_c": [10.0] * 28 + [2.0] * 7,
            "precip_mm": [0.0] * 28 + [6.0] * 7,
            "is_forecast": [False] * 28 + [True] * 7,
        }
    )
    out = weather_weekly(_tables(weather=w), AS_OF).filter(pl.col("week") == 0)
    assert out["temp_c"].item() == pytest.approx(2.0)
    assert out["temp_anom"].item() == pytest.approx(-8.0)
    assert out["rain_days"].item() == 7.0


def test_trends_match_tags_and_lead() -> None:
    days = [AS_OF - dt.timedelta(days=i) for i in range(41, -1, -1)]
    idx = [100.0] * 35 + [300.0] * 7  # a surge in the last week of history
    tr = pl.DataFrame(
        {
            "date": days,
            "scope": ["city"] * 42,
            "scope_id": ["Oslo"] * 42,
            "attribute": ["tags"] * 42,
            "value": ["sneaker"] * 42,
            "index": idx,
        }
    )
    t = _tables(trends=tr)
    assert match_trends(t).to_dicts() == [{"attribute": "tags", "value": "sneaker", "style": "p"}]
    out = trend_weekly(t, AS_OF, lead_days=7)
    assert set(out["store_id"].unique().to_list()) == {"A", "B"}
    a = out.filter(pl.col("store_id") == "A").sort("week")
    # With a 7-day lead, the surge of the last history week drives forecast week 0.
    w0 = a.filter(pl.col("week") == 0)["trend"].item()
    wm1 = a.filter(pl.col("week") == -1)["trend"].item()
    assert w0 > 2.0 * wm1


def test_economy_carried_forward_by_region() -> None:
    ec = pl.DataFrame(
        {
            "date": [D(2024, 1, 1), D(2024, 1, 1)],
            "region": ["North", "South"],
            "indicator": ["confidence", "confidence"],
            "value": [95.0, 105.0],
        }
    )
    out = economy_weekly(_tables(economy=ec), AS_OF).filter(pl.col("week") == 3).sort("store_id")
    assert out["econ_confidence"].to_list() == [95.0, 95.0, 105.0]


def test_build_features_joins_without_duplicating_rows() -> None:
    ev = pl.DataFrame(
        {
            "start_date": [D(2024, 1, 15)],
            "end_date": [D(2024, 1, 16)],
            "scope": ["all"],
            "scope_id": ["all"],
            "name": ["x"],
            "kind": ["holiday"],
        }
    )
    keys = pl.DataFrame(
        {"store_id": ["A", "C"], "style": ["p", "q"], "week": pl.Series([0, 1], dtype=pl.Int32)}
    )
    out = build_features(_tables(events=ev), AS_OF, keys)
    assert out.height == 2
    assert out["event_days"].to_list() == [2.0, 0.0]
    assert out["category_code"].to_list() == [2, 1]


def test_climate_normals_recover_the_harmonic_and_fill_future_weeks() -> None:
    start = AS_OF - dt.timedelta(days=89)
    days = [start + dt.timedelta(days=i) for i in range(90 + 14)]  # history + 14 forecast days
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    rows = []
    for s, (mean, amp) in {"A": (12.0, 10.0), "B": (20.0, 5.0)}.items():
        normal = mean - amp * np.cos(2 * np.pi * (doy - 20.0) / 365.25)
        for d, n in zip(days, normal, strict=True):
            rows.append((d, s, float(n) + 1.0, 0.0, d > AS_OF, float(n)))
    w = pl.DataFrame(
        rows,
        schema=["date", "store_id", "temp_c", "precip_mm", "is_forecast", "temp_normal_c"],
        orient="row",
    )
    cn = climate_normals(w, AS_OF).sort("store_id")
    assert cn["mean"].to_list() == pytest.approx([12.0, 20.0], abs=0.05)
    assert cn["amp"].to_list() == pytest.approx([10.0, 5.0], abs=0.05)
    assert cn["phase"].to_list() == [20.0, 20.0]
    t = _tables(weather=w)
    assert weather_weekly(t, AS_OF)["week"].max() == 1  # no climate weeks by default
    out = weather_weekly(t, AS_OF, horizon_weeks=30).filter(pl.col("store_id") == "A")
    assert out["week"].max() == 29
    w10 = out.filter(pl.col("week") == 10)
    d0 = AS_OF + dt.timedelta(days=71)
    expect = np.mean(
        [
            12.0
            - 10.0
            * np.cos(2 * np.pi * ((d0 + dt.timedelta(days=i)).timetuple().tm_yday - 20) / 365.25)
            for i in range(7)
        ]
    )
    # The anomaly (+1 C every day of the history) persists week to week (rho capped at 0.95),
    # so it decays from the last forecast week (week 1) over 9 weeks.
    assert w10["temp_anom"].item() == pytest.approx(0.95**9, abs=0.02)
    assert w10["temp_c"].item() == pytest.approx(expect + 0.95**9, abs=0.1)
    # Forecast weeks keep their own values (actual + 1 C), not the climate.
    assert out.filter(pl.col("week") == 0)["temp_anom"].item() == pytest.approx(1.0)


@settings(max_examples=15, deadline=None)
@given(st.floats(-5.0, 25.0), st.floats(0.0, 15.0))
def test_climate_normals_amplitude_nonnegative(mean: float, amp: float) -> None:
    days = [AS_OF - dt.timedelta(days=i) for i in range(59, -1, -1)]
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    temp = mean - amp * np.cos(2 * np.pi * (doy - 20.0) / 365.25)
    w = pl.DataFrame({"date": days, "store_id": ["A"] * 60, "temp_c": temp})
    cn = climate_normals(w, AS_OF)
    assert cn["amp"].item() >= 0.0
    fitted = cn["mean"].item() - cn["amp"].item() * np.cos(
        2 * np.pi * (doy - cn["phase"].item()) / 365.25
    )
    assert np.abs(fitted - temp).max() < 0.5


def test_a_passing_anomaly_decays_at_once_past_the_forecasts() -> None:
    # Weekly anomalies alternate +2 / -2 C: no persistence, so the climate weeks after the
    # forecasts carry the seasonal normal alone.
    start = AS_OF - dt.timedelta(days=90)
    days = [start + dt.timedelta(days=i) for i in range(90 + 7 + 1)]
    rows = []
    for d in days:
        n = 10.0 - 8.0 * np.cos(2 * np.pi * (d.timetuple().tm_yday - 20.0) / 365.25)
        a = 2.0 if ((d - start).days // 7) % 2 == 0 else -2.0
        rows.append((d, "A", n + a, 0.0, d > AS_OF, n))
    w = pl.DataFrame(
        rows,
        schema=["date", "store_id", "temp_c", "precip_mm", "is_forecast", "temp_normal_c"],
        orient="row",
    )
    norm = climate_normals(w, AS_OF)
    assert anomaly_persistence(w, norm, AS_OF) == 0.0
    out = weather_weekly(_tables(weather=w), AS_OF, horizon_weeks=6)
    assert out.filter(pl.col("week") == 4)["temp_anom"].item() == pytest.approx(0.0, abs=1e-6)
