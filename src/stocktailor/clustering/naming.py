"""Cluster profiles (feature vs network), plain-English names and explanations."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import polars as pl

from stocktailor.clustering.labels import feature_group, feature_label

__all__ = [
    "MAX_NAME_WORDS",
    "NAMED_GROUPS",
    "PROFILE_SCHEMA",
    "cluster_names",
    "describe_weights",
    "phrase",
    "profiles",
    "stems",
    "top_features",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROFILE_SCHEMA = {
    "cluster_id": pl.Int64,
    "feature": pl.String,
    "label": pl.String,
    "group": pl.String,
    "cluster_value": pl.Float64,
    "network_value": pl.Float64,
    "z": pl.Float64,
    "rank": pl.Int64,
}


def _nanmean0(sub: FloatArray, fallback: FloatArray) -> FloatArray:
    """Column means ignoring NaN; ``fallback`` for all-NaN columns."""
    finite = np.isfinite(sub)
    cnt = finite.sum(axis=0)
    total = np.where(finite, sub, 0.0).sum(axis=0)
    out: FloatArray = np.where(cnt > 0, total / np.maximum(cnt, 1), fallback)
    return out


def profiles(
    raw: FloatArray,
    columns: list[str],
    cluster_ids: list[int],
    rows: IntArray,
    describe_weights: FloatArray,
) -> pl.DataFrame:
    """Per cluster and feature: cluster value, network value, z and rank (1 = most distinct).

    ``raw`` holds the stores' feature values (NaN = unknown) in ``columns`` order; ``rows[i]``
    is store ``i``'s cluster row (index into ``cluster_ids``). ``z`` is the cluster's mean in
    network standard deviations (unknown values count as the network mean). Features are
    ranked by ``|z| x describe_weights`` (features with weight 0 rank last).
    """
    finite = np.isfinite(raw)
    net = np.nanmean(np.where(finite, raw, np.nan), axis=0) if raw.size else np.zeros(0)
    net = np.where(np.isfinite(net), net, 0.0)
    dev = np.where(finite, raw - net, 0.0)
    std = np.sqrt((dev**2).sum(axis=0) / np.maximum(finite.sum(axis=0) - 1, 1))
    z = dev / np.where(std > 1e-12, std, 1.0)
    mean = net
    records: list[dict[str, object]] = []
    for r, cid in enumerate(cluster_ids):
        mask = rows == r
        if not mask.any():
            continue
        cval = _nanmean0(raw[mask], mean)
        zc = z[mask].mean(axis=0)
        order = np.argsort(-np.abs(zc * describe_weights), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        for j, col in enumerate(columns):
            records.append(
                {
                    "cluster_id": cid,
                    "feature": col,
                    "label": feature_label(col, float(zc[j])),
                    "group": feature_group(col),
                    "cluster_value": float(cval[j]),
                    "network_value": float(net[j]),
                    "z": float(zc[j]),
                    "rank": int(rank[j]),
                }
            )
    return (
        pl.DataFrame(records, schema=PROFILE_SCHEMA)
        .with_columns(pl.lit("").alias("cluster_name"))
        .sort("cluster_id", "rank")
    )


NAMED_GROUPS: dict[str, float] = {"category_mix": 1.0, "attribute_mix": 1.0, "tag_mix": 1.0}
"""Groups that word a cluster (what its stores sell more or less of): the category and product
attribute sales mixes and the tag shares. The style-mix axes are latent (no wording); store
attributes, velocity, price, size and weather do not form clusters by default, so they do not
name them either."""

LOW_WEIGHT = 0.6
"""A feature the cluster sells less of ranks as if its z were this share of its size."""

MAX_NAME_WORDS = 4
"""A cluster name has at most this many words."""

NAME_MIN_Z = 0.5
"""A feature names a cluster when the cluster's mean is at least this many network standard
deviations from the network's."""

_GENDER_WORDS = {
    "w": "womenswear",
    "women": "womenswear",
    "f": "womenswear",
    "female": "womenswear",
    "m": "menswear",
    "men": "menswear",
    "male": "menswear",
    "u": "unisex",
    "unisex": "unisex",
    "k": "kidswear",
    "kids": "kidswear",
}


