"""Static reference data of the synthetic network: cities, segments, style templates.

Climate normals are rough public figures (annual mean temperature and the half-range between
the coldest and warmest month, in deg C); they only need to be plausible, not exact.
"""

# ruff: noqa: E501  (the reference tables below keep one record per line)

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "APPAREL_SIZES",
    "BELT_SIZES",
    "CITIES",
    "FOOTWEAR_SIZES",
    "SEGMENTS",
    "SEGMENT_AFFINITY",
    "STYLE_GROUPS",
    "STYLE_TEMPLATES",
    "TREND_SENSITIVITY",
    "WEATHER_CLASSES",
    "City",
    "StyleTemplate",
]


@dataclass(frozen=True)
class City:
    """A real city with coordinates and climate normals."""

    name: str
    state: str
    region: str
    latitude: float
    longitude: float
    temp_mean_c: float  # annual mean temperature, deg C
    temp_amp_c: float  # half the range between coldest and warmest month, deg C
    wet_day_prob: float  # probability of a day with precipitation
    climate_zone: str
    coastal_warm: float  # 0..1 beach / resort character
    creative: float  # 0..1 creative-district character
    business: float  # 0..1 office / business-district character
    income_k: float  # typical median household income, thousand USD
    weight: float  # relative retail weight (population-ish)


