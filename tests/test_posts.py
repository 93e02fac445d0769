"""Posts: the contract table, text -> attribute matches, the daily index, derived trends."""

from __future__ import annotations

import datetime as dt
import io
import socket
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from _datafolder import TINY, write_data_folder
from stocktailor.config import PostsConfig
from stocktailor.contract import ContractError, Tables
from stocktailor.posts import (
    EmbeddingCache,
    StaticEmbedder,
    attribute_values,
    daily_index,
    embed_texts,
    embedding_matches,
    keyword_matches,
    post_signals,
    rising,
    with_post_trends,
)
from stocktailor.posts.text import clean, stem, tokens
from stocktailor.signals import match_trends
from stocktailor.workspace import read_data_folder

D0 = dt.date(2024, 3, 1)


def _tables(tmp_path: Path, posts: str | None = None) -> Tables:
    tables = dict(TINY)
    if posts is not None:
        tables["posts"] = posts
    return read_data_folder(write_data_folder(tmp_path / "data", tables=tables))


# --------------------------------------------------------------------------- contract


def test_posts_table_is_read_and_typed(tmp_path: Path) -> None:
    t = _tables(tmp_path)
    assert t.posts is not None
    assert t.posts.schema["date"] == pl.Date
    assert t.posts.schema["engagement"] == pl.Float64
    assert t.posts["source"].to_list() == ["social", "blog"]
    assert t.posts["scope_id"].to_list() == ["Brooklyn", None]


@pytest.mark.parametrize(
    ("row", "column", "needle"),
    [
        ("2024-03-01,city,Brooklyn,social,,3,u\n", "text", "empty"),
        ("2024-03-01,planet,Earth,social,hello,3,u\n", "scope", "store, city, region, all"),
        ("2024-13-01,city,Brooklyn,social,hello,3,u\n", "date", "2024-13-01"),
        ("2024-03-01,city,Brooklyn,tv,hello,3,u\n", "source", "social, influencer"),
        ("2024-03-01,city,Brooklyn,social,hello,-3,u\n", "engagement", ">= 0"),
        ("2024-03-01,store,S9,social,hello,3,u\n", "scope_id", "S9"),
    ],
)
def test_bad_posts_give_one_line_errors(tmp_path: Path, row: str, column: str, needle: str) -> None:
    header = "date,scope,scope_id,source,text,engagement,author\n"
    good = "2024-03-01,city,Brooklyn,social,fine post,1,a\n"
    with pytest.raises(ContractError) as err:
        _tables(tmp_path, header + good + row)
    msg = str(err.value)
    assert "\n" not in msg
    assert "posts.csv" in msg and "row 2" in msg and repr(column) in msg and needle in msg


# --------------------------------------------------------------------------- text


def test_clean_splits_hashtags_and_drops_urls() -> None:
    assert clean("#BrightSneakers sooo good http://x.y @bob") == "bright sneakers soo good"
    assert tokens("Neon-Sneakers!!", stemmed=True) == ["neon", "sneaker"]
    assert stem("coats") == "coat" and stem("dresses") == "dress" and stem("boxes") == "box"
    assert stem("bus") == "bus"


# --------------------------------------------------------------------------- matching


def _products() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sku": ["A-1", "B-1", "C-1"],
            "style": ["A", "B", "C"],
            "category": ["shoes", "outerwear", "tops"],
            "color": ["red", "beige", "white"],
            "tags": ["bright-sneaker;street", "trench;classic", "basic"],
            "style_name": ["Neon Runner", "Classic Trench", "Plain Tee"],
        }
    )


def test_attribute_values_come_from_tags_columns_and_style_names() -> None:
    v = attribute_values(_products(), ("tags", "category", "style"))
    assert ("tags", "bright-sneaker", "bright sneaker") in v.rows()
    assert ("style", "B", "classic trench") in v.rows()
    assert ("category", "shoes", "shoes") in v.rows()