_COUNT_NOUNS = frozenset(
    {
        "bag",
        "belt",
        "blazer",
        "blouse",
        "boot",
        "cap",
        "coat",
        "dress",
        "hat",
        "hoodie",
        "jacket",
        "jean",
        "legging",
        "loafer",
        "parka",
        "puffer",
        "sandal",
        "scarf",
        "shirt",
        "shoe",
        "short",
        "skirt",
        "slipper",
        "sneaker",
        "sock",
        "sweater",
        "tee",
        "top",
        "trainer",
        "trouser",
    }
)
"""Garment nouns a planner says in the plural ("sandals", "wool coats"): a tag or category
ending in one of them is worded in the plural."""


def _plural(text: str) -> str:
    """``"bright sneaker"`` -> ``"bright sneakers"``, ``"wool coat"`` -> ``"wool coats"``;
    anything not ending in a garment noun unchanged ("denim", "coastal")."""
    head, _, last = text.rpartition(" ")
    if last not in _COUNT_NOUNS:
        return text
    if last.endswith(("s", "sh", "ch", "x")):
        plural = last + "es"
    elif last == "scarf":
        plural = "scarves"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def describe_weights(columns: list[str]) -> FloatArray:
    """Per column, its weight in naming and explaining clusters (:data:`NAMED_GROUPS`)."""
    out: FloatArray = np.array(
        [NAMED_GROUPS.get(feature_group(c), 0.0) for c in columns], dtype=np.float64
    )
    return out


def phrase(column: str, z: float) -> str:
    """Plain-English words for a feature column at a high (``z > 0``) or low value.

    ``category_mix__sandals`` -> "sandals" / "light on sandals";
    ``attribute_mix__gender=W`` -> "womenswear"; ``attribute_mix__price_band=high`` ->
    "premium"; ``attribute_mix__color_family=bright`` -> "bright colours";
    ``attribute_mix__fit=slim`` -> "slim fit"; ``tag_mix__bright-sneaker`` -> "bright sneaker".
    """
    group, _, key = column.partition("__")
    if group not in NAMED_GROUPS:
        return feature_label(column, z)
    attr, eq, value = key.partition("=")
    if not eq:
        attr, value = "", key
    text = value.replace("-", " ").replace("_", " ").strip().lower()
    if attr == "gender":
        text = _GENDER_WORDS.get(text, f"{text} gender")
    elif attr == "price_band":
        text = {"high": "premium", "low": "value", "mid": "mid-price"}.get(text, f"{text} price")
    elif attr == "color_family":
        text = f"{text} colours"
    elif attr in ("fabric", "material", "size_group", ""):
        text = _plural(text)
    else:
        text = f"{text} {attr.replace('_', ' ')}"
    return text if z >= 0 else f"light on {text}"


def stems(text: str) -> set[str]:
    """Word stems of a phrase, plural endings removed ("sandals" -> "sandal", "dresses" ->
    "dress"), without filler words: two phrases with a common stem say the same thing."""
    out: set[str] = set()
    for raw in text.lower().replace("-", " ").split():
        w = "".join(ch for ch in raw if ch.isalnum())
        if w in ("on", "light", "and", "of", "the", "few", "price", "colours", "wear") or not w:
            continue
        if len(w) > 4 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 4 and w.endswith(("sses", "shes", "ches", "xes")):
            w = w[:-2]
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.add(w)
    return out


def _ranked_phrases(prof: pl.DataFrame, cid: int) -> list[tuple[str, str, float]]:
    """``(feature, phrase, z)`` of a cluster's distinct features (``|z| >=``
    :data:`NAME_MIN_Z`), most distinguishing first, no two phrases with a common stem."""
    p = prof.filter((pl.col("cluster_id") == cid) & pl.col("group").is_in(list(NAMED_GROUPS))).sort(
        "rank"
    )
    out: list[tuple[str, str, float]] = []
    seen: set[str] = set()
    for f, z in zip(p["feature"], p["z"], strict=True):
        if abs(float(z)) < NAME_MIN_Z:
            continue
        words = phrase(str(f), float(z))
        s = stems(words)
        if not s or s & seen:
            continue
        seen |= s
        out.append((str(f), words, float(z)))
    # what a cluster sells more of describes it better than what it sells less of, unless the
    # shortfall is much the larger (a women-only store: no menswear)
    out.sort(key=lambda r: -abs(r[2]) * (1.0 if r[2] > 0 else LOW_WEIGHT))
    return out


