"""Parsing raw columns (CSV text or typed Parquet) into the contract's dtypes."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_MAX_EXACT_INT = 2.0**53
_PLAIN_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")


def _expected(dtype: type[pl.DataType] | pl.DataType) -> str:
    if dtype == pl.Int64:
        return "an integer"
    if dtype == pl.Float64:
        return "a number"
    if dtype == pl.Date:
        return "a date (YYYY-MM-DD)"
    if dtype == pl.Boolean:
        return "a boolean (true/false, 1/0 or yes/no)"
    return "text"


def _show(value: object) -> str:
    """A cell value as it appears in an error message."""
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _first_true(mask: pl.Series) -> int | None:
    """Index of the first True of a boolean mask (nulls count as False), else None."""
    mask = mask.fill_null(False)
    if not mask.any():
        return None
    return int(mask.arg_true()[0])


def _where(cond: pl.Series, then: pl.Series, otherwise: pl.Series) -> pl.Series:
    out = pl.select(pl.when(pl.lit(cond)).then(pl.lit(then)).otherwise(pl.lit(otherwise)))
    return out.to_series().alias(then.name)


def _clean_text(s: pl.Series) -> pl.Series:
    """Strip surrounding whitespace; empty cells become null."""
    t = s.str.strip_chars()
    return (
        pl.select(pl.when(pl.lit(t).str.len_bytes() > 0).then(pl.lit(t))).to_series().alias(s.name)
    )


def _float_to_int(f: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(ints, ok): floats that hold a whole number become Int64; ``ok`` marks them."""
    ok = (f.is_finite() & (f == f.round(0)) & (f.abs() < _MAX_EXACT_INT)).fill_null(False)
    ints = _where(ok, f.cast(pl.Int64, strict=False), pl.Series(f.name, [None] * len(f), pl.Int64))
    return ints, ok


def _parse(s: pl.Series, dtype: type[pl.DataType] | pl.DataType) -> tuple[pl.Series, pl.Series]:
    """Parse a raw column into ``dtype``.

    Returns
    -------
    (parsed, bad)
        ``parsed`` has dtype ``dtype`` (empty cells are null); ``bad`` marks cells that hold
        a value which is not a valid ``dtype`` value.
    """
    name = s.name
    src = s.dtype
    if src == pl.String:
        t = _clean_text(s)
        present = t.is_not_null()
        if dtype == pl.String:
            return t, pl.Series(name, [False] * len(t), pl.Boolean)
        if dtype == pl.Int64:
            p = t.cast(pl.Int64, strict=False)
            ints, ok = _float_to_int(t.cast(pl.Float64, strict=False))
            p = _where(p.is_null() & ok, ints, p)
            return p, present & p.is_null()
        if dtype == pl.Float64:
            p = t.cast(pl.Float64, strict=False)
            bad = present & (p.is_null() | ~p.is_finite()).fill_null(True)
            return _where(bad, pl.Series(name, [None] * len(p), pl.Float64), p), bad
        if dtype == pl.Date:
            p = t.str.to_date("%Y-%m-%d", strict=False)
            return p, present & p.is_null()
        if dtype == pl.Boolean:
            low = t.str.to_lowercase()
            p = pl.select(
                pl.when(pl.lit(low).is_in(_TRUE))
                .then(True)
                .when(pl.lit(low).is_in(_FALSE))
                .then(False)
                .otherwise(None)
            ).to_series()
            return p.alias(name), present & p.is_null()
        msg = f"unsupported column dtype {dtype}"
        raise TypeError(msg)

    present = s.is_not_null()
    none = pl.Series(name, [None] * len(s), dtype)
    if dtype == pl.String:
        if src == pl.Date:
            return _clean_text(s.dt.to_string("%Y-%m-%d")), pl.Series(name, [False] * len(s))
        if src.is_nested() or src == pl.Object:
            return none, present
        return _clean_text(s.cast(pl.String)), pl.Series(name, [False] * len(s))
    if dtype == pl.Int64:
        if src.is_integer() or src == pl.Boolean:
            p = s.cast(pl.Int64, strict=False)
            return p, present & p.is_null()
        if src.is_float() or src.is_decimal():
            ints, ok = _float_to_int(s.cast(pl.Float64))
            return ints, present & ~ok
        return none, present
    if dtype == pl.Float64:
        if src.is_numeric():
            p = s.cast(pl.Float64)
            bad = present & ~p.is_finite().fill_null(True)
            return _where(bad, none, p), bad
        return none, present
    if dtype == pl.Date:
        if src == pl.Date:
            return s, pl.Series(name, [False] * len(s))
        if isinstance(src, pl.Datetime):
            return s.dt.date(), pl.Series(name, [False] * len(s))
        return none, present
    if dtype == pl.Boolean:
        if src == pl.Boolean:
            return s, pl.Series(name, [False] * len(s))
        if src.is_integer():
            p = pl.select(
                pl.when(pl.lit(s) == 1).then(True).when(pl.lit(s) == 0).then(False)
            ).to_series()
            return p.alias(name), present & p.is_null()
        return none, present
    msg = f"unsupported column dtype {dtype}"
    raise TypeError(msg)


def _infer(s: pl.Series) -> pl.Series:
    """Type an extra (attribute) column: integer, number, date, boolean, else text."""
    if s.dtype != pl.String:
        return s
    t = _clean_text(s)
    values = t.drop_nulls()
    if len(values) == 0:
        return t
    if values.str.contains(r"^[+-]?0[0-9]").any():
        return t  # codes with leading zeros (zip codes, ids) stay text
    if values.str.contains(_PLAIN_INT.pattern).all():
        p = t.cast(pl.Int64, strict=False)
        if p.null_count() == t.null_count():
            return p
    for dtype in (pl.Float64, pl.Date, pl.Boolean):
        parsed, bad = _parse(t, dtype)
        if not bad.any() and (dtype != pl.Float64 or parsed.is_finite().fill_null(True).all()):
            if dtype == pl.Boolean and not values.str.to_lowercase().is_in(["true", "false"]).all():
                continue  # 1/0 columns stay integers, yes/no stays text
            return parsed
    return t
