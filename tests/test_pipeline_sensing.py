"""The daily forecast update: re-dating weekly forecasts and sensing ratios, by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from stocktailor.config import PipelineConfig, Settings
from stocktailor.contract import validate_tables
from stocktailor.demand import nb_quantiles
from stocktailor.pipeline.sensing import day_share, redate_part, sensing_ratios, weekday_profile

A = dt.date(2024, 3, 4)  # a Monday: weeks start on Tuesdays
UNIFORM = (1 / 7,) * 7


def _part(path: Path, means: list[float], extra: float = 0.0) -> str:
    weeks = [A + dt.timedelta(days=1 + 7 * i) for i in range(len(means))]
    frame = pl.DataFrame(
        {
            "store_id": ["S1"] * len(means),
            "sku": ["K1"] * len(means),
            "week_start": weeks,
            "mean": means,
            "var": [m + extra * m * m for m in means],
            "p10": [0.0] * len(means),
            "p50": [0.0] * len(means),
            "p90": [0.0] * len(means),
        }
    )
    file = path / "part-00000.parquet"
    frame.write_parquet(file)
    return str(file)


def _redate(
    tmp_path: Path,
    source: str,
    day: dt.date,
    ratio: float = 1.0,
    profile: tuple[float, ...] = UNIFORM,
) -> pl.DataFrame:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    ratios = pl.DataFrame({"store_id": ["S1"], "style": ["T"], "ratio": [ratio]})
    styles = pl.DataFrame({"sku": ["K1"], "style": ["T"]})
    redate_part(
        source,
        target_dir=str(out),
        fitted_on=A,
        day=day,
        ratios=ratios,
        styles=styles,
        quantiles=(0.1, 0.5, 0.9),
        profile=profile,
    )
    return pl.read_parquet(out / Path(source).name)


def test_redating_cuts_weeks_pro_rata(tmp_path: Path) -> None:
    # weeks of 7, 14, 21 units; three days later each new week is 4/7 of one and 3/7 of the next
    got = _redate(tmp_path, _part(tmp_path, [7.0, 14.0, 21.0]), A + dt.timedelta(days=3))
    assert got["week_start"].to_list() == [A + dt.timedelta(days=4 + 7 * j) for j in range(3)]
    assert got["mean"].to_list() == pytest.approx([10.0, 17.0, 12.0])
    assert got["var"].to_list() == pytest.approx([10.0, 17.0, 12.0])  # Poisson stays Poisson
    q = nb_quantiles(got["mean"].to_numpy(), got["var"].to_numpy(), (0.1, 0.5, 0.9))
    assert got["p90"].to_list() == q[2].tolist()
    # a whole week later the forecast is the old one from its second week
    week = _redate(tmp_path, _part(tmp_path, [7.0, 14.0, 21.0]), A + dt.timedelta(days=7))
    assert week["mean"].to_list() == pytest.approx([14.0, 21.0])
    assert week["week_start"].to_list() == [A + dt.timedelta(days=8), A + dt.timedelta(days=15)]


def test_redating_scales_by_the_ratio_and_keeps_overdispersion_shape(tmp_path: Path) -> None:
    got = _redate(tmp_path, _part(tmp_path, [7.0, 7.0], extra=0.5), A + dt.timedelta(days=7), 2.0)
    # mean 7, var 7 + 0.5 * 49 = 31.5; r = 2: mean 14, var 2 * 7 + 4 * 24.5 = 112
    assert got["mean"].to_list() == pytest.approx([14.0])
    assert got["var"].to_list() == pytest.approx([112.0])


def test_redating_follows_the_weekday_profile(tmp_path: Path) -> None:
    # all of a week's demand on Saturdays: moving from Monday to Wednesday keeps each Saturday
    profile = (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    got = _redate(tmp_path, _part(tmp_path, [7.0, 14.0]), A + dt.timedelta(days=2), 1.0, profile)
    assert got["mean"].to_list() == pytest.approx([7.0, 14.0])
    assert day_share(profile, A + dt.timedelta(days=1), 2) == 0.0  # Tuesday and Wednesday
    assert day_share(UNIFORM, A, 7) == pytest.approx(1.0)


def _tables(
    sales: list[tuple[dt.date, str, str, int]], stock: dict[tuple[str, str], int]
) -> object:
    stores = pl.DataFrame(
        {
            "store_id": ["S1", "S2"],
            "kind": ["store"] * 2,
            "latitude": [1.0, 2.0],
            "longitude": [1.0, 2.0],
        }
    )
    products = pl.DataFrame(
        {
            "sku": ["K1", "K2"],
            "style": ["T", "T"],
            "color": ["red", "red"],
            "size": ["S", "M"],
            "category": ["tops"] * 2,
            "full_price": [10.0] * 2,
            "unit_cost": [4.0] * 2,
            "season_end": [dt.date(2024, 6, 30)] * 2,
        }
    )
    sales_frame = pl.DataFrame(
        sales, schema=["date", "store_id", "sku", "units"], orient="row"
    ).with_columns(pl.col("units").cast(pl.Float64).alias("revenue"))
    inventory = pl.DataFrame(
        {
            "date": [A] * len(stock),
            "store_id": [k[0] for k in stock],
            "sku": [k[1] for k in stock],
            "on_hand": list(stock.values()),
        }
    )
    return validate_tables(
        {"stores": stores, "products": products, "sales": sales_frame, "inventory": inventory}
    )


def _weekly(means: dict[tuple[str, str], float]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "store_id": [k[0] for k in means],
            "sku": [k[1] for k in means],
            "week_start": [A + dt.timedelta(days=1)] * len(means),
            "mean": list(means.values()),
            "var": list(means.values()),
        }
    )


def test_sensing_counts_well_stocked_cells_and_shrinks() -> None:
    day = A + dt.timedelta(days=7)
    sales = [(A + dt.timedelta(days=d), "S1", "K1", 4) for d in range(1, 8)]  # 28 units
    sales += [(A + dt.timedelta(days=d), "S2", "K2", 1) for d in range(1, 8)]  # 7 units
    stock = {("S1", "K1"): 200, ("S2", "K1"): 200, ("S2", "K2"): 2}  # S2-K2 could run out
    tables = _tables(sales, stock)
    fc = _weekly({("S1", "K1"): 14.0, ("S2", "K1"): 14.0, ("S2", "K2"): 14.0})
    settings = Settings(pipeline=PipelineConfig(sensing_prior_units=14.0, sensing_bounds=(0.1, 10)))
    got = sensing_ratios(tables, fc, A, day, settings, UNIFORM).sort("store_id")  # type: ignore[arg-type]
    # style T over the counted cells: sold 28 + 0, forecast 14 + 14 -> g = (28 + 14) / (28 + 14) = 1
    # S1: (28 + 14 * 1) / (14 + 14) = 1.5; S2: (0 + 14) / (14 + 14) = 0.5 (K2 not counted)
    assert got["ratio"].to_list() == pytest.approx([1.5, 0.5])
    assert got["sold"].to_list() == [28.0, 0.0]
    assert got["forecast"].to_list() == [14.0, 14.0]


def test_weekday_profile_from_sales() -> None:
    first = A - dt.timedelta(days=13)  # two whole weeks ending on A
    sales = [
        (
            first + dt.timedelta(days=d),
            "S1",
            "K1",
            2 if (first + dt.timedelta(days=d)).weekday() >= 5 else 1,
        )
        for d in range(14)
    ]
    profile = weekday_profile(_tables(sales, {("S1", "K1"): 5}), A)  # type: ignore[arg-type]
    assert profile == pytest.approx([1 / 9] * 5 + [2 / 9] * 2)
    short = weekday_profile(_tables(sales[-10:], {("S1", "K1"): 5}), A)  # type: ignore[arg-type]
    assert short == pytest.approx(UNIFORM)
