"""Feature groups, their default weights and the plain-English wording of feature columns."""

from __future__ import annotations

import re

__all__ = [
    "DEFAULT_GROUP_WEIGHTS",
    "FEATURE_GROUPS",
    "MIX_GROUPS",
    "NO_STYLE_GROUP_WEIGHTS",
    "STORE_ATTRIBUTE_GROUPS",
    "color_family",
    "feature_group",
    "feature_label",
    "size_group",
]

FEATURE_GROUPS: tuple[str, ...] = (
    "style_mix",
    "category_mix",
    "attribute_mix",
    "tag_mix",
    "velocity",
    "price",
    "size",
    "weather",
    "demographics",
    "format",
    "climate",
)
"""Feature groups; :class:`~stocktailor.config.ClusteringConfig.feature_weights` keys."""

MIX_GROUPS: frozenset[str] = frozenset({"style_mix", "category_mix", "attribute_mix", "tag_mix"})
"""Groups measured in mix units (see :mod:`.style`, :mod:`.mix`): compared as they are, not
z-scored, so a distance keeps its meaning ("a 30% different mix")."""

STORE_ATTRIBUTE_GROUPS: frozenset[str] = frozenset({"demographics", "format", "climate"})
"""Groups read from the stores table (not behaviour): off unless the retailer weights them."""

DEFAULT_GROUP_WEIGHTS: dict[str, float] = {
    "style_mix": 1.0,
    "category_mix": 0.5,
    "attribute_mix": 0.5,
    "tag_mix": 0.5,
    "velocity": 0.0,
    "price": 0.0,
    "size": 0.0,
    "weather": 0.0,
    "demographics": 0.0,
    "format": 0.0,
    "climate": 0.0,
}
"""Default weight of each group: buying behaviour only (the style mix, and the sales mixes by
category, product attribute and tag at half weight); store attributes, velocity, price, size and
weather response describe clusters but do not form them (a group's columns share its weight,
see :func:`~.model.weight_vector`)."""

NO_STYLE_GROUP_WEIGHTS: dict[str, float] = {
    **DEFAULT_GROUP_WEIGHTS,
    "category_mix": 1.0,
    "attribute_mix": 1.0,
    "tag_mix": 1.0,
}
"""Defaults when the features have no style-mix axes (products without a ``style`` column):
the category and attribute sales mixes then carry the behaviour."""


_COLOR_FAMILIES: dict[str, tuple[str, ...]] = {
    "bright": (
        "red",
        "orange",
        "yellow",
        "neon",
        "lime",
        "pink",
        "fuchsia",
        "magenta",
        "coral",
        "turquoise",
        "electric",
        "hot",
        "bright",
        "scarlet",
        "cobalt",
        "green",
        "purple",
    ),
    "pastel": (
        "mint",
        "lavender",
        "lilac",
        "blush",
        "peach",
        "baby",
        "pastel",
        "powder",
        "sky",
        "light",
    ),
    "neutral": (
        "white",
        "cream",
        "beige",
        "ecru",
        "ivory",
        "sand",
        "stone",
        "grey",
        "gray",
        "taupe",
        "khaki",
        "camel",
        "natural",
        "oat",
    ),
    "dark": (
        "black",
        "navy",
        "charcoal",
        "brown",
        "burgundy",
        "olive",
        "forest",
        "maroon",
        "dark",
        "chocolate",
        "indigo",
        "denim",
        "blue",
    ),
}


def color_family(color: str) -> str:
    """Colour family of a colour name: ``bright``, ``pastel``, ``neutral``, ``dark`` or ``other``.

    The first family whose keyword appears in the (lower-cased) name wins, in the order pastel,
    bright, neutral, dark, so "light blue"/"sky blue" is pastel and "navy" is dark.
    """
    text = color.lower()
    for family in ("pastel", "bright", "neutral", "dark"):
        if any(re.search(rf"\b{k}", text) for k in _COLOR_FAMILIES[family]):
            return family
    if "light" in text:
        return "pastel"
    return "other"


_LETTER_SIZES = re.compile(r"^(X{0,3}S|S|M|L|X{1,4}L|\dXL|XXS|XS|OS|ONE ?SIZE)$", re.IGNORECASE)
_NUMERIC_SIZE = re.compile(r"^\d{1,2}(\.5)?$")


def size_group(size: str, category: str = "") -> str:
    """``apparel`` (letter sizes), ``footwear`` (numeric sizes or a shoe category) or ``other``."""
    cat = category.lower()
    if any(k in cat for k in ("shoe", "sneaker", "boot", "footwear", "sandal", "trainer")):
        return "footwear"
    text = size.strip()
    if _LETTER_SIZES.match(text):
        return "apparel"
    if _NUMERIC_SIZE.match(text):
        return "footwear"
    return "other"


def feature_group(column: str) -> str:
    """Group of a feature column ``"<group>__<key>"`` (``"other"`` without a prefix)."""
    head, sep, _ = column.partition("__")
    return head if sep else "other"


def feature_label(column: str, sign: float = 1.0) -> str:
    """A short human label of a feature column, worded for a high (``sign>0``) or low value."""
    group, _, key = column.partition("__")
    high = sign >= 0
    if group == "style_mix":
        return f"style-mix axis {key.removeprefix('pc')} {'+' if high else '-'}"
    if group == "category_mix":
        return key.lower() if high else f"few {key.lower()}"
    if group in ("attribute_mix", "tag_mix"):
        if group == "tag_mix":
            key = f"tag={key}"
        attr, _, value = key.partition("=")
        text = value.replace("-", " ").replace("_", " ").lower()
        if attr == "tag":
            pass
        elif attr == "color_family":
            text = f"{text} colours"
        elif attr == "price_band":
            text = f"{text}-price"
        else:
            text = f"{text} {attr.replace('_', ' ')}"
        return text if high else f"few {text}"
    if group == "velocity":
        return (
            ("fast sellers" if high else "slow sellers")
            if key == "sku_rate"
            else ("high volume" if high else "low volume")
        )
    if group == "price":
        return "markdown-driven" if high else "full-price buyers"
    if group == "size":
        kind, _, what = key.partition("_")
        if what == "small_share":
            word = "small sizes" if high else "few small sizes"
        elif what == "large_share":
            word = "large sizes" if high else "few large sizes"
        else:
            word = "larger sizes" if high else "smaller sizes"
        return f"{word} ({kind})"
    if group == "weather":
        if key == "temp_slope":
            return "warm-weather buyers" if high else "cold-weather buyers"
        return "rain lifts sales" if high else "rain-shy"
    if group == "demographics":
        attr, _, value = key.partition("=")
        if value:
            return value.replace("_", " ") if high else f"not {value.replace('_', ' ')}"
        m = re.match(r"pct_age_(\d+)_(\d+)", attr)
        if m:
            age = f"{m.group(1)}-{m.group(2)}"
            return age if high else f"few {age}"
        name = attr.replace("median_", "").replace("pct_", "").replace("_", " ")
        return f"high {name}" if high else f"low {name}"
    if group in ("format", "climate"):
        attr, _, value = key.partition("=")
        if value:
            return value.replace("_", " ") if high else f"not {value.replace('_', ' ')}"
        name = attr.replace("_", " ")
        if attr == "log_area_sqm":
            name = "store area"
        return f"large {name}" if high else f"small {name}"
    return column if high else f"low {column}"