_C = City
# fmt: off
CITIES: tuple[City, ...] = (
    _C("Seattle", "WA", "Pacific Northwest", 47.61, -122.33, 11.5, 7.0, 0.42, "marine west coast", 0.0, 0.7, 0.8, 105, 4.0),
    _C("Portland", "OR", "Pacific Northwest", 45.52, -122.68, 12.5, 8.5, 0.4, "marine west coast", 0.0, 0.9, 0.4, 85, 2.5),
    _C("Los Angeles", "CA", "California", 34.05, -118.24, 18.5, 4.5, 0.08, "mediterranean", 0.4, 0.7, 0.8, 80, 9.0),
    _C("Santa Monica", "CA", "California", 34.02, -118.49, 17.5, 3.5, 0.08, "mediterranean", 1.0, 0.5, 0.4, 100, 1.0),
    _C("San Diego", "CA", "California", 32.72, -117.16, 18.0, 4.0, 0.1, "mediterranean", 0.9, 0.4, 0.5, 90, 3.5),
    _C("San Francisco", "CA", "California", 37.77, -122.42, 14.5, 3.5, 0.18, "mediterranean", 0.2, 0.9, 0.9, 125, 4.0),
    _C("Oakland", "CA", "California", 37.8, -122.27, 15.5, 4.0, 0.17, "mediterranean", 0.1, 0.8, 0.4, 90, 1.5),
    _C("Sacramento", "CA", "California", 38.58, -121.49, 16.5, 8.5, 0.15, "mediterranean", 0.0, 0.3, 0.5, 75, 2.0),
    _C("Phoenix", "AZ", "Southwest", 33.45, -112.07, 24.0, 10.5, 0.08, "hot desert", 0.2, 0.3, 0.5, 70, 4.5),
    _C("Tucson", "AZ", "Southwest", 32.22, -110.97, 21.5, 9.5, 0.1, "hot desert", 0.1, 0.4, 0.2, 55, 1.5),
    _C("Las Vegas", "NV", "Southwest", 36.17, -115.14, 20.5, 11.5, 0.06, "hot desert", 0.3, 0.3, 0.3, 65, 2.5),
    _C("Albuquerque", "NM", "Southwest", 35.08, -106.65, 14.5, 11.0, 0.12, "semi-arid", 0.0, 0.4, 0.3, 58, 1.5),
    _C("Denver", "CO", "Mountain", 39.74, -104.99, 10.5, 11.5, 0.18, "semi-arid", 0.0, 0.7, 0.6, 85, 3.0),
    _C("Salt Lake City", "UT", "Mountain", 40.76, -111.89, 11.5, 13.0, 0.2, "semi-arid", 0.0, 0.4, 0.4, 70, 1.5),
    _C("Boise", "ID", "Mountain", 43.62, -116.21, 11.0, 12.5, 0.17, "semi-arid", 0.0, 0.3, 0.2, 68, 1.0),
    _C("Austin", "TX", "Texas", 30.27, -97.74, 21.0, 9.0, 0.2, "humid subtropical", 0.0, 0.9, 0.6, 85, 3.0),
    _C("Dallas", "TX", "Texas", 32.78, -96.8, 19.5, 10.5, 0.2, "humid subtropical", 0.0, 0.3, 0.8, 70, 6.0),
    _C("Houston", "TX", "Texas", 29.76, -95.37, 21.0, 8.5, 0.28, "humid subtropical", 0.2, 0.3, 0.8, 65, 6.5),
    _C("San Antonio", "TX", "Texas", 29.42, -98.49, 21.0, 9.0, 0.2, "humid subtropical", 0.0, 0.2, 0.4, 58, 2.5),
    _C("Chicago", "IL", "Midwest", 41.88, -87.63, 10.5, 14.0, 0.33, "humid continental", 0.0, 0.7, 0.9, 75, 8.0),
    _C("Minneapolis", "MN", "Midwest", 44.98, -93.27, 8.0, 16.0, 0.3, "humid continental", 0.0, 0.5, 0.6, 80, 3.0),
    _C("Detroit", "MI", "Midwest", 42.33, -83.05, 10.0, 13.0, 0.34, "humid continental", 0.0, 0.4, 0.4, 55, 3.5),
    _C("Columbus", "OH", "Midwest", 39.96, -83.0, 11.5, 12.5, 0.35, "humid continental", 0.0, 0.4, 0.4, 62, 2.0),
    _C("Indianapolis", "IN", "Midwest", 39.77, -86.16, 12.0, 13.0, 0.34, "humid continental", 0.0, 0.2, 0.4, 60, 2.0),
    _C("Milwaukee", "WI", "Midwest", 43.04, -87.91, 9.0, 14.0, 0.32, "humid continental", 0.0, 0.3, 0.3, 55, 1.5),
    _C("Kansas City", "MO", "Midwest", 39.1, -94.58, 13.0, 14.0, 0.26, "humid continental", 0.0, 0.3, 0.4, 62, 2.0),
    _C("St. Louis", "MO", "Midwest", 38.63, -90.2, 14.0, 13.5, 0.28, "humid continental", 0.0, 0.3, 0.4, 60, 2.0),
    _C("Cleveland", "OH", "Midwest", 41.5, -81.69, 10.5, 12.5, 0.38, "humid continental", 0.0, 0.2, 0.4, 52, 1.5),
    _C("Atlanta", "GA", "Southeast", 33.75, -84.39, 17.0, 10.0, 0.3, "humid subtropical", 0.0, 0.8, 0.7, 75, 5.5),
    _C("Nashville", "TN", "Southeast", 36.16, -86.78, 15.5, 11.5, 0.32, "humid subtropical", 0.0, 0.7, 0.5, 68, 2.0),
    _C("New Orleans", "LA", "Southeast", 29.95, -90.07, 21.0, 8.0, 0.3, "humid subtropical", 0.2, 0.7, 0.3, 52, 1.5),
    _C("Birmingham", "AL", "Southeast", 33.52, -86.8, 17.5, 10.0, 0.31, "humid subtropical", 0.0, 0.2, 0.3, 55, 1.0),
    _C("Savannah", "GA", "Southeast", 32.08, -81.09, 19.5, 8.5, 0.3, "humid subtropical", 0.7, 0.5, 0.2, 55, 0.8),
    _C("Charlotte", "NC", "Carolinas", 35.23, -80.84, 16.0, 10.5, 0.3, "humid subtropical", 0.0, 0.3, 0.7, 70, 2.5),
    _C("Raleigh", "NC", "Carolinas", 35.78, -78.64, 16.0, 10.5, 0.3, "humid subtropical", 0.0, 0.4, 0.5, 75, 2.0),
    _C("Charleston", "SC", "Carolinas", 32.78, -79.93, 19.0, 9.0, 0.3, "humid subtropical", 1.0, 0.4, 0.2, 72, 1.0),
    _C("Wilmington", "NC", "Carolinas", 34.23, -77.94, 18.0, 9.5, 0.3, "humid subtropical", 0.9, 0.3, 0.1, 60, 0.8),
    _C("Myrtle Beach", "SC", "Carolinas", 33.69, -78.89, 18.0, 9.5, 0.29, "humid subtropical", 1.0, 0.1, 0.1, 52, 0.6),
    _C("Miami", "FL", "Florida", 25.76, -80.19, 25.5, 3.5, 0.35, "tropical", 1.0, 0.6, 0.6, 60, 5.0),
    _C("Tampa", "FL", "Florida", 27.95, -82.46, 23.5, 5.5, 0.28, "humid subtropical", 0.9, 0.3, 0.4, 62, 3.0),
    _C("Orlando", "FL", "Florida", 28.54, -81.38, 23.0, 5.5, 0.3, "humid subtropical", 0.5, 0.2, 0.3, 60, 3.0),
    _C("Jacksonville", "FL", "Florida", 30.33, -81.66, 21.0, 7.0, 0.3, "humid subtropical", 0.7, 0.2, 0.3, 62, 2.0),
    _C("Brooklyn", "NY", "Northeast", 40.68, -73.94, 13.0, 12.0, 0.32, "humid continental", 0.0, 1.0, 0.3, 75, 5.0),
    _C("New York", "NY", "Northeast", 40.76, -73.98, 13.0, 12.0, 0.32, "humid continental", 0.1, 0.8, 1.0, 95, 9.0),
    _C("Boston", "MA", "Northeast", 42.36, -71.06, 11.0, 12.5, 0.33, "humid continental", 0.1, 0.6, 0.9, 95, 3.5),
    _C("Providence", "RI", "Northeast", 41.82, -71.41, 10.5, 12.0, 0.32, "humid continental", 0.1, 0.5, 0.3, 65, 1.0),
    _C("Hartford", "CT", "Northeast", 41.76, -72.67, 10.5, 13.0, 0.32, "humid continental", 0.0, 0.2, 0.6, 70, 1.0),
    _C("Philadelphia", "PA", "Mid-Atlantic", 39.95, -75.17, 13.5, 12.5, 0.32, "humid subtropical", 0.0, 0.6, 0.7, 65, 5.0),
    _C("Washington", "DC", "Mid-Atlantic", 38.91, -77.04, 14.5, 12.5, 0.31, "humid subtropical", 0.0, 0.5, 1.0, 105, 4.5),
    _C("Baltimore", "MD", "Mid-Atlantic", 39.29, -76.61, 13.5, 12.5, 0.31, "humid subtropical", 0.1, 0.4, 0.5, 62, 2.0),
    _C("Pittsburgh", "PA", "Mid-Atlantic", 40.44, -80.0, 11.0, 12.5, 0.37, "humid continental", 0.0, 0.4, 0.5, 62, 1.5),
)
# fmt: on

