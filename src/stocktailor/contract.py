"""The data contract: table schemas, the in-memory bundle of tables, validation errors.

Column names are exact; extra columns are kept as attributes. Dtypes after validation:
ids and text are ``pl.String``, dates ``pl.Date``, quantities ``pl.Int64``, money and
measurements ``pl.Float64``, flags ``pl.Boolean``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import polars as pl

__all__ = [
    "FORECAST_SCHEMA",
    "KINDS",
    "OPTIONAL_TABLES",
    "REQUIRED_TABLES",
    "SCOPES",
    "TABLE_SPECS",
    "TRANSFERS_SCHEMA",
    "ColumnSpec",
    "ContractError",
    "TableSpec",
    "Tables",
    "size_order",
    "validate_tables",
]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a table: its name, dtype and whether the file must have it."""

    name: str
    dtype: type[pl.DataType] | pl.DataType
    required: bool = True


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract."""

    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    required: bool = True

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


S, D, I, F, B = pl.String, pl.Date, pl.Int64, pl.Float64, pl.Boolean  # noqa: E741

TABLE_SPECS: dict[str, TableSpec] = {
    "stores": TableSpec(
        "stores",
        (
            ColumnSpec("store_id", S),
            ColumnSpec("name", S, False),
            ColumnSpec("kind", S),
            ColumnSpec("city", S, False),
            ColumnSpec("region", S, False),
            ColumnSpec("country", S, False),
            ColumnSpec("latitude", F),
            ColumnSpec("longitude", F),
            ColumnSpec("format", S, False),
            ColumnSpec("area_sqm", F, False),
            ColumnSpec("capacity_units", I, False),
        ),
        key=("store_id",),
    ),
    "products": TableSpec(
        "products",
        (
            ColumnSpec("sku", S),
            ColumnSpec("style", S),
            ColumnSpec("color", S),
            ColumnSpec("size", S),
            ColumnSpec("category", S),
            ColumnSpec("full_price", F),
            ColumnSpec("unit_cost", F),
            ColumnSpec("salvage_value", F, False),
            ColumnSpec("season_end", D, False),
            ColumnSpec("size_order", I, False),
        ),
        key=("sku",),
    ),
    "sales": TableSpec(
        "sales",
        (
            ColumnSpec("date", D),
            ColumnSpec("store_id", S),
            ColumnSpec("sku", S),
            ColumnSpec("units", I),
            ColumnSpec("revenue", F),
        ),
        key=("date", "store_id", "sku"),
    ),
    "inventory": TableSpec(
        "inventory",
        (
            ColumnSpec("date", D),
            ColumnSpec("store_id", S),
            ColumnSpec("sku", S),
            ColumnSpec("on_hand", I),
            ColumnSpec("in_transit", I, False),
        ),
        key=("date", "store_id", "sku"),
    ),
    "lanes": TableSpec(
        "lanes",
        (
            ColumnSpec("from_id", S),
            ColumnSpec("to_id", S),
            ColumnSpec("cost_per_unit", F),
            ColumnSpec("cost_per_shipment", F),
            ColumnSpec("lead_time_days", I),
        ),
        key=("from_id", "to_id"),
        required=False,
    ),
    "weather": TableSpec(
        "weather",
        (
            ColumnSpec("date", D),
            ColumnSpec("store_id", S),
            ColumnSpec("temp_c", F),
            ColumnSpec("precip_mm", F),
            ColumnSpec("is_forecast", B, False),
        ),
        key=("date", "store_id"),
        required=False,
    ),
    "events": TableSpec(
        "events",
        (
            ColumnSpec("start_date", D),
            ColumnSpec("end_date", D),
            ColumnSpec("scope", S),
            ColumnSpec("scope_id", S),
            ColumnSpec("name", S),
            ColumnSpec("kind", S, False),
        ),
        key=("start_date", "scope", "scope_id", "name"),
        required=False,
    ),
    "trends": TableSpec(
        "trends",
        (
            ColumnSpec("date", D),
            ColumnSpec("scope", S),
            ColumnSpec("scope_id", S),
            ColumnSpec("attribute", S),
            ColumnSpec("value", S),
            ColumnSpec("index", F),
        ),
        key=("date", "scope", "scope_id", "attribute", "value"),
        required=False,
    ),
    "economy": TableSpec(
        "economy",
        (
            ColumnSpec("date", D),
            ColumnSpec("region", S),
            ColumnSpec("indicator", S),
            ColumnSpec("value", F),
        ),
        key=("date", "region", "indicator"),
        required=False,
    ),
    "assortment": TableSpec(
        "assortment",
        (
            ColumnSpec("store_id", S),
            ColumnSpec("attribute", S),
            ColumnSpec("value", S),
            ColumnSpec("allowed", B),
        ),
        key=("store_id", "attribute", "value"),
        required=False,
    ),
}

REQUIRED_TABLES: tuple[str, ...] = tuple(n for n, s in TABLE_SPECS.items() if s.required)
OPTIONAL_TABLES: tuple[str, ...] = tuple(n for n, s in TABLE_SPECS.items() if not s.required)

# Output files of the contract (DESIGN.md "Outputs"), with the columns stocktailor adds.
FORECAST_SCHEMA: dict[str, Any] = {
    "store_id": pl.String,
    "sku": pl.String,
    "week_start": pl.Date,
    "mean": pl.Float64,
    "var": pl.Float64,
    "p10": pl.Float64,
    "p50": pl.Float64,
    "p90": pl.Float64,
}
"""forecast.parquet: units per week; ``var`` (added) lets a negative binomial be fitted."""

TRANSFERS_SCHEMA: dict[str, Any] = {
    "transfer_id": pl.String,
    "sku": pl.String,
    "style": pl.String,
    "color": pl.String,
    "size": pl.String,
    "from_id": pl.String,
    "to_id": pl.String,
    "units": pl.Int64,
    "ship_date": pl.Date,
    "arrival_date": pl.Date,
    "transfer_cost": pl.Float64,
    "expected_gain": pl.Float64,
    "expected_source_loss": pl.Float64,
    "net_benefit": pl.Float64,
    "reason": pl.String,
    "gain_p10": pl.Float64,
    "gain_p90": pl.Float64,
}
"""transfers.csv: money in currency; ``gain_p10``/``gain_p90`` (added) bound the net benefit."""


class ContractError(ValueError):
    """A table breaks the data contract.

    The message names the file, the row (1-based data row, header excluded, when known),
    the column and what was expected, on one line.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        parts = [
            p
            for p in (
                file,
                f"row {row}" if row is not None else None,
                f"column {column!r}" if column else None,
            )
            if p
        ]
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file = file
        self.row = row
        self.column = column
        self.detail = message


