"""Posts as early demand signals: free text -> attribute signals -> derived trend series.

:func:`post_signals` matches each post of the ``posts`` table to product attribute values
(the packaged sentence-embedding model, or the keyword baseline) and aggregates a daily
index per scope x attribute value; :func:`with_post_trends` adds that index to the
``trends`` table, which the demand model reads (its trend lead estimated from the data), so
posts reach the forecast by the same path as a trend index the retailer supplies.
Everything runs offline: the model ships inside an installed package.

Modules: :mod:`~stocktailor.posts.text` (clean-up, tokens, stemmer),
:mod:`~stocktailor.posts.embed` (embedder, cache by text hash),
:mod:`~stocktailor.posts.match` (attribute values, embedding and keyword matches),
:mod:`~stocktailor.posts.index` (daily index, novelty, trend rows, rising series).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import polars as pl

from stocktailor.contract import Tables
from stocktailor.posts.embed import Embedder, EmbeddingCache, StaticEmbedder, embed_texts
from stocktailor.posts.index import daily_index, rising, trend_rows
from stocktailor.posts.match import attribute_values, embedding_matches, keyword_matches
from stocktailor.posts.settings import PostsConfig

__all__ = [
    "Embedder",
    "EmbeddingCache",
    "StaticEmbedder",
    "attribute_values",
    "daily_index",
    "embed_texts",
    "embedding_matches",
    "keyword_matches",
    "post_matches",
    "post_signals",
    "rising",
    "rising_signals",
    "trend_rows",
    "with_post_trends",
]

logger = logging.getLogger(__name__)

_CACHES: dict[Path | None, EmbeddingCache] = {}


def _cache(folder: Path | None) -> EmbeddingCache:
    # One cache per folder per process: a run that reads the tables for several steps
    # embeds each text once.
    if folder not in _CACHES:
        _CACHES[folder] = EmbeddingCache(folder)
    return _CACHES[folder]


def post_matches(
    tables: Tables,
    as_of: dt.date,
    config: PostsConfig,
    *,
    cache_dir: Path | None = None,
    embedder: Embedder | None = None,
) -> pl.DataFrame:
    """Which post (row of ``tables.posts`` up to ``as_of``) is about which attribute value.

    Returns
    -------
    pl.DataFrame
        ``row, attribute, value, score`` (``row`` indexes the posts filtered to ``as_of``).
    """
    posts = tables.posts
    schema = {"row": pl.Int64, "attribute": pl.String, "value": pl.String, "score": pl.Float64}
    if posts is None or posts.is_empty():
        return pl.DataFrame(schema=schema)
    posts = posts.filter(pl.col("date") <= as_of)
    values = attribute_values(tables.products, config.attributes)
    if config.method == "keyword":
        return keyword_matches(posts["text"], values)
    return embedding_matches(
        posts["text"],
        values,
        embedder if embedder is not None else StaticEmbedder(),
        cache=_cache(cache_dir),
        false_match_rate=config.false_match_rate,
        min_similarity=config.min_similarity,
    )


def post_signals(
    tables: Tables,
    as_of: dt.date,
    config: PostsConfig,
    *,
    cache_dir: Path | None = None,
    embedder: Embedder | None = None,
) -> pl.DataFrame:
    """The daily post index per scope x attribute value up to ``as_of``
    (:func:`~stocktailor.posts.index.daily_index`); empty without posts."""
    matches = post_matches(tables, as_of, config, cache_dir=cache_dir, embedder=embedder)
    posts = tables.posts
    if posts is None:
        posts = pl.DataFrame(
            schema={"date": pl.Date, "scope": pl.String, "scope_id": pl.String, "source": pl.String}
        )
    return daily_index(
        posts,
        matches,
        as_of,
        source_weights=config.source_weights,
        smoothing_days=config.smoothing_days,
        baseline_days=config.baseline_days,
        prior_per_day=config.prior_per_day,
        min_posts=config.min_posts,
    )


RISING_TOP = 10
"""At most this many rising series are shown with a run."""

RISING_DAYS = 10
"""A series' change is its index on the as-of date over its index this many days before."""

RISING_MIN_CHANGE = 1.05
"""A series must rise at least this much to be shown (a smaller rise reads as "up 1.0x")."""


def rising_signals(
    tables: Tables,
    as_of: dt.date,
    config: PostsConfig,
    *,
    cache_dir: Path | None = None,
    embedder: Embedder | None = None,
    index: pl.DataFrame | None = None,
) -> pl.DataFrame | None:
    """The post series rising on ``as_of`` (change above 1), for planners to read.

    Parameters
    ----------
    index
        The daily index already computed by :func:`post_signals` (computed here without).

    Returns
    -------
    pl.DataFrame or None
        The rows of :func:`~stocktailor.posts.index.rising` (at most :data:`RISING_TOP`,
        change over :data:`RISING_DAYS` days) whose change is at least
        :data:`RISING_MIN_CHANGE`; ``None`` when there are no posts or posts are turned off
        (an empty frame: posts, but nothing rising).
    """
    if not config.enabled or tables.posts is None or tables.posts.is_empty():
        return None
    if index is None:
        index = post_signals(tables, as_of, config, cache_dir=cache_dir, embedder=embedder)
    top = rising(index, as_of, top=RISING_TOP, days=RISING_DAYS)
    return top.filter(pl.col("change") >= RISING_MIN_CHANGE)


def with_post_trends(
    tables: Tables,
    as_of: dt.date,
    config: PostsConfig,
    *,
    cache_dir: Path | None = None,
    embedder: Embedder | None = None,
    index: pl.DataFrame | None = None,
) -> Tables:
    """``tables`` with the post index added to ``trends`` (unchanged without posts).

    The demand model then treats the derived series like any trend index: it estimates
    the lead from the history and keeps the trend only where the holdout supports it.
    ``index`` is the daily index already computed by :func:`post_signals` (computed here
    without).
    """
    if not config.enabled or tables.posts is None or tables.posts.is_empty():
        return tables
    if index is None:
        index = post_signals(tables, as_of, config, cache_dir=cache_dir, embedder=embedder)
    if index.is_empty():
        logger.info("posts: no attribute value reached %d matched posts", config.min_posts)
        return tables
    rows = trend_rows(index, tables.trends)
    logger.info(
        "posts: %d derived trend series from %d posts",
        rows.select("scope", "scope_id", "attribute", "value").unique().height,
        tables.posts.height,
    )
    trends = rows
    if tables.trends is not None:
        given = tables.trends.select(rows.columns)
        trends = pl.concat([given, rows.cast(given.schema)])
    return tables.replace(trends=trends)
