"""The optional ``posts`` table: social posts, influencer posts and blog entries as free text.

Checks beyond the structure (dates, required cells, scopes, store ids), which
:func:`~stocktailor.contract.validate.validate_tables` runs for every scoped table: ``source`` is
one of :data:`~stocktailor.contract.specs.POST_SOURCES` (case-insensitive, stored lower-case)
and ``engagement`` (likes, shares, views: any count) is not negative. Empty ``text`` cells
are rejected by the structure check (``text`` is required).
"""

from __future__ import annotations

import polars as pl

from stocktailor.contract.checks import _Source
from stocktailor.contract.parsing import _show
from stocktailor.contract.specs import POST_SOURCES

__all__ = ["check_posts"]


def check_posts(posts: pl.DataFrame, src: _Source) -> pl.DataFrame:
    """Check the values of the posts table; return it with ``source`` lower-cased.

    Raises
    ------
    ContractError
        Naming the file, row and column of the first bad ``source`` or negative
        ``engagement``.
    """
    posts = posts.with_columns(pl.col("source").str.strip_chars().str.to_lowercase())
    src.check(
        posts,
        ~pl.col("source").is_in(POST_SOURCES),
        "source",
        lambda v: f"expected one of {', '.join(POST_SOURCES)}; got {_show(v)}",
    )
    if "engagement" in posts.columns:
        src.check(
            posts,
            pl.col("engagement") < 0,
            "engagement",
            lambda v: f"expected a count >= 0, got {_show(v)}",
        )
    return posts
