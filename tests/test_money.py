"""Money in the retailer's currency (issue 18): the formatter, the setting, the reasons."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from _transfer_cases import AS_OF, tiny_tables
from stocktailor.config import ConfigError, Settings, SolverConfig, load_settings
from stocktailor.money import format_money, money_label
from stocktailor.transfers import plan_network, plan_transfers, summarise_recommendations


@pytest.mark.parametrize(
    ("value", "code", "cents", "text"),
    [
        (1_234_567.0, "VND", None, "1.234.567 ₫"),
        (999.4, "VND", None, "999 ₫"),  # no minor unit at all
        (-25_000.0, "VND", None, "-25.000 ₫"),
        (12.5, "USD", None, "$12.50"),
        (3_993_748.82, "USD", None, "$3,993,749"),  # no cents above 1,000
        (999.994, "USD", None, "$999.99"),
        (1_234.5, "USD", True, "$1,234.50"),
        (12.5, "USD", False, "$12"),  # round half to even, as Python formats
        (-1_500.4, "EUR", None, "-1.500 €"),
        (999.5, "EUR", None, "999,50 €"),
        (12.6, "JPY", None, "¥13"),
        (1_234.0, "XAF", None, "1,234 XAF"),  # a code not in the table follows the number
        (-0.001, "USD", None, "$0.00"),  # rounds to zero: no minus sign
    ],
)
def test_format_money(value: float, code: str, cents: bool | None, text: str) -> None:
    assert format_money(value, code, cents=cents) == text


def test_format_money_rejects_a_code_that_is_not_iso_and_shows_nan_as_a_dash() -> None:
    with pytest.raises(ValueError, match=r"economics\.currency: expected a three-letter"):
        format_money(1.0, "dollars")
    assert format_money(math.nan, "USD") == "–"
    assert format_money(12.0, "vnd") == "12 ₫"  # lower case read as the code


def test_money_label() -> None:
    assert money_label("VND") == "VND (₫)"
    assert money_label("USD") == "USD ($)"
    assert money_label("XAF") == "XAF"


def test_currency_setting_defaults_to_usd_and_takes_an_iso_code() -> None:
    assert Settings().economics.currency == "USD"
    env = {"STOCKTAILOR_ECONOMICS__CURRENCY": "VND"}
    assert load_settings(environ=env).economics.currency == "VND"
    with pytest.raises(ConfigError, match=r"setting economics\.currency"):
        load_settings(environ={"STOCKTAILOR_ECONOMICS__CURRENCY": "dong"})


def test_transfer_reasons_state_net_benefit_in_the_settings_currency() -> None:
    t, fc = tiny_tables()
    usd = plan_transfers(t, AS_OF, fc, Settings(solver=SolverConfig(joint_warehouse=False)))
    vnd = plan_transfers(
        t,
        AS_OF,
        fc,
        Settings(solver=SolverConfig(joint_warehouse=False), economics={"currency": "VND"}),
    )
    assert usd.height == vnd.height >= 1
    np.testing.assert_allclose(usd["net_benefit"], vnd["net_benefit"])  # only the text differs
    for a, b in zip(usd.iter_rows(named=True), vnd.iter_rows(named=True), strict=True):
        assert a["reason"].endswith(f"adds {format_money(a['net_benefit'], cents=False)} net")
        assert b["reason"].endswith(f"adds {format_money(b['net_benefit'], 'VND')} net")
        assert "$" in a["reason"] and "$" not in b["reason"] and "₫" in b["reason"]


def test_recommendation_groups_state_their_net_benefit_in_the_currency() -> None:
    t, fc = tiny_tables()
    settings = Settings(solver=SolverConfig(joint_warehouse=False))
    plan = plan_network(t, AS_OF, fc, settings)
    recs = summarise_recommendations(plan.allocation, plan.transfers, currency="VND")
    assert recs.height >= 1
    groups = recs.group_by("group_id", "group_summary").agg(pl.col("net_benefit").sum())
    for g in groups.iter_rows(named=True):
        assert g["group_summary"].startswith("Move ")
        assert g["group_summary"].endswith(f", net benefit {format_money(g['net_benefit'], 'VND')}")
    usd = summarise_recommendations(plan.allocation, plan.transfers)
    assert all(s.rsplit(" ", 1)[-1].startswith("$") for s in usd["group_summary"])