def test_keyword_baseline_needs_every_word_stemmed() -> None:
    texts = pl.Series(["love my BRIGHT sneakers", "bright day today", "trench coats!", "nothing"])
    v = attribute_values(_products(), ("tags",))
    m = keyword_matches(texts, v)
    assert m.select("row", "value").rows() == [(0, "bright-sneaker"), (2, "trench")]


class _Toy:
    """A deterministic embedder: one axis per known word (a post is the sum of its words)."""

    name = "toy"
    words = ("bright", "sneaker", "trench", "coat", "basic", "cat")

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), len(self.words) + 1), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in tokens(t, stemmed=True):
                j = self.words.index(w) if w in self.words else len(self.words)
                out[i, j] += 1.0 if j < len(self.words) else 0.2
        return out


def test_embedding_matches_use_a_threshold_and_stand_out() -> None:
    chatter = [f"my cat w{i} x{i} y{i}" for i in range(40)]  # a vocabulary for the null
    texts = pl.Series(["bright sneakers", "my cat", "trench coat", "sneaker", *chatter])
    v = attribute_values(_products(), ("tags",))
    m = embedding_matches(texts, v, _Toy(), false_match_rate=0.05, min_z=1.0)
    got = set(m.filter(pl.col("row") < 4).select("row", "value").rows())
    assert (0, "bright-sneaker") in got and (2, "trench") in got
    assert not any(r == 1 for r, _ in got)  # chatter matches nothing


def test_cache_embeds_each_text_once_and_persists(tmp_path: Path) -> None:
    toy = _Toy()
    cache = EmbeddingCache(tmp_path / "cache")
    a = embed_texts(pl.Series(["bright sneakers", "trench", "bright sneakers"]), toy, cache)
    assert toy.calls == [2]
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    again = EmbeddingCache(tmp_path / "cache")  # a new process reads the shards
    b = embed_texts(pl.Series(["trench", "basic", "bright sneakers"]), toy, again)
    assert toy.calls == [2, 1]  # only the new text
    assert np.allclose(b[0], a[1]) and np.allclose(b[2], a[0])


# --------------------------------------------------------------------------- index


def test_daily_index_weights_smooths_and_measures_novelty() -> None:
    days = [D0 + dt.timedelta(days=i) for i in range(4)]
    posts = pl.DataFrame(
        {
            "date": [days[0], days[1], days[3], days[3]],
            "scope": ["city"] * 4,
            "scope_id": ["X"] * 4,
            "source": ["social", "influencer", "social", "other"],
            "engagement": [None, None, float(np.e - 1), None],
        }
    )
    matches = pl.DataFrame(
        {"row": [0, 1, 2, 3], "attribute": ["tags"] * 4, "value": ["t"] * 4, "score": [1.0] * 4}
    )
    idx = daily_index(
        posts, matches, days[3], smoothing_days=2, baseline_days=7, prior_per_day=1.0, min_posts=1
    )
    # weights: 1, 2 (influencer), 1 * (1 + log(e)) = 2, 0.5 (other)
    assert idx["volume"].to_list() == pytest.approx([1.0, 2.0, 0.0, 2.5])
    assert idx["index"].to_list() == pytest.approx([2.0, 2.5, 2.0, 2.25])
    assert idx["novelty"][3] == pytest.approx(2.25 / np.mean([2.0, 2.5]))
    top = rising(idx, days[3], days=2)
    assert top["text"][0] == "posts about t in X down 1.1x in 2 days"


def _sneaker_posts(n_days: int, scope_id: str) -> str:
    lines = ["date,scope,scope_id,source,text,engagement,author"]
    for d in range(n_days):
        day = D0 + dt.timedelta(days=d)
        for k in range(1 + d):
            lines.append(f"{day},city,{scope_id},social,new bright sneakers {k},1,u{k}")
    return "\n".join(lines) + "\n"


