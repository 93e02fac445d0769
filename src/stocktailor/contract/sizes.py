"""Size ladders: the rank of each size within its style."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import polars as pl

__all__ = ["size_order"]

# Letter sizes, smallest first; aliases share a rank.
_LETTER_SIZES: dict[str, int] = {
    "xxxs": 0, "3xs": 0, "xxs": 1, "2xs": 1, "xs": 2, "s": 3, "m": 4, "l": 5, "xl": 6,
    "xxl": 7, "2xl": 7, "xxxl": 8, "3xl": 8, "xxxxl": 9, "4xl": 9,
}  # fmt: skip
_PREFIXED_SIZE = re.compile(r"^([A-Za-z]+)\s*(\d+)$")


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
