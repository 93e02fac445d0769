"""Calibration of new lines' estimates from what measured lines realised (pure).

From measured lines (``stocktailor measure``), a ratio realised / estimated per group of
lines, shrunk toward its coarser group when the group has few lines, then applied to a new
plan's transfer lines before they are published.

The rule (a credibility weight per level, as in hierarchical Buhlmann-Straub credibility):
groups are nested ``all`` > ``category`` > ``category x to_cluster`` > ``category x to_cluster
x band`` (``band``: the line's confidence band, :func:`confidence_band`). A group of ``n``
lines with ``sum(measured) / sum(estimated) = r`` gets

``ratio = w r + (1 - w) parent``, ``w = n / (n + k)``

where ``parent`` is the ratio of the group one level coarser (1 for ``all``) and ``k`` is
``measure.calibration_strength`` (lines). A group whose estimates do not sum to more than 0
keeps its parent's ratio (``w = 0``). Ratios are clipped to ``[0, measure.calibration_max_ratio]``.
A new line takes the ratio of the finest group it falls in that has measured lines, falling
back to the coarser ones (and 1 when nothing was measured). The same lines count at every
level, so a lone group's ratio moves toward its own raw ratio faster than one ``w`` says
(``1 - (k / (n + k))^4`` of the way with four levels).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

__all__ = [
    "BANDS",
    "CALIBRATION_COLUMNS",
    "CALIBRATION_LEVELS",
    "apply_calibration",
    "calibration_ratios",
    "confidence_band",
    "measured_to_season_end",
]

BANDS = ("low_risk", "medium_risk", "high_risk", "unknown")
"""Confidence bands: loss probability below 0.1, below 0.3, from 0.3, or not known."""

CALIBRATION_LEVELS = ("all", "category", "category_cluster", "category_cluster_band")
"""Nesting of the calibration groups, coarsest first."""

_LEVEL_KEYS: dict[str, tuple[str, ...]] = {
    "all": (),
    "category": ("category",),
    "category_cluster": ("category", "to_cluster"),
    "category_cluster_band": ("category", "to_cluster", "band"),
}

CALIBRATION_COLUMNS = (
    "level",
    "category",
    "to_cluster",
    "band",
    "lines",
    "estimated",
    "measured",
    "raw_ratio",
    "weight",
    "ratio",
)

_KEYS = ("category", "to_cluster", "band")


def confidence_band(frame: pl.DataFrame) -> pl.Expr:
    """The confidence band of each line (an expression named ``band``).

    From ``loss_probability`` when known (``low_risk`` below 0.1, ``medium_risk`` below 0.3,
    else ``high_risk``); otherwise from ``net_p10`` (at least 0: ``low_risk``, below:
    ``high_risk``); ``unknown`` without either.
    """
    p = (
        pl.col("loss_probability").cast(pl.Float64).fill_nan(None)
        if "loss_probability" in frame.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    p10 = (
        pl.col("net_p10").cast(pl.Float64).fill_nan(None)
        if "net_p10" in frame.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    return (
        pl.when(p.is_not_null() & (p < 0.1))
        .then(pl.lit("low_risk"))
        .when(p.is_not_null() & (p < 0.3))
        .then(pl.lit("medium_risk"))
        .when(p.is_not_null())
        .then(pl.lit("high_risk"))
        .when(p10.is_not_null() & (p10 >= 0))
        .then(pl.lit("low_risk"))
        .when(p10.is_not_null())
        .then(pl.lit("high_risk"))
        .otherwise(pl.lit("unknown"))
        .alias("band")
    )


def measured_to_season_end(
    measured: pl.DataFrame,
    products: pl.DataFrame,
    *,
    default_end: dt.date | None = None,
    horizon_weeks: int = 13,
) -> pl.DataFrame:
    """The measured lines whose measurement reached the end of what their estimate counts.

    A line's estimate is its margin to its SKU's season end; a measurement that stopped
    earlier saw only part of it (the ledger counts the sales that differ up to its last day),
    so its ratio would say little. Kept: lines whose ``until`` is at least the SKU's
    ``season_end`` (``default_end`` when the product has none; without either, ``as_of`` +
    ``horizon_weeks``, the forecast horizon of a never-ending assortment).

    Parameters
    ----------
    measured
        ``sku, as_of, until`` and the columns of :func:`calibration_ratios`.
    products
        ``sku`` and optionally ``season_end``.
    default_end
        ``season.end`` of the settings.
    horizon_weeks
        ``season.horizon_weeks``, weeks.
    """
    ends = products.select(
        pl.col("sku").cast(pl.String),
        (
            pl.col("season_end").cast(pl.Date)
            if "season_end" in products.columns
            else pl.lit(None, dtype=pl.Date)
        ).alias("_end"),
    ).unique("sku")
    end = pl.coalesce(
        pl.col("_end"),
        pl.lit(default_end, dtype=pl.Date),
        pl.col("as_of") + pl.duration(weeks=horizon_weeks),
    )
    out = measured.join(ends, on="sku", how="left").filter(pl.col("until") >= end)
    return out.drop("_end")


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with text ``category``, ``to_cluster`` (missing as ``"-"``) and ``band``."""
    out = frame.with_columns(confidence_band(frame))
    return out.with_columns(
        (
            pl.col(c).cast(pl.String).fill_null("-")
            if c in frame.columns
            else pl.lit("-", dtype=pl.String)
        ).alias(c)
        for c in ("category", "to_cluster")
    )


