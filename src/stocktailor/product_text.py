"""Products in words: style, colour and size without the placeholders of retailers' files.

Product files write an unknown colour as ``na``, ``n/a``, ``-`` or leave it empty, and the size
of a one-size product as ``one`` or ``OS``; none of these belongs in a sentence a planner reads
("27W7702 na S2" is "27W7702 S2", a one-size bag is "BAG12 black").
"""

from __future__ import annotations

from typing import Any

__all__ = ["ONE_SIZE", "PLACEHOLDERS", "known", "known_size", "product_words"]

PLACEHOLDERS = frozenset({"", "na", "n/a", "nan", "none", "null", "-", "?"})
"""Values that stand for "unknown" in retailers' files (compared lower-case, stripped)."""

ONE_SIZE = frozenset({"one", "os", "o/s", "one size", "onesize", "one-size", "tu"})
"""Size values of one-size products (compared lower-case, stripped): the size says nothing."""


def known(value: Any) -> str | None:
    """``value`` as stripped text, or None when it is missing or a placeholder (``na``...).

    A float NaN (a missing value read from a file) is a placeholder too.
    """
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in PLACEHOLDERS else text


def known_size(value: Any) -> str | None:
    """A size worth saying: None for placeholders and one-size values (``one``, ``OS``)."""
    text = known(value)
    return None if text is None or text.lower() in ONE_SIZE else text


def product_words(name: Any, color: Any, size: Any) -> str:
    """``"27W7702 S2"`` from ``("27W7702", "na", "S2")``: the known parts, space-separated.

    Parameters
    ----------
    name
        The style (or the product's name).
    color, size
        Colour and size; placeholders and one-size values are left out.

    Returns
    -------
    str
        The known parts joined by spaces; empty when none is known.
    """
    return " ".join(p for p in (known(name), known(color), known_size(size)) if p)
