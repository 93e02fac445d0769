"""Decisions on the holdout scores: the blend candidate and the effects of each group."""

from __future__ import annotations

import numpy as np
import polars as pl

from stocktailor.demand.validation import GROUP_LEVELS, poisson_deviance

__all__ = ["decide_effects", "effect_votes", "level_of", "with_blend"]


def level_of(finest: str, level: str) -> str:
    """The id at ``level`` of the finest group ``finest`` (``category|cluster``)."""
    if level == "all":
        return "all"
    if level == "category":
        return finest.split("|", 1)[0]
    return finest


def with_blend(base: pl.DataFrame, size: int = 3) -> tuple[pl.DataFrame, list[str]]:
    """Add ``blend``: the equal mean of the ``size`` candidates of smallest mean deviance
    on the whole network; returns the scores and the blended candidates."""
    net = (
        base.group_by("candidate")
        .agg((pl.col("abs_err").sum() / pl.col("actual").sum().clip(lower_bound=1e-9)).alias("w"))
        .sort("w", "candidate")
    )
    top = net["candidate"].head(size).to_list()
    if len(top) < 2:
        return base, top
    parts = base.filter(pl.col("candidate").is_in(top))
    keys = ["store_id", "sku", "origin"]
    tot = parts.group_by(keys).agg(
        pl.col("pred").mean(),
        pl.col("actual").first(),
        pl.col("actual_w").first(),
        *[pl.col(c).first() for c in base.columns if c.startswith("g_")],
    )
    wk = (
        parts.select(*keys, "candidate", "pred_w")
        .explode("pred_w")
        .with_columns(pl.int_range(pl.len()).over(*keys, "candidate").alias("_i"))
        .group_by(*keys, "_i")
        .agg(pl.col("pred_w").mean())
        .sort("_i")
        .group_by(keys, maintain_order=True)
        .agg(pl.col("pred_w"))
    )
    bl = tot.join(wk, on=keys, how="left").with_columns(
        pl.lit("blend").alias("candidate"),
        (pl.col("pred") - pl.col("actual")).abs().alias("abs_err"),
        poisson_deviance(pl.col("actual"), pl.col("pred")).alias("deviance"),
    )
    return pl.concat([base, bl.select(base.columns)]), top


def decide_effects(
    scores: pl.DataFrame,
    full: frozenset[str],
    *,
    min_units: float,
    min_pairs: int,
    tolerance: float,
) -> dict[str, tuple[frozenset[str], str]]:
    """Per finest group: the LightGBM effects switched on, and a note of the evidence.

    Decided from the network down (see :func:`effect_votes`): the network decides on its
    holdout; a category with enough holdout data keeps the network's decision unless its own
    holdout disagrees clearly; its clusters follow it.

    Parameters
    ----------
    scores
        Pair scores with the LightGBM variants (``lgbm``, ``lgbm-<effect>``,
        ``lgbm+lifecycle``) and the group columns.
    full
        Effects the booster was trained with.
    """
    var = scores.filter(pl.col("candidate").str.starts_with("lgbm"))
    if var.is_empty():
        return {}
    stats: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    thick: dict[tuple[str, str], bool] = {}
    for level in GROUP_LEVELS:
        col = f"g_{level}"
        agg = var.group_by(col, "candidate").agg(
            pl.col("deviance").mean(),
            pl.col("pred").sum(),
            pl.col("actual").sum(),
            pl.struct("store_id", "sku").n_unique().alias("pairs"),
        )
        for g, c, dev, pred, act, pairs in agg.iter_rows():
            stats.setdefault((level, str(g)), {})[str(c)] = (dev, pred)
            if c == "lgbm":
                thick[(level, str(g))] = act >= min_units and (pairs >= min_pairs)
    out: dict[str, tuple[frozenset[str], str]] = {}
    decided: dict[tuple[str, str], tuple[frozenset[str], list[str]]] = {}
    for g in sorted(var["g_category|cluster"].unique().to_list()):
        parent: tuple[frozenset[str], list[str]] | None = None
        for level in reversed(GROUP_LEVELS):
            key = (level, level_of(g, level))
            if key not in decided:
                st = stats.get(key, {})
                # Effects are estimated per style across stores: a cluster's own holdout is
                # too thin a judge, so decisions stop at the category.
                if parent is not None and (not thick.get(key, False) or level == GROUP_LEVELS[0]):
                    decided[key] = parent
                else:
                    on, notes = effect_votes(st, full, parent, tolerance)
                    decided[key] = (on, [f"[{level}] " + "; ".join(notes)])
            parent = decided[key]
        assert parent is not None
        out[str(g)] = (parent[0], parent[1][0])
    return out


def effect_votes(
    st: dict[str, tuple[float, float]],
    full: frozenset[str],
    parent: tuple[frozenset[str], list[str]] | None,
    tolerance: float,
) -> tuple[frozenset[str], list[str]]:
    """Effects on for one group from its holdout ``{variant: (deviance, pred total)}``.

    At the network level an effect that moved the holdout totals by less than 2 % cannot
    be judged there and keeps its (shrunk) estimate; one that moved them stays on only if
    it improved the deviance by more than ``effect_tolerance``. A sub-group keeps its
    parent's decision unless its own holdout disagrees by more than 2 % of deviance. The
    lifecycle extrapolation (not trained unless ``lifecycle_offset``) is only reported.
    """
    ref, ref_p = st.get("lgbm", (float("nan"), 0.0))
    base_tol = tolerance if parent is None else 0.02
    on: set[str] = set()
    notes = []
    for e in sorted(full | {"lifecycle"}):
        trained = e in full
        name = f"lgbm-{e}" if trained else f"lgbm+{e}"
        dev, pred = st.get(name, (ref, ref_p))
        with_e, without = (ref, dev) if trained else (dev, ref)
        before = (e in parent[0]) if parent is not None else trained
        tol = base_tol
        moved = abs(ref_p - pred) / max(ref_p, 1e-9)
        if not trained:
            # Extrapolating an untrained recent slope is reported, never switched on: on the
            # tuning data it won short holdouts and lost the horizon after them.
            now = before
        elif moved < 0.02 or not np.isfinite(ref):
            now = before
        elif parent is None:
            now = with_e < without * (1.0 - tol)
        elif before:
            now = not without < with_e * (1.0 - tol)
        else:
            now = with_e < without * (1.0 - tol)
        on |= {e} if now else set()
        notes.append(f"{e} {'on' if now else 'off'} (deviance {with_e:.3f} on, {without:.3f} off)")
    return frozenset(on), notes