def calibration_ratios(
    measured: pl.DataFrame, *, strength: float = 20.0, max_ratio: float = 2.0
) -> pl.DataFrame:
    """Realised / estimated ratio per group of measured lines, shrunk by credibility.

    Parameters
    ----------
    measured
        One row per measured line: ``estimated`` and ``measured`` (currency), ``category``,
        ``to_cluster`` and ``loss_probability`` or ``net_p10`` (for the band; see
        :func:`confidence_band`). A row may also be a group of lines measured together (e.g.
        a decision day's lines of one category, as the simulator measures them): its
        ``lines`` column (a count) then says how many lines it holds.
    strength
        ``k`` of the credibility weight ``n / (n + k)``, lines.
    max_ratio
        Largest ratio (the smallest is 0).

    Returns
    -------
    polars.DataFrame
        :data:`CALIBRATION_COLUMNS`: one row per group of each level (``category``,
        ``to_cluster``, ``band`` null above the group's level), ``lines``, the sums
        ``estimated`` and ``measured`` (currency), ``raw_ratio`` (null when the estimates sum
        to 0 or less), ``weight`` (``w``) and the shrunk, clipped ``ratio``.
    """
    if strength < 0 or max_ratio <= 0:
        msg = f"calibration: strength {strength} must be >= 0 and max_ratio {max_ratio} > 0"
        raise ValueError(msg)
    schema = {
        "level": pl.String,
        "category": pl.String,
        "to_cluster": pl.String,
        "band": pl.String,
        "lines": pl.Int64,
        "estimated": pl.Float64,
        "measured": pl.Float64,
        "raw_ratio": pl.Float64,
        "weight": pl.Float64,
        "ratio": pl.Float64,
    }
    if measured.height == 0:
        return pl.DataFrame(schema=schema)
    lines = _keyed(measured).with_columns(
        pl.col("estimated").cast(pl.Float64),
        pl.col("measured").cast(pl.Float64),
        (
            pl.col("lines").cast(pl.Int64)
            if "lines" in measured.columns
            else pl.lit(1, dtype=pl.Int64)
        ).alias("_n"),
    )
    parts: list[pl.DataFrame] = []
    parent: pl.DataFrame | None = None
    for level in CALIBRATION_LEVELS:
        keys = list(_LEVEL_KEYS[level])
        agg = (
            lines.group_by(keys).agg(
                pl.col("_n").sum().alias("lines"),
                pl.col("estimated").sum(),
                pl.col("measured").sum(),
            )
            if keys
            else lines.select(
                pl.col("_n").sum().alias("lines"),
                pl.col("estimated").sum(),
                pl.col("measured").sum(),
            )
        )
        if parent is None:
            agg = agg.with_columns(pl.lit(1.0).alias("_parent"))
        else:
            up = keys[:-1]
            prev = parent.select(*up, pl.col("ratio").alias("_parent"))
            agg = agg.join(prev, on=up, how="left") if up else agg.join(prev, how="cross")
        n = pl.col("lines").cast(pl.Float64)
        raw = pl.when(pl.col("estimated") > 0).then(pl.col("measured") / pl.col("estimated"))
        w = pl.when(pl.col("estimated") > 0).then(n / (n + strength)).otherwise(0.0)
        agg = (
            agg.with_columns(raw.alias("raw_ratio"), w.alias("weight"))
            .with_columns(
                (
                    pl.col("weight") * pl.col("raw_ratio").fill_null(0.0)
                    + (1.0 - pl.col("weight")) * pl.col("_parent")
                )
                .clip(0.0, max_ratio)
                .alias("ratio")
            )
            .drop("_parent")
        )
        parent = agg
        full = agg.with_columns(
            pl.lit(level).alias("level"),
            *(pl.lit(None, dtype=pl.String).alias(c) for c in _KEYS if c not in keys),
        )
        parts.append(full.select(list(schema)).cast(schema))  # type: ignore[arg-type]
    return pl.concat(parts).sort("level", *_KEYS, nulls_last=False, maintain_order=True)


def _label(row: dict[str, object], names: dict[str, str]) -> str:
    """``tops / coastal casual / low risk`` for the group a ratio came from."""
    bits = [str(row["category"])] if row["category"] is not None else []
    if row["to_cluster"] is not None:
        bits.append(names.get(str(row["to_cluster"]), str(row["to_cluster"])))
    if row["band"] is not None:
        band = str(row["band"])
        bits.append("risk unknown" if band == "unknown" else band.replace("_", " "))
    return " / ".join(bits) if bits else "all categories"