# Size-profile shift of each region: negative = petite-leaning, positive = larger sizes.
REGION_SIZE_SHIFT: dict[str, float] = {
    "Pacific Northwest": -0.35,
    "California": -0.45,
    "Southwest": 0.2,
    "Mountain": 0.0,
    "Texas": 0.45,
    "Midwest": 0.4,
    "Southeast": 0.5,
    "Carolinas": 0.3,
    "Florida": 0.35,
    "Northeast": -0.5,
    "Mid-Atlantic": -0.1,
}

SEGMENTS: tuple[str, ...] = (
    "urban creative",
    "suburban family",
    "coastal casual",
    "classic professional",
    "value outlet",
)

STYLE_GROUPS: tuple[str, ...] = (
    "tailoring",
    "streetwear",
    "casual",
    "resort",
    "outdoor",
    "denim",
    "athleisure",
    "occasion",
)

# Demand multiplier of each segment (rows, SEGMENTS order) for each style group (columns).
SEGMENT_AFFINITY: tuple[tuple[float, ...], ...] = (
    (0.55, 2.3, 0.85, 0.7, 0.8, 1.5, 1.3, 0.8),  # urban creative
    (0.7, 0.45, 1.5, 0.8, 1.35, 1.1, 1.35, 0.6),  # suburban family
    (0.6, 0.9, 1.1, 2.3, 0.5, 0.9, 1.0, 1.05),  # coastal casual
    (2.1, 0.4, 0.8, 0.7, 0.8, 0.7, 0.6, 1.6),  # classic professional
    (0.8, 0.8, 1.25, 0.8, 1.0, 1.25, 1.1, 0.55),  # value outlet
)