def _join(parts: list[tuple[str, float]]) -> str:
    """ "Sandals & linen", "Sneakers, light on dresses": more-of phrases first."""
    high = [w for w, z in parts if z > 0]
    low = [w for w, z in parts if z <= 0]
    text = " & ".join(high)
    if low:
        text = f"{text}, {' & '.join(low)}" if text else " & ".join(low)
    return text[0].upper() + text[1:]


def _candidates(ranked: list[tuple[str, str, float]]) -> list[str]:
    """Names from a cluster's ranked phrases, best first: the top two together, the top one
    alone, then the other pairs and single phrases (each at most :data:`MAX_NAME_WORDS`
    words)."""
    n = len(ranked)
    combos: list[tuple[int, ...]] = [(0, 1), (0,)]
    combos += [(i, j) for i in range(n) for j in range(i + 1, n) if (i, j) != (0, 1)]
    combos += [(i,) for i in range(1, n)]
    out: list[str] = []
    for combo in combos:
        if max(combo) >= n:
            continue
        text = _join([(ranked[i][1], ranked[i][2]) for i in combo])
        if _words(text) <= MAX_NAME_WORDS:
            out.append(text)
    return list(dict.fromkeys(out))


def _name_key(name: str) -> frozenset[tuple[frozenset[str], bool]]:
    """What a name says, whatever its order or plural endings: its phrases as (stems, whether
    it is a "light on" phrase). "Sandals & dresses" and "Dresses & sandal" say the same."""
    out: set[tuple[frozenset[str], bool]] = set()
    for part in name.lower().replace(", ", " & ").split(" & "):
        words = part.strip()
        out.add((frozenset(stems(words)), words.startswith("light on")))
    return frozenset(out)


def _words(name: str) -> int:
    """Words of a name ("&" and commas do not count)."""
    return len([w for w in name.replace(",", " ").split() if w != "&"])


def cluster_names(
    prof: pl.DataFrame,
    cluster_ids: list[int],
    keep: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """A short, unique, plain-English name per cluster from what its stores sell more of.

    A name is one or two of the cluster's most distinguishing phrases (:func:`phrase`; no two
    with a common word stem), at most :data:`MAX_NAME_WORDS` words, e.g. "Sandals & bright
    colours"; a cluster with nothing distinct is "Core range". ``keep`` (e.g. the previous
    fit's names when re-clustering) wins for its clusters. Names are unique in what they say
    (case, order and plural endings aside: "Dresses & sandals" repeats "Sandals & dresses"):
    a name already taken is replaced by the cluster's next candidate; the last resort numbers
    its best candidate short enough to stay within :data:`MAX_NAME_WORDS` words ("Core range
    2", "Sandals & dresses 2": a cluster selling what another sells is not "Core range").
    """
    names: dict[int, str] = {}
    # what each name taken so far says -> that name
    taken: dict[frozenset[tuple[frozenset[str], bool]], str] = {
        _name_key(v): v for v in (keep or {}).values()
    }
    numbered: set[str] = {v.lower() for v in (keep or {}).values()}
    for cid in cluster_ids:
        if keep and cid in keep:
            names[cid] = keep[cid]
            continue
        ordered = _candidates(_ranked_phrases(prof, cid)) or ["Core range"]
        name = next((c for c in ordered if _name_key(c) not in taken), "")
        if not name:
            short = next((c for c in ordered if _words(c) < MAX_NAME_WORDS), "Core range")
            base = taken.get(_name_key(short), short)
            if _words(base) >= MAX_NAME_WORDS:
                base = short
            i = 2
            while f"{base} {i}".lower() in numbered:
                i += 1
            name = f"{base} {i}"
        taken.setdefault(_name_key(name), name)
        numbered.add(name.lower())
        names[cid] = name
    return names


def top_features(prof: pl.DataFrame, cluster_ids: list[int], n: int) -> dict[int, str]:
    """Cluster id -> ``"sandals (+1.8 sd); bright colours (+1.2 sd)"``: its ``n`` most
    distinguishing features in the order its name uses them (no repeated stem)."""
    out: dict[int, str] = {}
    for cid in cluster_ids:
        ranked = _ranked_phrases(prof, cid)[:n]
        out[cid] = "; ".join(f"{w} ({z:+.1f} sd)" for _, w, z in ranked)
    return out