@dataclass(frozen=True)
class Tables:
    """The validated tables of one network, as polars frames (optional ones may be None)."""

    stores: pl.DataFrame
    products: pl.DataFrame
    sales: pl.DataFrame
    inventory: pl.DataFrame
    lanes: pl.DataFrame | None = None
    weather: pl.DataFrame | None = None
    events: pl.DataFrame | None = None
    trends: pl.DataFrame | None = None
    economy: pl.DataFrame | None = None
    assortment: pl.DataFrame | None = None

    def get(self, name: str) -> pl.DataFrame | None:
        """Return table ``name`` (None when an optional table is absent)."""
        if name not in TABLE_SPECS:
            msg = f"unknown table {name!r}; expected one of {sorted(TABLE_SPECS)}"
            raise KeyError(msg)
        frame: pl.DataFrame | None = getattr(self, name)
        return frame

    def items(self) -> list[tuple[str, pl.DataFrame]]:
        """(name, frame) of every table present, in contract order."""
        return [(n, f) for n in TABLE_SPECS if (f := self.get(n)) is not None]

    def replace(self, **frames: pl.DataFrame | None) -> Tables:
        """A copy with some tables replaced."""
        return dataclasses.replace(self, **cast(dict[str, Any], frames))

    @property
    def store_ids(self) -> pl.Series:
        """Ids of selling stores (kind == 'store')."""
        return self.stores.filter(pl.col("kind") == "store")["store_id"]

    @property
    def warehouse_ids(self) -> pl.Series:
        """Ids of warehouses (kind == 'warehouse')."""
        return self.stores.filter(pl.col("kind") == "warehouse")["store_id"]

    def latest_sales_date(self) -> object:
        """The latest sales date (the default as-of date)."""
        return self.sales["date"].max()


