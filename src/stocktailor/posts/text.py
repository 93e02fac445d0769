"""Text clean-up shared by the embedding and keyword paths (no model, no network)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean", "stem", "tokens"]

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_REPEAT = re.compile(r"(\w)\1{2,}")
_WORD = re.compile(r"[^\W_]+")


def clean(text: str) -> str:
    """Lower-case text with URLs and mentions removed, hashtags split into words.

    ``"#BrightSneakers sooo good http://x.y"`` becomes ``"bright sneakers soo good"``:
    camel-case hashtags are split, letters repeated three or more times are cut to two,
    ``-`` and ``_`` become spaces. Accents are kept (Spanish posts).
    """
    t = unicodedata.normalize("NFKC", text)
    t = _MENTION.sub(" ", _URL.sub(" ", t))
    t = t.replace("#", " ")
    t = _CAMEL.sub(" ", t).lower()
    t = _REPEAT.sub(r"\1\1", t)
    t = t.replace("-", " ").replace("_", " ")
    return " ".join(t.split())


def stem(word: str) -> str:
    """A light suffix stemmer (English plurals and verb endings, Spanish plurals).

    Deliberately crude: the keyword baseline it serves should match ``sneakers`` to
    ``sneaker`` and ``coats`` to ``coat``, nothing cleverer.
    """
    w = word.lower()
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "es" and not w.endswith(("ches", "shes", "xes", "zes", "oes")):
                continue
            return w[: len(w) - len(suffix)] + keep
    return w


def tokens(text: str, *, stemmed: bool = False) -> list[str]:
    """Words of :func:`clean` ``(text)``, optionally stemmed."""
    words = _WORD.findall(clean(text))
    return [stem(w) for w in words] if stemmed else words
