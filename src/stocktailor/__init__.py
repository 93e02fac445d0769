"""stocktailor: the right inventory in the right store at the right time."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