# How strongly a segment"s demand follows a social-trend index (0 = not at all).
TREND_SENSITIVITY: tuple[float, ...] = (1.0, 0.08, 0.35, 0.15, 0.2)

# Price elasticity multiplier of a segment is not modelled (elasticity is per SKU); the value
# outlet segment is reflected in a lower store scale and higher affinity for basics instead.

WEATHER_CLASSES: tuple[str, ...] = ("neutral", "cold", "mild", "warm")

APPAREL_SIZES: tuple[str, ...] = ("XS", "S", "M", "L", "XL")
FOOTWEAR_SIZES: tuple[str, ...] = tuple(str(s) for s in range(36, 46))
BELT_SIZES: tuple[str, ...] = ("S1", "S2", "S3", "S4", "S5")


@dataclass(frozen=True)
class StyleTemplate:
    """A kind of style the catalogue is built from."""

    name: str
    category: str
    genders: tuple[str, ...]
    size_group: str  # apparel | footwear | belt
    price: float  # typical full price, currency
    weather: str  # one of WEATHER_CLASSES
    group: str  # one of STYLE_GROUPS
    tags: tuple[str, ...]
    colors: tuple[str, ...]
    fabric: str
    popularity: float  # relative base demand
    season_end_offset_days: int  # product season_end relative to the network season end (<= 0)


