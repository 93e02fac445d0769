"""The randomised-holdback comparison: executed lines against lines held back at random.

When a random share of recommended lines is kept out of the queue, the held-back lines are a
control group: the average outcome of the executed lines minus that of the held-back lines
estimates the average effect of executing a line without any demand model (unbiased under the
randomisation, up to interference between lines sharing a cell). The outcome of a line is the
margin its two cells (source and destination, same SKU) earn from the decision day to the end
of the measured period (sales at the day's price minus the salvage value), minus its transfer
cost when executed. Regression adjustment (Lin 2013) on the same cells' margin in the
``pre_days`` before the decision reduces the variance.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from stocktailor.measure.ledger import Ledger

__all__ = ["holdback_estimate", "pair_outcomes"]


def pair_outcomes(ledger: Ledger, lines: pl.DataFrame, *, pre_days: int = 14) -> pl.DataFrame:
    """Outcome and pre-period covariate of each recommended line.

    Parameters
    ----------
    ledger
        The period's ledger (its SKUs must include the lines').
    lines
        ``decision_date, sku, from_id, to_id, units, cost, executed`` (bool).
    pre_days
        Days before the decision whose margin is the covariate.

    Returns
    -------
    polars.DataFrame
        ``lines`` with ``outcome`` and ``pre`` (currency).
    """
    ci = ledger.cell_index()
    start = ledger.days[0]
    earned = np.where(ledger.selling, ledger.sold * ledger.margin, 0.0)
    cum = np.concatenate([np.zeros((earned.shape[0], 1)), np.cumsum(earned, axis=1)], axis=1)
    n_days = len(ledger.days)
    out, pre = [], []
    for row in lines.iter_rows(named=True):
        d = min(max((row["decision_date"] - start).days, 0), n_days)
        y = 0.0
        x = 0.0
        for loc in (row["from_id"], row["to_id"]):
            c = ci.get((str(loc), str(row["sku"])))
            if c is None:
                continue
            y += cum[c, n_days] - cum[c, d]
            x += cum[c, d] - cum[c, max(0, d - pre_days)]
        if row["executed"]:
            y -= float(row["cost"] or 0.0)
        out.append(y)
        pre.append(x)
    return lines.with_columns(
        pl.Series("outcome", out, dtype=pl.Float64), pl.Series("pre", pre, dtype=pl.Float64)
    )


def holdback_estimate(outcomes: pl.DataFrame, *, level: float = 0.9) -> dict[str, float]:
    """Total effect of the executed lines from the executed / held-back comparison.

    Parameters
    ----------
    outcomes
        From :func:`pair_outcomes`.
    level
        Coverage of the (normal) interval.

    Returns
    -------
    dict
        ``executed, held_back`` (line counts), ``effect_per_line`` and ``total`` (currency;
        total = effect per line x executed lines), ``low, high`` (the interval of the total)
        and ``sd`` (its standard error); NaN when either group has fewer than two lines.
    """
    from scipy import stats

    t = outcomes["executed"].cast(pl.Float64).to_numpy()
    y = outcomes["outcome"].to_numpy()
    x = outcomes["pre"].to_numpy()
    n_t, n_c = int(t.sum()), int((1 - t).sum())
    nan = float("nan")
    res = {
        "executed": float(n_t),
        "held_back": float(n_c),
        "effect_per_line": nan,
        "total": nan,
        "low": nan,
        "high": nan,
        "sd": nan,
    }
    if n_t < 2 or n_c < 2:
        return res
    xc = x - x.mean()
    design = np.column_stack([np.ones_like(y), t, xc, t * xc])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    bread = np.linalg.pinv(design.T @ design)
    meat = design.T @ (design * (resid**2)[:, None])
    n, p = design.shape
    cov = bread @ meat @ bread * n / max(n - p, 1)
    tau, se = float(beta[1]), float(np.sqrt(max(cov[1, 1], 0.0)))
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    res.update(
        effect_per_line=tau,
        total=tau * n_t,
        sd=se * n_t,
        low=(tau - z * se) * n_t,
        high=(tau + z * se) * n_t,
    )
    return res