# --------------------------------------------------------------------------- validation

KINDS: tuple[str, ...] = ("store", "warehouse")
"""Allowed values of ``stores.kind``."""

SCOPES: tuple[str, ...] = ("store", "city", "region", "all")
"""Allowed values of ``events.scope`` and ``trends.scope``."""

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_MAX_EXACT_INT = 2.0**53

# Letter sizes, smallest first; aliases share a rank.
_LETTER_SIZES: dict[str, int] = {
    "xxxs": 0, "3xs": 0, "xxs": 1, "2xs": 1, "xs": 2, "s": 3, "m": 4, "l": 5, "xl": 6,
    "xxl": 7, "2xl": 7, "xxxl": 8, "3xl": 8, "xxxxl": 9, "4xl": 9,
}  # fmt: skip
_PREFIXED_SIZE = re.compile(r"^([A-Za-z]+)\s*(\d+)$")
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


def size_order(sizes: Sequence[str]) -> dict[str, int]:
    """Rank sizes, 1 = smallest.

    Known ladders are recognised: letter sizes (XXS < XS < S < M < L < XL < XXL, case
    insensitive, with 2XL/3XL aliases), numeric sizes (36..45, 8.5, ...) and a common
    prefix with a number (S1 < S2 < ... < S5). Otherwise the order of first appearance.

    Parameters
    ----------
    sizes
        Sizes in order of appearance (duplicates allowed).

    Returns
    -------
    dict
        size -> rank (1-based, dense: equal sizes such as ``XXL`` and ``2XL`` share a rank).
    """
    uniq = list(dict.fromkeys(sizes))
    keys: list[float] | None = None
    low = [u.strip().lower() for u in uniq]
    if all(x in _LETTER_SIZES for x in low):
        keys = [float(_LETTER_SIZES[x]) for x in low]
    else:
        try:
            keys = [float(x) for x in low]
        except ValueError:
            keys = None
        if keys is not None and not all(math.isfinite(k) for k in keys):
            keys = None
        if keys is None:
            matches = [_PREFIXED_SIZE.match(u.strip()) for u in uniq]
            if all(matches) and len({m.group(1).lower() for m in matches if m}) == 1:
                keys = [float(m.group(2)) for m in matches if m]
    if keys is None:
        keys = [float(i) for i in range(len(uniq))]
    ranks = {k: r for r, k in enumerate(sorted(set(keys)), start=1)}
    return {u: ranks[k] for u, k in zip(uniq, keys, strict=True)}


def _size_orders(products: pl.DataFrame) -> pl.Series:
    """The size rank of every product row within its style."""
    pairs = products.select("style", "size").unique(maintain_order=True)
    by_style: dict[str, list[str]] = {}
    for style, size in pairs.iter_rows():
        by_style.setdefault(style, []).append(size)
    rows: list[tuple[str, str, int]] = []
    for style, sizes in by_style.items():
        rows.extend((style, size, rank) for size, rank in size_order(sizes).items())
    mapping = pl.DataFrame(
        rows, schema={"style": pl.String, "size": pl.String, "_rank": pl.Int64}, orient="row"
    )
    joined = products.select("style", "size").join(
        mapping, on=["style", "size"], how="left", maintain_order="left"
    )
    return joined["_rank"].alias("size_order")


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
    if raw.height == 0:
        raise src.error("the table is empty (no data rows)")
    cols = raw.columns
    # scope_id may be empty when scope is 'all' (checked with the values)
    nullable = {"scope_id"} if spec.name in ("events", "trends") else set()
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


