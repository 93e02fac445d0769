"""The three-store toy network the backtest and report tests run on."""

from __future__ import annotations

from stocktailor.simulate.toy import ToyNetwork, toy_network

__all__ = ["three_store_toy"]


def three_store_toy(seed: int, coords: list[tuple[float, float]] | None = None) -> ToyNetwork:
    """Three stores (two urban, one suburban) x three SKUs, a warehouse, six weeks; ``seed``
    is unused (the backtest's network factory takes one)."""
    return toy_network(
        [[2.0, 3.0, 1.0], [0.2, 0.3, 0.1], [1.0, 1.0, 1.0]],
        [[5, 5, 5], [40, 40, 40], [10, 10, 10]],
        warehouse=[20, 20, 20],
        segments=["urban", "suburban", "urban"],
        weeks=6,
        coords=coords,
    )