_T = StyleTemplate
# fmt: off
STYLE_TEMPLATES: tuple[StyleTemplate, ...] = (
    _T("Classic Trench Coat", "outerwear", ("W", "M"), "apparel", 229.0, "mild", "tailoring", ("trench", "classic", "light-layer"), ("khaki", "black", "navy", "stone"),
       "cotton gabardine", 1.1, -28),
    _T("Wool Overcoat", "outerwear", ("W", "M"), "apparel", 279.0, "cold", "tailoring", ("wool-coat", "classic"), ("charcoal", "camel", "black"),
       "wool", 0.9, -42),
    _T("Puffer Jacket", "outerwear", ("U",), "apparel", 189.0, "cold", "outdoor", ("puffer", "outdoor"), ("black", "olive", "red"),
       "nylon", 0.9, -42),
    _T("Rain Shell", "outerwear", ("U",), "apparel", 139.0, "mild", "outdoor", ("rain", "outdoor", "light-layer"), ("yellow", "navy", "black"),
       "nylon", 0.8, -14),
    _T("Denim Jacket", "outerwear", ("W", "M"), "apparel", 98.0, "mild", "denim", ("denim", "light-layer"), ("mid-blue", "black"),
       "denim", 0.9, -14),
    _T("Graphic Tee", "tops", ("U",), "apparel", 35.0, "warm", "streetwear", ("streetwear", "graphic"), ("white", "black", "washed-pink", "sage"),
       "cotton", 1.6, 0),
    _T("Oxford Shirt", "tops", ("M",), "apparel", 69.0, "neutral", "tailoring", ("workwear", "classic"), ("white", "light-blue", "pink"),
       "cotton", 1.1, 0),
    _T("Silk Blouse", "tops", ("W",), "apparel", 89.0, "neutral", "occasion", ("workwear", "classic"), ("ivory", "black", "emerald"),
       "silk", 0.9, 0),
    _T("Linen Shirt", "tops", ("W", "M"), "apparel", 65.0, "warm", "resort", ("linen", "coastal"), ("white", "sand", "sky-blue"),
       "linen", 1.1, 0),
    _T("Hoodie", "tops", ("U",), "apparel", 75.0, "neutral", "streetwear", ("streetwear", "athleisure"), ("grey", "black", "forest"),
       "cotton fleece", 1.2, -14),
    _T("Knit Sweater", "tops", ("W", "M"), "apparel", 89.0, "cold", "casual", ("knit", "cozy"), ("oatmeal", "navy", "burgundy"),
       "merino", 0.9, -35),
    _T("Polo Shirt", "tops", ("M",), "apparel", 55.0, "warm", "casual", ("basic", "family"), ("white", "navy", "green"),
       "pique cotton", 1.1, 0),
    _T("Sundress", "dresses", ("W",), "apparel", 79.0, "warm", "resort", ("floral", "coastal"), ("floral-blue", "yellow", "white"),
       "viscose", 1.1, 0),
    _T("Wrap Dress", "dresses", ("W",), "apparel", 119.0, "neutral", "occasion", ("occasion", "classic"), ("black", "red", "navy"),
       "jersey", 0.9, 0),
    _T("Midi Dress", "dresses", ("W",), "apparel", 99.0, "mild", "casual", ("floral", "light-layer"), ("sage", "rust", "black"),
       "cotton", 0.9, -7),
    _T("Slim Jeans", "bottoms", ("W", "M"), "apparel", 79.0, "neutral", "denim", ("denim", "basic"), ("indigo", "black", "light-wash"),
       "denim", 1.4, 0),
    _T("Chinos", "bottoms", ("M",), "apparel", 69.0, "neutral", "tailoring", ("workwear", "basic"), ("khaki", "navy", "olive"),
       "cotton twill", 1.1, 0),
    _T("Chino Shorts", "bottoms", ("M",), "apparel", 49.0, "warm", "casual", ("shorts", "family"), ("khaki", "navy", "sky-blue"),
       "cotton twill", 1.1, 0),
    _T("Joggers", "bottoms", ("U",), "apparel", 59.0, "neutral", "athleisure", ("athleisure", "streetwear"), ("black", "grey", "navy"),
       "cotton fleece", 1.2, 0),
    _T("Leggings", "bottoms", ("W",), "apparel", 49.0, "neutral", "athleisure", ("athleisure", "basic"), ("black", "navy", "plum"),
       "nylon stretch", 1.2, 0),
    _T("Bright Runner Sneaker", "sneakers", ("U",), "footwear", 119.0, "neutral", "streetwear", ("bright-sneaker", "streetwear"), ("neon-green", "hot-pink", "electric-blue"),
       "mesh", 1.3, 0),
    _T("Court Sneaker", "sneakers", ("U",), "footwear", 89.0, "neutral", "casual", ("sneaker", "basic"), ("white", "black"),
       "leather", 1.2, 0),
    _T("Trail Runner", "sneakers", ("U",), "footwear", 129.0, "neutral", "outdoor", ("outdoor", "athleisure"), ("grey", "olive"),
       "mesh", 0.8, 0),
    _T("Chelsea Boot", "boots", ("W", "M"), "footwear", 169.0, "cold", "tailoring", ("boot", "classic"), ("black", "tan"),
       "leather", 0.9, -35),
    _T("Hiking Boot", "boots", ("U",), "footwear", 159.0, "cold", "outdoor", ("boot", "outdoor"), ("brown", "grey"),
       "suede", 0.7, -35),
    _T("Slide Sandal", "sandals", ("U",), "footwear", 45.0, "warm", "resort", ("sandal", "coastal"), ("black", "sand", "white"),
       "rubber", 1.0, 0),
    _T("Espadrille", "sandals", ("W",), "footwear", 65.0, "warm", "resort", ("coastal", "summer"), ("navy-stripe", "natural"),
       "canvas", 0.8, 0),
    _T("Leather Loafer", "shoes", ("W", "M"), "footwear", 149.0, "neutral", "tailoring", ("workwear", "classic"), ("black", "cognac"),
       "leather", 0.8, 0),
    _T("Leather Belt", "accessories", ("U",), "belt", 45.0, "neutral", "tailoring", ("accessory", "classic"), ("black", "brown"),
       "leather", 0.7, 0),
    _T("Canvas Belt", "accessories", ("U",), "belt", 29.0, "warm", "casual", ("accessory", "coastal"), ("navy", "khaki", "red"),
       "canvas", 0.6, 0),
)
# fmt: on

# Colours that count as "bright" for the bright-sneaker story.
BRIGHT_COLORS: frozenset[str] = frozenset(
    {"neon-green", "hot-pink", "electric-blue", "yellow", "red"}
)

# Tags that carry a social-trend index.
TREND_TAGS: tuple[str, ...] = ("bright-sneaker", "linen", "athleisure", "trench")
