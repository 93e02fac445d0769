from __future__ import annotations

import pytest

import stocktailor


def test_every_public_name_resolves() -> None:
    for name in stocktailor.__all__:
        assert getattr(stocktailor, name) is not None, name


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = stocktailor.nope  # type: ignore[attr-defined]
