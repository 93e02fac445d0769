from __future__ import annotations

import pytest

from stocktailor.config import EngineConfig
from stocktailor.engine import DaskEngine, LocalEngine, make_engine


def _square_plus(x: int, offset: int = 0) -> int:
    return x * x + offset


def test_local_engine_keeps_order_and_reports_progress() -> None:
    done: list[int] = []
    out = LocalEngine().map(_square_plus, [3, 1, 2], progress=done.append, offset=1)
    assert out == [10, 2, 5]
    assert sum(done) == 3


def test_make_engine_defaults_to_local() -> None:
    assert isinstance(make_engine(EngineConfig()), LocalEngine)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_results() -> None:
    items = list(range(20))
    local = LocalEngine().map(_square_plus, items, offset=7)
    with DaskEngine(n_workers=2, threads_per_worker=1) as engine:
        done: list[int] = []
        remote = engine.map(_square_plus, items, progress=done.append, offset=7)
        assert engine.map(_square_plus, []) == []
    assert remote == local
    assert sum(done) == len(items)
