"""Posts for a generated network: trend-led chatter, hype that never sells, noise and spam.

:func:`with_posts` adds a ``posts`` table to a :class:`SyntheticNetwork` (its tables and
truth are otherwise untouched, so scenarios without posts keep their bytes). Posts about a
trend tag follow the network's own trend series, dated ``lead_days`` (drawn per network,
3-21 days) before the demand they announce; "hype" posts rise for tags whose demand never
moves; off-topic chatter and spam fill the rest. Wording varies: synonyms, slang,
misspellings, emoji, hashtags and a share in Spanish. Two vocabularies exist per topic:
``dev`` for development and ``heldout``, used only to score (never to tune).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from stocktailor.synth._synthetic import SyntheticNetwork

__all__ = ["VOCABULARY", "PostsTruth", "with_posts"]

# topic -> (dev phrases, held-out phrases); Spanish phrases are marked by "es:".
VOCABULARY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bright-sneaker": (
        ("bright sneakers", "neon sneakers", "colorful sneakers", "es:zapatillas de colores"),
        ("loud trainers", "vivid kicks", "highlighter shoes", "es:tenis fosforito"),
    ),
    "linen": (
        ("linen shirt", "linen pants", "breezy linen", "es:camisa de lino"),
        ("flax top", "airy summer set", "natural fibre trousers", "es:pantalon de lino"),
    ),
    "trench": (
        ("trench coat", "classic trench", "belted trench", "es:gabardina clasica"),
        ("rain mac", "belted raincoat", "spring overcoat", "es:impermeable largo"),
    ),
    "athleisure": (
        ("athleisure", "yoga pants", "joggers", "es:ropa deportiva"),
        ("gym to street fits", "leggings and hoodie", "sweatpants", "es:chandal"),
    ),
    "wool-coat": (
        ("wool coat", "wool overcoat", "es:abrigo de lana"),
        ("camel topcoat", "heavy winter coat", "es:abrigo grueso"),
    ),
    "knit": (
        ("chunky knit", "knit sweater", "es:jersey de punto"),
        ("cable jumper", "cosy pullover", "es:sueter tejido"),
    ),
    "puffer": (
        ("puffer jacket", "puffer coat", "es:plumifero"),
        ("down jacket", "quilted parka", "es:chaqueta acolchada"),
    ),
    "denim": (
        ("denim jacket", "jeans", "es:chaqueta vaquera"),
        ("dungarees", "selvedge", "es:vaqueros"),
    ),
    "floral": (
        ("floral dress", "flower print", "es:vestido de flores"),
        ("botanical print frock", "ditsy blooms", "es:estampado floral"),
    ),
    "boot": (
        ("boots", "ankle boots", "es:botas"),
        ("chelsea boots", "combat boots", "es:botines"),
    ),
}
HYPE_TOPICS = ("floral", "knit", "denim", "puffer", "boot", "wool-coat")
_OPEN = (
    "obsessed with",
    "loving these",
    "cant stop wearing",
    "everyone here is wearing",
    "just got",
    "need more",
    "spotted so many",
    "ok but the",
)
_CLOSE = ("", "🔥", "✨✨", "#ootd", "#streetstyle", "so good", "lol", "10/10", "😍", "#fashion")
_OPEN_ES = ("me encantan", "todos llevan", "quiero", "nuevas", "mira estas")
_CHATTER = (
    "traffic on the bridge again",
    "best tacos in town?",
    "my cat knocked over the plant",
    "game night was wild",
    "who else is tired today",
    "coffee first then everything",
    "rain all weekend apparently",
    "new episode tonight!!",
    "que calor hace hoy",
    "happy birthday to my sister",
)
_SPAM = (
    "BUY FOLLOWERS cheap click link",
    "win a free phone now dm me",
    "crypto giveaway limited time",
    "hot singles near you",
)


@dataclass(frozen=True)
class PostsTruth:
    """What the posts were generated from (for scoring only).

    Attributes
    ----------
    lead_days
        Days by which topic posts lead the demand they announce.
    led
        ``scope, scope_id, attribute, value``: series whose posts follow a real demand trend.
    hype
        ``scope, scope_id, attribute, value``: series whose posts rise with no demand change.
    vocabulary
        ``dev`` or ``heldout``: which phrase list wrote the topic posts.
    """

    lead_days: int
    led: pl.DataFrame
    hype: pl.DataFrame
    vocabulary: str


def _misspell(word: str, rng: np.random.Generator) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 2))
    kind = int(rng.integers(3))
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _phrase(topic: str, vocab: int, rng: np.random.Generator, fallback: str) -> str:
    phrases = VOCABULARY.get(topic, ((fallback,), (fallback,)))[vocab]
    p = str(phrases[int(rng.integers(len(phrases)))])
    if p.startswith("es:"):
        text = f"{_OPEN_ES[int(rng.integers(len(_OPEN_ES)))]} {p[3:]}"
    else:
        text = f"{_OPEN[int(rng.integers(len(_OPEN)))]} {p}"
    words = [_misspell(w, rng) if rng.random() < 0.08 else w for w in text.split()]
    if rng.random() < 0.3:
        words.append("#" + p.removeprefix("es:").replace(" ", ""))
    words.append(_CLOSE[int(rng.integers(len(_CLOSE)))])
    return " ".join(w for w in words if w)


def _series_days(net: SyntheticNetwork) -> pl.DataFrame:
    """Every trend series of the network over history and season (date, key, index)."""
    frames = [f for f in (net.tables.trends, net.truth.season_tables.trends) if f is not None]
    if not frames:
        return pl.DataFrame(
            schema={
                "date": pl.Date,
                "scope": pl.String,
                "scope_id": pl.String,
                "attribute": pl.String,
                "value": pl.String,
                "index": pl.Float64,
            }
        )
    cols = ["date", "scope", "scope_id", "attribute", "value", "index"]
    return pl.concat([f.select(cols) for f in frames]).unique(cols[:5], keep="first")


def _topic(net: SyntheticNetwork, attribute: str, value: str) -> tuple[str, str]:
    """Vocabulary topic and fallback phrase of a trend series."""
    if attribute == "tags":
        return value, value.replace("-", " ")
    prods = net.tables.products
    if attribute == "style" and "style_name" in prods.columns:
        names = prods.filter(pl.col("style") == value)["style_name"]
        name = str(names[0]).lower() if names.len() else value
        for topic in VOCABULARY:
            if topic.split("-")[-1] in name:
                return topic, name
        return name, name
    return value, value


_SOURCES = ("social", "influencer", "blog", "other")
_SOURCE_P = (0.7, 0.1, 0.1, 0.1)
_POST_SCHEMA = {
    "date": pl.Date,
    "scope": pl.String,
    "scope_id": pl.String,
    "source": pl.String,
    "text": pl.String,
    "engagement": pl.Float64,
    "author": pl.String,
}
_KEY_SCHEMA = pl.Schema(
    {"scope": pl.String, "scope_id": pl.String, "attribute": pl.String, "value": pl.String}
)


class _Writer:
    """Collects posts row by row (one random stream for the whole table)."""

    def __init__(self, rng: np.random.Generator, vocab: int) -> None:
        self.rng = rng
        self.vocab = vocab
        self.rows: dict[str, list[object]] = {k: [] for k in _POST_SCHEMA}

    def emit(self, day: dt.date, scope: str, sid: str | None, text: str, source: str) -> None:
        mean_engagement = {"other": 200.0}.get(source, 20.0)
        for k, v in zip(
            _POST_SCHEMA,
            (day, scope, sid, source, text, float(self.rng.poisson(mean_engagement))),
            strict=False,
        ):
            self.rows[k].append(v)
        self.rows["author"].append(f"u{int(self.rng.integers(1_000_000)):06d}")

    def topic(self, day: dt.date, scope: str, sid: str | None, topic: str, fallback: str) -> None:
        src = _SOURCES[int(self.rng.choice(4, p=_SOURCE_P))]
        self.emit(day, scope, sid, _phrase(topic, self.vocab, self.rng, fallback), src)

    def frame(self) -> pl.DataFrame:
        key = ["date", "scope", "scope_id", "source", "author", "text"]
        return pl.DataFrame(self.rows, schema=_POST_SCHEMA).unique(
            key, keep="first", maintain_order=True
        )


def _led_posts(
    w: _Writer, net: SyntheticNetwork, days: list[dt.date], shift: int, per_day: float
) -> pl.DataFrame:
    """Posts that follow each trend series ``shift`` days ahead of it; returns the series."""
    series = _series_days(net)
    led = series.select("scope", "scope_id", "attribute", "value").unique().sort(pl.all())
    for scope, sid, attr, value in led.iter_rows():
        s = series.filter(
            (pl.col("scope") == scope)
            & (pl.col("scope_id") == sid)
            & (pl.col("attribute") == attr)
            & (pl.col("value") == value)
        )
        level = dict(zip(s["date"].to_list(), s["index"].to_list(), strict=True))
        topic, fallback = _topic(net, attr, value)
        sid_out = None if scope == "all" else sid
        for day in days:
            idx = level.get(day + dt.timedelta(days=shift))
            if idx is None:
                continue
            for _ in range(int(w.rng.poisson(per_day * max(float(idx), 0.0) / 100.0))):
                w.topic(day, scope, sid_out, topic, fallback)
    return led


def _hype_posts(
    w: _Writer,
    net: SyntheticNetwork,
    days: list[dt.date],
    led: pl.DataFrame,
    per_day: float,
    n_scopes: int,
) -> list[tuple[str, str, str, str]]:
    """Posts on a tag with no trend that triple over the last five weeks (no demand change)."""
    trend_tags = set(led.filter(pl.col("attribute") == "tags")["value"].to_list())
    prods = net.tables.products
    tags = (
        set(prods["tags"].str.split(";").explode().to_list()) if "tags" in prods.columns else set()
    )
    hype_topics = [t for t in HYPE_TOPICS if t in tags and t not in trend_tags]
    cities = sorted(set(net.tables.stores.filter(pl.col("kind") == "store")["city"].to_list()))
    if not hype_topics or not cities:
        return []
    topic = hype_topics[int(w.rng.integers(len(hype_topics)))]
    picked = w.rng.choice(len(cities), size=min(n_scopes, len(cities)), replace=False)
    out = []
    for city in [cities[int(i)] for i in picked]:
        out.append(("city", city, "tags", topic))
        for day in days:
            ramp = 1.0 + 2.0 / (1.0 + np.exp(-((day - net.as_of).days + 35) / 5.0))
            for _ in range(int(w.rng.poisson(per_day * ramp))):
                w.topic(day, "city", city, topic, topic)
    return out


def _noise_posts(w: _Writer, net: SyntheticNetwork, days: list[dt.date], per_day: float) -> None:
    """Off-topic chatter (per city) and spam (everywhere, high engagement)."""
    cities = sorted(set(net.tables.stores.filter(pl.col("kind") == "store")["city"].to_list()))
    rng = w.rng
    for day in days:
        for _ in range(int(rng.poisson(3 * per_day))):
            city = cities[int(rng.integers(len(cities)))] if cities else None
            chat = _CHATTER[int(rng.integers(len(_CHATTER)))]
            text = f"{chat} {_CLOSE[int(rng.integers(len(_CLOSE)))]}"
            w.emit(day, "city" if city else "all", city, text.strip(), "social")
        for _ in range(int(rng.poisson(per_day))):
            w.emit(day, "all", None, _SPAM[int(rng.integers(len(_SPAM)))], "other")


def with_posts(
    net: SyntheticNetwork,
    *,
    vocabulary: Literal["dev", "heldout"] = "dev",
    seed: int | None = None,
    posts_per_day: float = 6.0,
    hype_scopes: int = 2,
) -> tuple[SyntheticNetwork, PostsTruth]:
    """The network with a ``posts`` table (up to its as-of date) and what wrote it.

    Parameters
    ----------
    vocabulary
        Phrase list of the topic posts: ``dev`` (develop on it) or ``heldout`` (score on it).
    seed
        Random seed (default: the network's seed).
    posts_per_day
        Topic posts per day of a series at its usual level (index 100).
    hype_scopes
        Cities with a hype topic: posts triple over the last five weeks, demand does not move.
    """
    rng = np.random.default_rng([net.seed if seed is None else seed, 16, 1])
    w = _Writer(rng, 0 if vocabulary == "dev" else 1)
    lead = int(rng.integers(3, 22))
    start = net.tables.sales["date"].min()
    assert isinstance(start, dt.date)
    days = [start + dt.timedelta(days=i) for i in range((net.as_of - start).days + 1)]
    led = _led_posts(w, net, days, lead - int(net.truth.trend_lead_days), posts_per_day)
    hype = _hype_posts(w, net, days, led, posts_per_day, hype_scopes)
    _noise_posts(w, net, days, posts_per_day)
    truth = PostsTruth(
        lead_days=lead,
        led=led.cast(_KEY_SCHEMA),
        hype=pl.DataFrame(hype, schema=_KEY_SCHEMA, orient="row"),
        vocabulary=vocabulary,
    )
    return dataclasses.replace(net, tables=net.tables.replace(posts=w.frame())), truth