def _check_stores(df: pl.DataFrame, src: _Source) -> pl.DataFrame:
    df = df.with_columns(pl.col("kind").str.to_lowercase())
    src.check(
        df,
        ~pl.col("kind").is_in(KINDS),
        "kind",
        lambda v: f"expected 'store' or 'warehouse', got {_show(v)}",
    )
    src.check(
        df,
        (pl.col("latitude") < -90) | (pl.col("latitude") > 90),
        "latitude",
        lambda v: f"expected a latitude between -90 and 90 degrees, got {_show(v)}",
    )
    src.check(
        df,
        (pl.col("longitude") < -180) | (pl.col("longitude") > 180),
        "longitude",
        lambda v: f"expected a longitude between -180 and 180 degrees, got {_show(v)}",
    )
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
    if "season_end" not in df.columns or df["season_end"].null_count() > 0:
        if season_end is None:
            if "season_end" not in df.columns:
                raise src.error(
                    "missing and no default: add a season_end column (YYYY-MM-DD) or set "
                    "season.end in the config",
                    column="season_end",
                )
            idx = _first_true(df["season_end"].is_null())
            raise src.error(
                "expected a date (YYYY-MM-DD), got an empty cell and no default "
                "(set season.end in the config)",
                row=None if idx is None else idx + 1,
                column="season_end",
            )
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
    key = list(spec.key)
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


