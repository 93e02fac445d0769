"""Money as text in a currency's usual notation (ISO 4217 code from ``economics.currency``).

A small table of common codes gives the symbol, where it stands, the minor-unit digits and the
separators of the currency's home locale (``1.234.567 ₫``, ``$1,234.56``, ``1.234,56 €``).
A code not in the table is written after the number (``1,234.56 XAF``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CURRENCIES", "CurrencyFormat", "currency_format", "format_money", "money_label"]


@dataclass(frozen=True)
class CurrencyFormat:
    """How one currency is written.

    Attributes
    ----------
    symbol
        Sign written with the number (``₫``, ``$``), or the code itself.
    decimals
        Digits of the minor unit (0 for VND and JPY).
    group, point
        Thousands separator and decimal mark.
    after
        True when the symbol follows the number (with a space).
    """

    symbol: str
    decimals: int = 2
    group: str = ","
    point: str = "."
    after: bool = False


CURRENCIES: dict[str, CurrencyFormat] = {
    "USD": CurrencyFormat("$"),
    "EUR": CurrencyFormat("€", group=".", point=",", after=True),
    "GBP": CurrencyFormat("£"),
    "JPY": CurrencyFormat("¥", decimals=0),
    "CNY": CurrencyFormat("¥"),
    "KRW": CurrencyFormat("₩", decimals=0),
    "VND": CurrencyFormat("₫", decimals=0, group=".", point=",", after=True),
    "THB": CurrencyFormat("฿"),
    "IDR": CurrencyFormat("Rp", decimals=0, group=".", point=","),
    "INR": CurrencyFormat("₹"),
    "SGD": CurrencyFormat("S$"),
    "AUD": CurrencyFormat("A$"),
    "CAD": CurrencyFormat("CA$"),
    "CHF": CurrencyFormat("CHF ", group="’"),
    "SEK": CurrencyFormat("kr", group=" ", point=",", after=True),
    "PLN": CurrencyFormat("zł", group=" ", point=",", after=True),
    "BRL": CurrencyFormat("R$ ", group=".", point=","),
    "MXN": CurrencyFormat("MX$"),
}
"""Formats of common ISO 4217 codes."""


def currency_format(code: str) -> CurrencyFormat:
    """The format of ``code`` (upper-case ISO 4217); an unknown code is written after the number.

    Raises
    ------
    ValueError
        If ``code`` is not three letters.
    """
    key = code.strip().upper()
    if len(key) != 3 or not key.isascii() or not key.isalpha():
        msg = f"economics.currency: expected a three-letter ISO 4217 code, got {code!r}"
        raise ValueError(msg)
    return CURRENCIES.get(key, CurrencyFormat(key, after=True))


def format_money(value: float, currency: str = "USD", *, cents: bool | None = None) -> str:
    """``value`` (currency units) as text in ``currency``'s notation.

    Parameters
    ----------
    value
        Amount, currency units.
    currency
        ISO 4217 code.
    cents
        True: always the minor-unit digits; False: whole units; None (default): minor units
        only below 1,000 (a tile reading 3,993,749 needs no cents).

    Returns
    -------
    str
        E.g. ``$1,234`` / ``$12.50`` / ``-1.234.567 ₫``; ``–`` for NaN.
    """
    fmt = currency_format(currency)
    number = float(value)
    if not math.isfinite(number):
        return "–"
    keep = cents if cents is not None else abs(number) < 1000
    digits = fmt.decimals if keep else 0
    text = f"{abs(number):,.{digits}f}"
    if fmt.group != "," or fmt.point != ".":
        text = text.replace(",", "\0").replace(".", fmt.point).replace("\0", fmt.group)
    sign = "-" if round(number, digits) < 0 else ""
    if fmt.after:
        return f"{sign}{text} {fmt.symbol}"
    return f"{sign}{fmt.symbol}{text}"


def money_label(currency: str) -> str:
    """Unit label for a money axis or column, e.g. ``VND (₫)``, ``USD ($)``."""
    fmt = currency_format(currency)
    code = currency.strip().upper()
    symbol = fmt.symbol.strip()
    return code if symbol == code else f"{code} ({symbol})"