def _line_ratios(
    keyed: pl.DataFrame, ratios: pl.DataFrame, names: dict[str, str]
) -> tuple[list[float], list[str]]:
    """Each line's ratio from the finest group it falls in that was measured, and its reason
    text (empty for 1 when nothing like it was measured)."""
    chosen: dict[tuple[object, ...], dict[str, object]] = {}
    for level in CALIBRATION_LEVELS:
        keys = _LEVEL_KEYS[level]
        for row in ratios.filter(pl.col("level") == level).iter_rows(named=True):
            chosen[(level, *(row[k] for k in keys))] = row
    ratio_of: list[float] = []
    label_of: list[str] = []
    for row in keyed.select(*_KEYS).iter_rows(named=True):
        hit = None
        for level in reversed(CALIBRATION_LEVELS):
            hit = chosen.get((level, *(row[k] for k in _LEVEL_KEYS[level])))
            if hit is not None:
                break
        if hit is None:
            ratio_of.append(1.0)
            label_of.append("")
            continue
        ratio = float(hit["ratio"])  # type: ignore[arg-type]
        ratio_of.append(ratio)
        label_of.append(
            f"calibrated x{ratio:.2f} from {hit['lines']} measured lines in {_label(hit, names)}"
        )
    return ratio_of, label_of


def apply_calibration(
    transfers: pl.DataFrame,
    ratios: pl.DataFrame,
    products: pl.DataFrame,
    clusters: pl.DataFrame,
    *,
    min_net_benefit: float = 0.0,
) -> tuple[pl.DataFrame, int]:
    """Scale each transfer line's net benefit by its group's ratio; drop lines it takes to
    ``min_net_benefit`` or below.

    The calibrated ``net_benefit`` is ``ratio x net_benefit``; ``expected_gain`` and the bands
    (``gain_p10/p90``, ``net_p10/p90``) move by the same amount (so ``net_benefit =
    expected_gain - expected_source_loss - transfer_cost`` still holds), and the line's
    ``reason`` ends with e.g. ``calibrated x0.82 from 40 measured lines in outerwear / coastal
    casual``. Lines whose ratio is 1 (nothing measured) are unchanged.

    Parameters
    ----------
    transfers
        The plan's transfer lines (``sku, to_id, net_benefit, expected_gain, reason`` and the
        band columns of :func:`confidence_band`).
    ratios
        From :func:`calibration_ratios`.
    products
        ``sku, category`` (the lines' category).
    clusters
        ``store_id, cluster_id`` (and ``cluster_name`` for the reason): the destination's
        cluster.
    min_net_benefit
        Lines whose calibrated net benefit is not above this are dropped, currency.

    Returns
    -------
    tuple[polars.DataFrame, int]
        The calibrated lines (same columns, dropped lines removed) and how many were dropped.
    """
    if transfers.height == 0 or ratios.height == 0:
        return transfers, 0
    cols = transfers.columns
    cat = products.select(pl.col("sku").cast(pl.String), pl.col("category").cast(pl.String))
    cl = clusters.select(
        pl.col("store_id").cast(pl.String).alias("to_id"),
        pl.col("cluster_id").cast(pl.String).alias("to_cluster"),
    )
    names: dict[str, str] = {}
    if "cluster_name" in clusters.columns:
        names = dict(
            zip(
                clusters["cluster_id"].cast(pl.String).to_list(),
                clusters["cluster_name"].cast(pl.String).to_list(),
                strict=True,
            )
        )
    base = transfers.drop(
        [c for c in ("category", "to_cluster", "band") if c in cols]
    ).with_row_index("_row")
    keyed = _keyed(
        base.join(cat.unique("sku"), on="sku", how="left").join(
            cl.unique("to_id"), on="to_id", how="left"
        )
    )
    ratio_of, label_of = _line_ratios(keyed, ratios, names)
    net = pl.col("net_benefit").cast(pl.Float64)
    delta = (pl.col("_ratio") - 1.0) * net
    shift = [
        (pl.col(c) + delta).alias(c)
        for c in ("expected_gain", "gain_p10", "gain_p90", "net_p10", "net_p90")
        if c in cols
    ]
    reason = (
        pl.when(pl.col("_label") == "")
        .then(pl.col("reason"))
        .when(pl.col("reason").fill_null("") == "")
        .then(pl.col("_label"))
        .otherwise(pl.concat_str(pl.col("reason"), pl.lit("; "), pl.col("_label")))
        .alias("reason")
    )
    out = (
        base.with_columns(
            pl.Series("_ratio", ratio_of, dtype=pl.Float64),
            pl.Series("_label", label_of, dtype=pl.String),
        )
        .with_columns(*shift, (net * pl.col("_ratio")).alias("net_benefit"), reason)
        .sort("_row")
    )
    kept = out.filter((pl.col("_label") == "") | (pl.col("net_benefit") > min_net_benefit))
    return kept.select(cols), out.height - kept.height
