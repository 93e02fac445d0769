"""Simple candidate forecasters on the censoring-corrected weekly history.

Every candidate is fitted on a :class:`~stocktailor.demand.history.DemandHistory` and predicts
the mean demand of each carried store x SKU for the weeks ``0 .. n - 1`` after its as-of date
(units per week). Style-level candidates forecast the store x style series of the history's
grid and split it to SKUs with the store's colour mix and size curve (``shares``); SKU-level
candidates forecast each store x SKU series directly.

- ``velocity``: the in-stock (censoring-corrected) rate over the last ``window`` weeks, per
  store x style, flat.
- ``ses``: simple exponential smoothing (ETS(A,N,N)) per store x style, its smoothing weight
  chosen per series from a grid by one-step-ahead squared error, flat.
- ``croston``: Croston's method with the Syntetos-Boylan correction per store x SKU (for
  intermittent series), flat.
- ``tsb``: Teunter-Syntetos-Babai per store x SKU (demand probability and size smoothed
  separately; decays toward zero after a run of zeros), flat.
- ``seasonal_naive``: the same week a year earlier per store x SKU (only with a year plus the
  horizon of history; pairs without it take ``velocity``).
- ``seasonal``: last year's same weeks per store x style scaled by the ratio of the last 8
  weeks to the same 8 weeks a year earlier (shrunk toward 1), split to SKUs.

The recursions are vectorised over series (numpy, one loop over weeks), so they cost seconds
at a million series; they are the models of statsforecast's ``SimpleExponentialSmoothing``,
``CrostonSBA`` and ``TSB``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.demand.history import SS, DemandHistory

__all__ = [
    "SIMPLE_CANDIDATES",
    "SimpleCandidate",
    "croston_sba",
    "dense_series",
    "row_nanmean",
    "row_nanquantile",
    "ses",
    "tsb",
]

FloatArray = npt.NDArray[np.float64]

SIMPLE_CANDIDATES = ("velocity", "ses", "croston", "tsb", "seasonal_naive", "seasonal")
YEAR = 52
_SES_ALPHAS = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 0.8])


def dense_series(
    frame: pl.DataFrame, keys: list[str], start: pl.DataFrame, n_weeks: int, value: str = "demand"
) -> tuple[pl.DataFrame, FloatArray]:
    """A (series x week) matrix of ``value`` for weeks ``-n_weeks .. -1``.

    Parameters
    ----------
    frame
        ``keys, week, value`` (sparse; missing tracked weeks are 0).
    start
        ``keys, w0``: every series and its first tracked week (earlier weeks are NaN).

    Returns
    -------
    tuple
        The series keys (row order) and the matrix (NaN before each series' first week).
    """
    ids = start.select(*keys, pl.col("w0").cast(pl.Int64)).sort(keys).with_row_index("_i")
    y = np.zeros((ids.height, n_weeks))
    v = frame.join(ids.select(*keys, "_i"), on=keys, how="inner").filter(
        (pl.col("week") >= -n_weeks) & (pl.col("week") < 0)
    )
    if v.height:
        cols = v["week"].to_numpy().astype(np.int64) + n_weeks
        np.add.at(y, (v["_i"].to_numpy().astype(np.int64), cols), v[value].to_numpy())
    w0 = np.clip(ids["w0"].to_numpy() + n_weeks, 0, n_weeks)
    y[np.arange(n_weeks)[None, :] < w0[:, None]] = np.nan
    return ids.drop("_i", "w0"), y


def row_nanquantile(y: FloatArray, q: float, rows_per_chunk: int = 1 << 18) -> FloatArray:
    """Per row of ``y``, ``np.nanquantile(y, q, axis=1)`` (linear method) bit for bit.

    NumPy computes a NaN-aware quantile along an axis one row at a time (``apply_along_axis``),
    minutes on millions of rows; this sorts the rows in chunks and interpolates the same way
    (same virtual index, same neighbours, same ``_lerp`` formula). A row without values gives
    NaN.
    """
    out = np.empty(y.shape[0])
    qf = np.float64(q)
    for lo in range(0, y.shape[0], rows_per_chunk):
        part = y[lo : lo + rows_per_chunk]
        n = np.count_nonzero(~np.isnan(part), axis=1)
        srt = np.sort(part, axis=1)  # NaN last: the first n values of a row are its values
        virtual = (n - 1) * qf
        prev = np.floor(virtual)
        nxt = prev + 1.0
        # numpy marks an index past the last value -1 (the last value) and one before the first 0
        above = virtual >= n - 1
        prev[above], nxt[above] = -1.0, -1.0
        below = virtual < 0
        prev[below], nxt[below] = 0.0, 0.0
        gamma = virtual - prev
        last = np.maximum(n - 1, 0)
        rows = np.arange(part.shape[0])
        a = srt[rows, np.where(prev < 0, last, prev).astype(np.intp)]
        b = srt[rows, np.where(nxt < 0, last, nxt).astype(np.intp)]
        diff = b - a
        res = a + diff * gamma
        hi = gamma >= 0.5
        res[hi] = b[hi] - diff[hi] * (1.0 - gamma[hi])
        res[n == 0] = np.nan
        out[lo : lo + part.shape[0]] = res
    return out


def row_nanmean(y: FloatArray, rows_per_chunk: int = 1 << 18) -> FloatArray:
    """``np.nanmean(y, axis=1)`` a chunk of rows at a time (each row's mean is computed alone,
    so it is the same), without NumPy's NaN-free copy of the whole matrix."""
    if y.shape[0] == 0:
        return np.empty(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row without values: NaN
        return np.concatenate(
            [
                np.nanmean(y[lo : lo + rows_per_chunk], axis=1)
                for lo in range(0, y.shape[0], rows_per_chunk)
            ]
        )


def ses(y: FloatArray, alphas: FloatArray = _SES_ALPHAS) -> FloatArray:
    """Final level of simple exponential smoothing per row of ``y`` (NaN = not started).

    The level starts at a series' first value; its weight is the one of ``alphas`` with the
    smallest one-step-ahead squared error over the series. Rows without data give 0.
    """
    n, t = y.shape
    a = alphas[None, :]
    lvl = np.full((n, len(alphas)), np.nan)
    sse = np.zeros((n, len(alphas)))
    for j in range(t):
        col = y[:, j : j + 1]
        ok = ~np.isnan(col)
        started = ~np.isnan(lvl)
        err = np.where(ok & started, col - lvl, 0.0)
        sse += err**2
        lvl = np.where(ok & started, lvl + a * err, np.where(ok, col, lvl))
    best = np.argmin(sse, axis=1)
    out = lvl[np.arange(n), best]
    return np.asarray(np.nan_to_num(out, nan=0.0), dtype=np.float64)


def croston_sba(y: FloatArray, alpha: float = 0.1) -> FloatArray:
    """Croston's method with the Syntetos-Boylan correction, per row (units per week).

    Demand sizes and the intervals between demands are smoothed with weight ``alpha`` at each
    non-zero week; forecast = ``(1 - alpha / 2) * size / interval``.
    """
    n, t = y.shape
    z = np.full(n, np.nan)
    p = np.full(n, np.nan)
    q = np.ones(n)
    for j in range(t):
        col = y[:, j]
        ok = ~np.isnan(col)
        hit = ok & (col > 0)
        first = hit & np.isnan(z)
        upd = hit & ~first
        z = np.where(first, col, np.where(upd, z + alpha * (col - z), z))
        p = np.where(first, q, np.where(upd, p + alpha * (q - p), p))
        q = np.where(hit, 1.0, np.where(ok & ~np.isnan(z), q + 1.0, q))
    f = (1.0 - alpha / 2.0) * z / np.maximum(p, 1e-9)
    return np.asarray(np.nan_to_num(f, nan=0.0), dtype=np.float64)


def tsb(y: FloatArray, alpha_d: float = 0.1, alpha_p: float = 0.1) -> FloatArray:
    """Teunter-Syntetos-Babai per row: demand probability ``p`` updated every week, size ``z``
    at non-zero weeks; forecast ``p * z`` (units per week)."""
    n, t = y.shape
    z = np.full(n, np.nan)
    p = np.full(n, np.nan)
    for j in range(t):
        col = y[:, j]
        ok = ~np.isnan(col)
        hit = ok & (col > 0)
        start = ok & np.isnan(p)
        p = np.where(start, hit.astype(float), np.where(ok, p + alpha_p * (hit - p), p))
        zs = hit & np.isnan(z)
        z = np.where(zs, col, np.where(hit & ~zs, z + alpha_d * (col - z), z))
    return np.asarray(np.nan_to_num(p * np.nan_to_num(z, nan=0.0), nan=0.0), dtype=np.float64)


def _sku_start(hist: DemandHistory) -> pl.DataFrame:
    """``store_id, sku, w0``: SKU series of carried store x style pairs from their first week."""
    prods = hist.tables.products.select("sku", "style")
    return (
        hist.carried.join(prods, on="style", how="inner")
        .join(
            hist.sku_weekly.select("store_id", "sku").unique(), on=["store_id", "sku"], how="semi"
        )
        .select("store_id", "sku", "w0")
    )


@dataclass
class SimpleCandidate:
    """One of :data:`SIMPLE_CANDIDATES`, fitted on a history (see the module docstring).

    Parameters
    ----------
    name
        The candidate.
    window_weeks
        Weeks of the velocity window.
    """

    name: str
    window_weeks: int = 4

    def fit(self, hist: DemandHistory, shares: pl.DataFrame) -> SimpleCandidate:
        """Fit on ``hist``; ``shares`` is ``store_id, style, sku, sku_share``."""
        if self.name not in SIMPLE_CANDIDATES:
            msg = f"unknown candidate {self.name!r}; expected one of {SIMPLE_CANDIDATES}"
            raise ValueError(msg)
        self.shares_ = shares
        n = hist.n_weeks
        if self.name in ("velocity", "ses", "seasonal"):
            keys, y = dense_series(hist.grid, SS, hist.carried, n)
            if self.name == "velocity":
                w = y[:, max(0, n - self.window_weeks) :]
                cnt = (~np.isnan(w)).sum(1)
                mu = np.where(cnt > 0, np.nansum(w, 1) / np.maximum(cnt, 1), 0.0)
            elif self.name == "ses":
                mu = ses(y)
            else:
                self.seasonal_ = self._seasonal_frame(keys, y)
                self.fallback_ = SimpleCandidate("velocity", self.window_weeks).fit(hist, shares)
                return self
            self.level_ = keys.with_columns(pl.Series("mu", mu))
            return self
        keys, y = dense_series(hist.sku_weekly, ["store_id", "sku"], _sku_start(hist), n)
        if self.name == "croston":
            self.level_ = keys.with_columns(pl.Series("mean", croston_sba(y)))
        elif self.name == "tsb":
            self.level_ = keys.with_columns(pl.Series("mean", tsb(y)))
        else:
            self.seasonal_ = self._seasonal_frame(keys, y)
            self.fallback_ = SimpleCandidate("velocity", self.window_weeks).fit(hist, shares)
        return self

    def _seasonal_frame(self, keys: pl.DataFrame, y: FloatArray) -> pl.DataFrame:
        """Last year's 52 weeks per series (``keys, lag, value``: ``lag`` 0 = 52 weeks before
        forecast week 0) and the level ratio for ``seasonal``; empty without a year."""
        n = y.shape[1]
        if n < YEAR:
            return keys.clear().with_columns(
                pl.lit(0, pl.Int32).alias("lag"), pl.lit(0.0).alias("value")
            )
        last = y[:, n - YEAR :]
        ok = ~np.isnan(last).any(axis=1)
        scale = np.ones(len(keys))
        if self.name == "seasonal" and n >= YEAR + 8:
            recent = np.nansum(y[:, n - 8 :], axis=1)
            before = np.nansum(y[:, n - YEAR - 8 : n - YEAR], axis=1)
            prior = 8.0 * np.nanmean(np.where(np.isnan(y), np.nan, y), axis=1)
            ratio = (recent + prior) / (before + prior + 1e-9)
            scale = np.clip(np.nan_to_num(ratio, nan=1.0), 0.25, 4.0)
        vals = np.nan_to_num(last, nan=0.0) * scale[:, None]
        frame = keys.with_columns(pl.Series("ok", ok)).with_row_index("_r")
        frame = frame.filter(pl.col("ok")).drop("ok")
        rows = frame["_r"].to_numpy()
        return (
            frame.drop("_r")
            .with_columns(pl.Series("value", list(vals[rows]), dtype=pl.List(pl.Float64)))
            .with_columns(pl.int_ranges(0, YEAR, dtype=pl.Int32).alias("lag"))
            .explode("value", "lag")
        )

    def predict(self, n_weeks: int, styles: Sequence[str] | None = None) -> pl.DataFrame:
        """``store_id, sku, week, mean`` for weeks ``0 .. n_weeks - 1`` (units per week)."""
        weeks = pl.DataFrame({"week": pl.Series(range(n_weeks), dtype=pl.Int32)})
        shares = self.shares_
        if styles is not None:
            shares = shares.filter(pl.col("style").is_in(list(styles)))
        if self.name in ("seasonal_naive", "seasonal"):
            return self._predict_seasonal(weeks, shares)
        lvl = self.level_
        if "style" in lvl.columns:
            out = lvl.join(shares, on=SS, how="inner").select(
                "store_id", "sku", (pl.col("mu") * pl.col("sku_share")).alias("mean")
            )
        else:
            out = lvl.join(shares.select("store_id", "sku"), on=["store_id", "sku"], how="inner")
        return out.join(weeks, how="cross").select("store_id", "sku", "week", "mean")

    def _predict_seasonal(self, weeks: pl.DataFrame, shares: pl.DataFrame) -> pl.DataFrame:
        sf = self.seasonal_.with_columns(pl.col("lag").alias("_lag"))
        w = weeks.with_columns((pl.col("week") % YEAR).alias("_lag"))
        if "style" in sf.columns:
            st = sf.join(w, on="_lag", how="inner").join(shares, on=SS, how="inner")
            have = st.select(
                "store_id", "sku", "week", (pl.col("value") * pl.col("sku_share")).alias("mean")
            )
        else:
            st = sf.join(w, on="_lag", how="inner")
            have = st.join(shares.select("store_id", "sku"), on=["store_id", "sku"], how="inner")
            have = have.select("store_id", "sku", "week", pl.col("value").alias("mean"))
        # Pairs without a year of history: the velocity forecast.
        rest = self.fallback_.predict(weeks.height, shares["style"].unique().to_list()).join(
            have.select("store_id", "sku").unique(), on=["store_id", "sku"], how="anti"
        )
        return pl.concat([have, rest]).sort("store_id", "sku", "week")
