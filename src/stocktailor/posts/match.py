"""Which posts talk about which product attribute: by embedding similarity or by keywords.

An attribute value is a ``(attribute, value)`` pair the ``trends`` table can name and
:func:`stocktailor.signals.match_trends` can link to styles: a ``tags`` entry, a
``category``, a ``color`` or a ``style`` (described by its ``style_name`` and, when the
products table has one, its free-text ``description``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.posts.embed import Embedder, EmbeddingCache, embed_texts
from stocktailor.posts.text import clean, tokens

__all__ = ["attribute_values", "embedding_matches", "keyword_matches"]

MATCH_SCHEMA = {"row": pl.Int64, "attribute": pl.String, "value": pl.String, "score": pl.Float64}


def _words(value: str) -> str:
    return clean(value.replace(";", " "))


def attribute_values(products: pl.DataFrame, attributes: Sequence[str]) -> pl.DataFrame:
    """The attribute values posts are matched to, with the text that describes each.

    Returns
    -------
    pl.DataFrame
        ``attribute, value, text`` (unique, sorted): ``text`` is the value's own words; for
        ``style`` the style's name and description (the style id alone says nothing).
    """
    rows: list[dict[str, str]] = []
    for attr in attributes:
        if attr not in products.columns:
            continue
        if attr == "style":
            cols = [c for c in ("style_name", "description") if c in products.columns]
            if not cols:
                continue
            f = products.group_by("style").agg(
                pl.concat_str(
                    [pl.col(c).cast(pl.String).fill_null("") for c in cols], separator=" "
                )
                .first()
                .alias("text")
            )
            rows += [
                {"attribute": "style", "value": s, "text": _words(t)}
                for s, t in f.iter_rows()
                if t and t.strip()
            ]
            continue
        col = products[attr].cast(pl.String).drop_nulls()
        vals = col.str.split(";").explode().str.strip_chars() if attr == "tags" else col
        for v in sorted(set(vals.to_list()) - {""}):
            rows.append({"attribute": attr, "value": v, "text": _words(v)})
    schema = {"attribute": pl.String, "value": pl.String, "text": pl.String}
    return (
        pl.DataFrame(rows, schema=schema).unique(["attribute", "value"]).sort("attribute", "value")
    )


def _null_texts(texts: pl.Series, n: int, seed: int) -> list[str]:
    """Random texts of the posts' own words, each distinct word equally likely.

    Drawing from the distinct vocabulary (not by frequency) keeps the on-topic words, which
    are few and frequent, rare in the null, so its similarities estimate what an unrelated
    post of the same words and lengths scores.
    """
    rng = np.random.default_rng(seed)
    sample = texts.sample(min(texts.len(), 5000), seed=seed) if texts.len() else texts
    toks = [tokens(t) for t in sample.to_list()]
    vocab = sorted({w for ws in toks for w in ws})
    lengths = [max(1, len(ws)) for ws in toks] or [8]
    if not vocab:
        return []
    out = []
    for _ in range(n):
        k = int(lengths[int(rng.integers(len(lengths)))])
        out.append(" ".join(vocab[int(i)] for i in rng.integers(len(vocab), size=k)))
    return out


def embedding_matches(
    texts: pl.Series,
    values: pl.DataFrame,
    embedder: Embedder,
    *,
    cache: EmbeddingCache | None = None,
    false_match_rate: float = 0.01,
    min_similarity: float = 0.3,
    min_z: float = 2.5,
    null_size: int = 4000,
    random_state: int = 0,
) -> pl.DataFrame:
    """Posts whose embedding is close enough to an attribute value's description.

    The threshold of each value is calibrated on the posts themselves: the
    ``1 - false_match_rate`` quantile of its similarity to ``null_size`` random texts drawn
    from the posts' vocabulary (at least ``min_similarity``). A match must also stand out among
    the post's similarities to all values (at least ``min_z`` standard deviations above their
    mean, when there are five values or more). A post may match several values (a post about
    bright sneakers is also about sneakers).

    Returns
    -------
    pl.DataFrame
        ``row`` (position in ``texts``), ``attribute, value, score`` (cosine similarity).
    """
    if texts.len() == 0 or values.is_empty():
        return pl.DataFrame(schema=MATCH_SCHEMA)
    post_vec = embed_texts(texts, embedder, cache)
    proto = embed_texts(values["text"], embedder, cache)
    null = _null_texts(texts, null_size, random_state)
    if null:
        null_vec = embed_texts(pl.Series(null, dtype=pl.String), embedder, None)
        tau = np.quantile(null_vec @ proto.T, 1.0 - false_match_rate, axis=0)
    else:
        tau = np.zeros(proto.shape[0])
    tau = np.maximum(tau, min_similarity)
    n_values = proto.shape[0]
    frames = []
    step = 20000
    for i in range(0, post_vec.shape[0], step):
        sim: npt.NDArray[np.float32] = post_vec[i : i + step] @ proto.T
        ok = sim >= tau[None, :]
        if n_values >= 5:
            # ... and stand out among the post's similarities to every value: chatter that
            # resembles everything a little matches nothing
            mu, sd = sim.mean(axis=1, keepdims=True), sim.std(axis=1, keepdims=True)
            ok &= sim >= mu + min_z * np.maximum(sd, 1e-6)
        r, c = np.nonzero(ok)
        frames.append(
            pl.DataFrame(
                {
                    "row": (r + i).astype(np.int64),
                    "attribute": values["attribute"].gather(c),
                    "value": values["value"].gather(c),
                    "score": sim[r, c].astype(np.float64),
                },
                schema=MATCH_SCHEMA,
            )
        )
    return pl.concat(frames) if frames else pl.DataFrame(schema=MATCH_SCHEMA)


def keyword_matches(texts: pl.Series, values: pl.DataFrame) -> pl.DataFrame:
    """The keyword baseline: a post matches a value when it holds all of the value's words.

    Words are compared exactly and after a light stemmer (``sneakers`` -> ``sneaker``); the
    value's words come from the same ``text`` the embedding path uses (tags, names).

    Returns
    -------
    pl.DataFrame
        ``row, attribute, value, score`` (score 1.0).
    """
    if texts.len() == 0 or values.is_empty():
        return pl.DataFrame(schema=MATCH_SCHEMA)
    post = pl.DataFrame(
        {
            "row": np.arange(texts.len(), dtype=np.int64),
            "word": texts.map_elements(
                lambda t: sorted(set(tokens(t, stemmed=True))), return_dtype=pl.List(pl.String)
            ),
        }
    ).explode("word")
    need = values.with_columns(
        pl.col("text")
        .map_elements(
            lambda t: sorted(set(tokens(t, stemmed=True))), return_dtype=pl.List(pl.String)
        )
        .alias("word")
    ).with_columns(pl.col("word").list.len().alias("n_words"))
    need = need.filter(pl.col("n_words") > 0).explode("word")
    hits = (
        post.join(need, on="word", how="inner")
        .group_by("row", "attribute", "value", "n_words")
        .agg(pl.len().alias("hit"))
        .filter(pl.col("hit") >= pl.col("n_words"))
    )
    return hits.select("row", "attribute", "value", pl.lit(1.0).alias("score")).sort(
        "row", "attribute", "value"
    )
