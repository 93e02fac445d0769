"""Structure and value checks of single tables, with errors naming file, row and column."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from stocktailor.contract.parsing import _expected, _first_true, _infer, _parse, _show
from stocktailor.contract.sizes import _size_orders
from stocktailor.contract.specs import KINDS, TableSpec
from stocktailor.contract.tables import ContractError


class _Source:
    """Where a table came from, for error messages."""

    def __init__(self, table: str, sources: Mapping[str, str]) -> None:
        self.table = table
        self.file = sources.get(table, table)

    def error(
        self, message: str, *, row: int | None = None, column: str | None = None
    ) -> ContractError:
        return ContractError(message, file=self.file, row=row, column=column)

    def check(
        self,
        df: pl.DataFrame,
        mask: pl.Expr,
        column: str,
        describe: Callable[[Any], str],
    ) -> None:
        """Raise naming the first row where ``mask`` is True (``describe`` gets the cell)."""
        idx = df.select(pl.arg_where(mask.fill_null(False)).first()).item()
        if idx is not None:
            raise self.error(describe(df[column][idx]), row=int(idx) + 1, column=column)


def _cast_table(spec: TableSpec, raw: pl.DataFrame, src: _Source) -> pl.DataFrame:
    """Check the structure of one table and parse its columns (no value checks yet)."""
    if raw.height == 0 and spec.required:
        raise src.error("the table is empty (no data rows)")
    cols = raw.columns
    # scope_id may be empty when scope is 'all' (checked with the values)
    nullable = {"scope_id"} if spec.name in ("events", "trends", "posts") else set()
    missing = [c for c in spec.required_columns if c not in cols]
    if missing:
        hints = [
            f"{c!r} for {m!r}" for m in missing for c in cols if c != m and c.strip().lower() == m
        ]
        hint = f"; did you mean {', '.join(hints)}? (column names are exact)" if hints else ""
        found = ", ".join(cols)
        if len(missing) == 1:
            raise src.error(
                f"missing required column (the table has: {found}){hint}", column=missing[0]
            )
        names = ", ".join(repr(m) for m in missing)
        raise src.error(f"missing required columns {names} (the table has: {found}){hint}")
    out: dict[str, pl.Series] = {}
    for c in spec.columns:
        if c.name not in cols:
            continue
        s = raw[c.name]
        parsed, bad = _parse(s, c.dtype)
        idx = _first_true(bad)
        if idx is not None:
            what = "" if s.dtype == pl.String else f" (a {s.dtype} column)"
            raise src.error(
                f"expected {_expected(c.dtype)}, got {_show(s[idx])}{what}",
                row=idx + 1,
                column=c.name,
            )
        if c.required and c.name not in nullable:
            idx = _first_true(parsed.is_null())
            if idx is not None:
                blank = all(v is None for v in raw.row(idx))
                got = "an empty row (a blank line?)" if blank else "an empty cell"
                raise src.error(
                    f"expected {_expected(c.dtype)}, got {got}", row=idx + 1, column=c.name
                )
        out[c.name] = parsed.alias(c.name)
    for extra in cols:
        if extra not in out:
            out[extra] = _infer(raw[extra]).alias(extra)
    return pl.DataFrame(list(out.values()))


def _fill_spec_columns(spec: TableSpec, df: pl.DataFrame) -> pl.DataFrame:
    """Add absent optional columns as nulls; spec columns first, then attributes."""
    add = [
        pl.lit(None, dtype=c.dtype).alias(c.name) for c in spec.columns if c.name not in df.columns
    ]
    if add:
        df = df.with_columns(add)
    extras = [c for c in df.columns if c not in spec.column_names]
    return df.select([*spec.column_names, *extras])


def _check_nonnegative(df: pl.DataFrame, src: _Source, columns: Sequence[str]) -> None:
    for c in columns:
        if c in df.columns:
            src.check(df, pl.col(c) < 0, c, lambda v: f"expected a value >= 0, got {_show(v)}")


def _degrees(column: str, bound: int) -> Callable[[Any], str]:
    def describe(v: Any) -> str:
        return f"expected a {column} between -{bound} and {bound} degrees, got {_show(v)}"

    return describe


def _check_stores(df: pl.DataFrame, src: _Source) -> pl.DataFrame:
    df = df.with_columns(pl.col("kind").str.to_lowercase())
    src.check(
        df,
        ~pl.col("kind").is_in(KINDS),
        "kind",
        lambda v: f"expected 'store' or 'warehouse', got {_show(v)}",
    )
    for col, bound in (("latitude", 90), ("longitude", 180)):
        if col in df.columns:
            src.check(df, (pl.col(col) < -bound) | (pl.col(col) > bound), col, _degrees(col, bound))
    _check_nonnegative(df, src, ["area_sqm", "capacity_units"])
    return df


def _check_products(
    df: pl.DataFrame, src: _Source, salvage_fraction: float, season_end: dt.date | None
) -> pl.DataFrame:
    src.check(
        df,
        pl.col("full_price") <= 0,
        "full_price",
        lambda v: f"expected a price > 0, got {_show(v)}",
    )
    _check_nonnegative(df, src, ["unit_cost", "salvage_value"])
    if "salvage_value" in df.columns:
        src.check(
            df,
            pl.col("salvage_value") > pl.col("full_price"),
            "salvage_value",
            lambda v: f"expected a value <= full_price, got {_show(v)} (above the full price)",
        )
    default_salvage = (pl.col("full_price") * salvage_fraction).alias("salvage_value")
    if "salvage_value" in df.columns:
        df = df.with_columns(pl.coalesce("salvage_value", default_salvage))
    else:
        df = df.with_columns(default_salvage)
    # Without a season end (column or setting) the assortment never ends: no date is invented.
    if season_end is not None and (
        "season_end" not in df.columns or df["season_end"].null_count() > 0
    ):
        default_end = pl.lit(season_end, dtype=pl.Date).alias("season_end")
        if "season_end" in df.columns:
            df = df.with_columns(pl.coalesce("season_end", default_end))
        else:
            df = df.with_columns(default_end)
    if "size_order" in df.columns:
        src.check(
            df,
            pl.col("size_order") < 0,
            "size_order",
            lambda v: f"expected a rank >= 0, got {_show(v)}",
        )
    if "size_order" not in df.columns or df["size_order"].null_count() > 0:
        inferred = _size_orders(df)
        if "size_order" in df.columns:
            df = df.with_columns(pl.coalesce(pl.col("size_order"), pl.lit(inferred)))
        else:
            df = df.with_columns(inferred)
    return df


def _check_known(
    df: pl.DataFrame,
    src: _Source,
    column: str,
    known: pl.Series,
    what: str,
    where: str,
) -> None:
    src.check(
        df,
        pl.col(column).is_not_null() & ~pl.col(column).is_in(known.implode()),
        column,
        lambda v: f"unknown {what} {_show(v)} (not in {where})",
    )


def _check_keys(df: pl.DataFrame, spec: TableSpec, src: _Source) -> None:
    key = [k for k in spec.key if k in df.columns]  # optional key columns may be absent
    # fast path: distinct row hashes prove distinct keys (equal keys hash equally)
    if df.select(pl.struct(key).hash().n_unique()).item() == df.height:
        return
    dup = ~pl.struct(key).is_first_distinct()
    idx = df.select(pl.arg_where(dup).first()).item()
    if idx is None:
        return
    values = df.row(int(idx), named=True)
    match = pl.all_horizontal(
        [pl.col(k).eq_missing(pl.lit(values[k], dtype=df.schema[k])) for k in key]
    )
    first = int(df.select(pl.arg_where(match).first()).item())
    shown = ", ".join(f"{k}={_show(values[k])}" for k in key)
    raise src.error(
        f"duplicate key ({shown}); the same key is already at row {first + 1}",
        row=int(idx) + 1,
        column=key[0] if len(key) == 1 else None,
    )