def test_post_trends_enter_the_trends_table_and_link_to_styles(tmp_path: Path) -> None:
    t = _tables(tmp_path, _sneaker_posts(10, "Boston"))
    cfg = PostsConfig(method="keyword", min_posts=5)
    index = post_signals(t, D0 + dt.timedelta(days=9), cfg)
    assert index.select("scope_id", "value").unique().rows() == [("Boston", "bright-sneaker")]
    out = with_post_trends(t, D0 + dt.timedelta(days=9), cfg)
    assert out.trends is not None and t.trends is not None
    derived = out.trends.filter(pl.col("scope_id") == "Boston")
    assert derived.height == 10 and derived["index"].is_sorted()
    assert out.trends.height == t.trends.height + 10
    assert ("tags", "bright-sneaker", "SH1") in match_trends(out).rows()
    # off: the tables come back unchanged
    assert with_post_trends(t, D0, PostsConfig(enabled=False)) is t


def test_retailer_trend_series_win_over_derived_ones(tmp_path: Path) -> None:
    t = _tables(tmp_path, _sneaker_posts(10, "Brooklyn"))  # TINY has a Brooklyn trend
    out = with_post_trends(t, D0 + dt.timedelta(days=9), PostsConfig(method="keyword", min_posts=5))
    assert out.trends is not None and t.trends is not None
    assert out.trends.height == t.trends.height


# --------------------------------------------------------------------------- offline


def test_packaged_model_embeds_offline(no_network: None) -> None:
    vec = StaticEmbedder().encode(["bright sneakers", "trench coat"])
    assert vec.shape[0] == 2 and vec.shape[1] >= 32
    assert np.isfinite(vec).all()
    with pytest.raises(OSError, match="offline"):
        socket.create_connection(("example.org", 80))


@pytest.mark.slow
def test_whole_path_runs_with_sockets_blocked(no_network: None, tmp_path: Path) -> None:
    from stocktailor.config import Settings
    from stocktailor.plan import run_plan
    from stocktailor.synth import generate, with_posts

    net, truth = with_posts(generate("default", seed=0, n_stores=5, n_sku_sizes=120))
    assert net.tables.posts is not None and truth.led.height > 0
    settings = Settings(posts=PostsConfig(method="embedding"))
    derived = with_post_trends(net.tables, net.as_of, settings.posts, cache_dir=tmp_path)
    assert derived.trends is not None and net.tables.trends is not None
    assert derived.trends.height > net.tables.trends.height
    assert any(tmp_path.rglob("shard-*.parquet"))
    result = run_plan(net.tables, net.as_of, settings)
    assert result.forecast.height > 0
    buf = io.StringIO()
    result.forecast.head(3).write_csv(buf)
    assert buf.getvalue()


# --------------------------------------------------------------------------- generator


def test_generator_posts_are_deterministic_and_leave_the_network_alone() -> None:
    from stocktailor.synth import generate, with_posts

    net = generate("default", seed=1, n_stores=4, n_sku_sizes=60)
    assert net.tables.posts is None
    a, truth_a = with_posts(net)
    b, truth_b = with_posts(net)
    assert a.tables.posts is not None and b.tables.posts is not None
    assert a.tables.posts.equals(b.tables.posts)
    assert truth_a.lead_days == truth_b.lead_days and 3 <= truth_a.lead_days <= 21
    assert a.tables.sales.equals(net.tables.sales) and a.truth is net.truth
    held, _ = with_posts(net, vocabulary="heldout")
    assert held.tables.posts is not None
    from stocktailor.synth._posts import VOCABULARY

    dev_text = " | ".join(a.tables.posts["text"].to_list())
    for _, heldout in VOCABULARY.values():  # the scoring vocabulary never reaches dev posts
        assert not any(p.removeprefix("es:") in dev_text for p in heldout)
    posts = a.tables.posts
    assert posts["date"].max() <= net.as_of
    assert set(posts["source"]) <= {"social", "influencer", "blog", "other"}
    assert posts.filter(pl.col("text").str.contains("FOLLOWERS|giveaway|singles|phone")).height
