"""Post signals of a published run: the series rising on its as-of date and the lines they touch.

At publish, :func:`signal_rows` links each rising post series
(:func:`stocktailor.posts.rising_signals`) to the run's lines. A line is touched when its style
matches the series' attribute value (as the demand model links trend series to styles,
:func:`stocktailor.signals.match_trends`: a ``tags`` entry, or the ``category``, ``color`` or
``style`` column) and its destination is one of the stores of the series' scope (the store,
the stores of the city or region, or every store). The rows are stored with the run
(``plan_runs.signals``): the dashboard and the API read only the database.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from stocktailor.workflow.common import NotFound, jsonable
from stocktailor.workflow.models import PlanRun, Recommendation

__all__ = [
    "MAX_SIGNAL_LINES",
    "line_signal",
    "run_signals",
    "scope_stores",
    "signal_rows",
    "styles_of",
]

MAX_SIGNAL_LINES = 50
"""At most this many touched lines (largest net benefit first) are kept per series."""

_SERIES_COLUMNS = (
    "scope",
    "scope_id",
    "attribute",
    "value",
    "index",
    "change",
    "novelty",
    "posts",
    "text",
)

_LINE_COLUMNS = (
    Recommendation.id,
    Recommendation.line_no,
    Recommendation.kind,
    Recommendation.sku,
    Recommendation.style,
    Recommendation.color,
    Recommendation.size,
    Recommendation.from_id,
    Recommendation.to_id,
    Recommendation.units,
    Recommendation.net_benefit,
    Recommendation.to_weekly_demand,
    Recommendation.status,
)


def styles_of(products: pl.DataFrame, attribute: str, value: str) -> list[str]:
    """The styles whose products carry ``value`` in column ``attribute`` (sorted).

    ``tags`` is a ``;``-separated list (a style matches when ``value`` is one of its tags);
    any other column matches by equality. A column the products table lacks matches nothing.
    """
    if attribute not in products.columns:
        return []
    col = pl.col(attribute).cast(pl.String)
    if attribute == "tags":
        pv = products.select("style", col.str.split(";").alias("v")).explode("v")
        pv = pv.with_columns(pl.col("v").str.strip_chars())
    else:
        pv = products.select("style", col.alias("v"))
    styles = pv.filter(pl.col("v") == value)["style"].cast(pl.String).drop_nulls().unique()
    return sorted(styles.to_list())


def scope_stores(stores: pl.DataFrame, scope: str, scope_id: str | None) -> list[str] | None:
    """The store ids a post scope speaks for (sorted); ``None`` for scope ``all`` (every store).

    ``store`` is the store itself, ``city`` and ``region`` the stores with that ``city`` or
    ``region`` in the ``stores`` table (none when the table lacks the column).
    """
    if scope == "all":
        return None
    if scope == "store":
        return [str(scope_id)]
    if scope not in stores.columns:
        return []
    ids = stores.filter(pl.col(scope).cast(pl.String) == scope_id)["store_id"].cast(pl.String)
    return sorted(ids.to_list())


def signal_rows(
    signals: pl.DataFrame | None,
    lines: pl.DataFrame | None,
    products: pl.DataFrame,
    stores: pl.DataFrame,
) -> list[dict[str, Any]] | None:
    """The rising post series with the run's lines each one touches (stored with the run).

    Parameters
    ----------
    signals
        :func:`stocktailor.posts.rising_signals` rows (``None``: the network has no posts).
    lines
        The run's lines with ``line_no, style, to_id, units, net_benefit`` (``None``: none).
    products, stores
        The ``products`` and ``stores`` tables.

    Returns
    -------
    list of dict or None
        One dict per series, in the order given: the series' columns (``scope, scope_id,
        attribute, value, index`` in weighted posts per day, ``change, novelty`` as ratios,
        ``posts`` matched posts in the window, ``text``), ``styles`` and ``stores`` (``None``
        = every store) it applies to, ``n_lines`` and ``units`` of the lines it touches, and
        ``line_nos`` of up to :data:`MAX_SIGNAL_LINES` of them, largest net benefit first.
        ``None`` when ``signals`` is ``None``.
    """
    if signals is None:
        return None
    out: list[dict[str, Any]] = []
    for s in signals.select(_SERIES_COLUMNS).iter_rows(named=True):
        styles = styles_of(products, s["attribute"], s["value"])
        where = scope_stores(stores, s["scope"], s["scope_id"])
        touched = pl.DataFrame(schema={"line_no": pl.Int64, "units": pl.Int64})
        if lines is not None and styles:
            cond = pl.col("style").is_in(styles)
            if where is not None:
                cond = cond & pl.col("to_id").is_in(where)
            touched = lines.filter(cond).sort(["net_benefit", "line_no"], descending=[True, False])
        series = {
            k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in s.items()
        }
        out.append(
            series
            | {
                "styles": styles,
                "stores": where,
                "n_lines": touched.height,
                "units": int(touched["units"].sum() or 0),
                "line_nos": [int(n) for n in touched["line_no"].head(MAX_SIGNAL_LINES)],
            }
        )
    rows: list[dict[str, Any]] = jsonable(out)
    return rows


def line_signal(signals: list[dict[str, Any]] | None, style: str | None, to_id: str) -> str | None:
    """The sentence of the first (most rising) stored series about a line's style in its
    destination's scope, e.g. "posts about bright sneaker in Portland up 3.1x in 10 days";
    ``None`` when no series applies."""
    if not signals or style is None:
        return None
    for s in signals:
        stores = s.get("stores")
        if style in s.get("styles", ()) and (stores is None or to_id in stores):
            return str(s["text"])
    return None


def run_signals(engine: Engine, run_id: int) -> dict[str, Any]:
    """A run's rising post series, each with the lines it touches, as stored at publish.

    Returns
    -------
    dict
        ``run_id, as_of, has_posts`` (false when the run's network had no posts) and
        ``signals``: the rows of :func:`signal_rows` with ``lines`` (``id, line_no, kind, sku,
        style, color, size, from_id, to_id, units, net_benefit`` in currency units,
        ``to_weekly_demand`` in units per week, ``status``) in place of ``line_nos``.

    Raises
    ------
    NotFound
        If there is no such run.
    """
    with engine.connect() as conn:
        row = conn.execute(
            select(PlanRun.as_of, PlanRun.signals).where(PlanRun.id == run_id)
        ).one_or_none()
        if row is None:
            msg = f"plan_runs: no run {run_id}"
            raise NotFound(msg)
        stored: list[dict[str, Any]] = list(row.signals or [])
        wanted = sorted({n for s in stored for n in s.get("line_nos", [])})
        by_no: dict[int, dict[str, Any]] = {}
        if wanted:
            found = conn.execute(
                select(*_LINE_COLUMNS).where(
                    Recommendation.run_id == run_id, Recommendation.line_no.in_(wanted)
                )
            )
            by_no = {r.line_no: dict(r._mapping) for r in found}
    signals = []
    for s in stored:
        lines = [by_no[n] for n in s.get("line_nos", []) if n in by_no]
        signals.append({k: v for k, v in s.items() if k != "line_nos"} | {"lines": lines})
    return {
        "run_id": run_id,
        "as_of": row.as_of,
        "has_posts": row.signals is not None,
        "signals": signals,
    }