def validate_tables(
    raw: Mapping[str, pl.DataFrame | None],
    *,
    sources: Mapping[str, str] | None = None,
    salvage_fraction: float = 0.3,
    season_end: dt.date | None = None,
    horizon_days: int = 7,
) -> Tables:
    """Validate raw tables against the contract, cast them and fill defaults.

    Parameters
    ----------
    raw
        Table name -> frame as read (all-string columns from CSV, or typed from Parquet).
        Optional tables may be absent or None.
    sources
        Table name -> file name used in error messages (default: the table name).
    salvage_fraction
        ``products.salvage_value`` default as a share of ``full_price`` (0..1).
    season_end
        ``products.season_end`` default (last full-price day); without it the column is
        required.
    horizon_days
        Sales may be dated at most this many days after the latest inventory snapshot, days.

    Returns
    -------
    Tables
        Frames with the contract dtypes, spec columns first (absent optional ones as nulls,
        defaults filled), then the extra attribute columns with inferred types. Row order is
        kept.

    Raises
    ------
    ContractError
        On the first problem found, naming the file, the 1-based data row (header
        excluded), the column and what was expected.
    """
    srcs = dict(sources or {})
    unknown = sorted(n for n in raw if n not in TABLE_SPECS)
    if unknown:
        msg = f"unknown table {unknown[0]!r}; the tables are: {', '.join(TABLE_SPECS)}"
        raise ContractError(msg, file=srcs.get(unknown[0]))
    for name in REQUIRED_TABLES:
        if raw.get(name) is None:
            msg = f"missing required table {name!r} (add {name}.csv or {name}.parquet)"
            raise ContractError(msg)
    src = {name: _Source(name, srcs) for name in TABLE_SPECS}
    frames: dict[str, pl.DataFrame] = {}
    for name, spec in TABLE_SPECS.items():
        frame = raw.get(name)
        if frame is not None:
            frames[name] = _cast_table(spec, frame, src[name])

    stores = _check_stores(frames["stores"], src["stores"])
    frames["stores"] = stores
    frames["products"] = _fill_spec_columns(
        TABLE_SPECS["products"],
        _check_products(frames["products"], src["products"], salvage_fraction, season_end),
    )
    products = frames["products"]
    for name, frame in frames.items():
        _check_keys(frame, TABLE_SPECS[name], src[name])

    store_ids = stores["store_id"]
    skus = products["sku"]
    stores_file = src["stores"].file
    products_file = src["products"].file
    for name in ("sales", "inventory", "weather", "assortment"):
        if name in frames:
            _check_known(frames[name], src[name], "store_id", store_ids, "store_id", stores_file)
    for name in ("sales", "inventory"):
        _check_known(frames[name], src[name], "sku", skus, "sku", products_file)

    sales, inventory = frames["sales"], frames["inventory"]
    warehouses = stores.filter(pl.col("kind") == "warehouse")["store_id"]
    src["sales"].check(
        sales,
        pl.col("store_id").is_in(warehouses.implode()),
        "store_id",
        lambda v: (
            f"{_show(v)} is a warehouse (kind 'warehouse' in {stores_file}); "
            "sales are recorded at stores only"
        ),
    )
    latest_snapshot = inventory["date"].max()
    if isinstance(latest_snapshot, dt.date):
        limit = latest_snapshot + dt.timedelta(days=horizon_days)
        src["sales"].check(
            sales,
            pl.col("date") > limit,
            "date",
            lambda v: (
                f"sales dated {_show(v)} are more than {horizon_days} days "
                f"(season.horizon_days) after the latest inventory snapshot "
                f"({latest_snapshot.isoformat()})"
            ),
        )
    inv = src["inventory"]
    _check_nonnegative(inventory, inv, ["on_hand", "in_transit"])
    in_transit = (
        pl.col("in_transit").fill_null(0)
        if "in_transit" in inventory.columns
        else pl.lit(0, dtype=pl.Int64).alias("in_transit")
    )
    frames["inventory"] = inventory.with_columns(in_transit)

    if "lanes" in frames:
        lanes, ls = frames["lanes"], src["lanes"]
        for c in ("from_id", "to_id"):
            _check_known(lanes, ls, c, store_ids, "location", stores_file)
        ls.check(
            lanes,
            pl.col("from_id") == pl.col("to_id"),
            "to_id",
            lambda v: f"a lane from {_show(v)} to itself",
        )
        _check_nonnegative(lanes, ls, ["cost_per_unit", "cost_per_shipment", "lead_time_days"])

    if "weather" in frames:
        weather = frames["weather"]
        _check_nonnegative(weather, src["weather"], ["precip_mm"])
        last_sale = sales["date"].max()
        forecast = pl.col("date") > pl.lit(last_sale, dtype=pl.Date)
        frames["weather"] = weather.with_columns(
            pl.coalesce("is_forecast", forecast).alias("is_forecast")
            if "is_forecast" in weather.columns
            else forecast.alias("is_forecast")
        )

    for name in ("events", "trends"):
        if name not in frames:
            continue
        frame, s = frames[name].with_columns(pl.col("scope").str.to_lowercase()), src[name]
        frames[name] = frame
        s.check(
            frame,
            ~pl.col("scope").is_in(SCOPES),
            "scope",
            lambda v: f"expected one of store, city, region, all; got {_show(v)}",
        )
        s.check(
            frame,
            (pl.col("scope") != "all") & pl.col("scope_id").is_null(),
            "scope_id",
            lambda v: "expected an id (a store_id, city or region), got an empty cell",
        )
        s.check(
            frame,
            (pl.col("scope") == "store") & ~pl.col("scope_id").is_in(store_ids.implode()),
            "scope_id",
            lambda v: f"unknown store_id {_show(v)} (not in {stores_file})",
        )
    if "events" in frames:
        src["events"].check(
            frames["events"],
            pl.col("end_date") < pl.col("start_date"),
            "end_date",
            lambda v: f"end_date {_show(v)} is before start_date",
        )
    for name in ("trends", "assortment"):
        if name in frames:
            src[name].check(
                frames[name],
                ~pl.col("attribute").is_in(products.columns),
                "attribute",
                lambda v: (
                    f"expected a column of {products_file} "
                    f"({', '.join(products.columns)}), got {_show(v)}"
                ),
            )

    return Tables(**{n: _fill_spec_columns(TABLE_SPECS[n], f) for n, f in frames.items()})
