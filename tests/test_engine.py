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


def test_local_imap_computes_one_item_at_a_time_in_order() -> None:
    calls: list[int] = []

    def record(x: int) -> int:
        calls.append(x)
        return x * 10

    it = LocalEngine().imap(record, [4, 5, 6])
    assert calls == []  # nothing runs before the caller asks
    assert next(it) == 40
    assert calls == [4]
    assert list(it) == [50, 60]
    assert calls == [4, 5, 6]


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


@pytest.mark.slow
def test_dask_imap_yields_in_input_order_with_a_bounded_window() -> None:
    items = list(range(23))  # more than the in-flight window of 2 x 2 workers
    with DaskEngine(n_workers=2, threads_per_worker=1) as engine:
        done: list[int] = []
        got = list(engine.imap(_slow_square_plus, items, progress=done.append, offset=3))
        assert list(engine.imap(_square_plus, [])) == []
    assert got == [x * x + 3 for x in items]
    assert sum(done) == len(items)


def _slow_square_plus(x: int, offset: int = 0) -> int:
    import time

    time.sleep(0.01 * (x % 3))  # finish out of order
    return x * x + offset


def _slow_square(x: int) -> int:
    import time

    time.sleep(0.2)
    return x * x


@pytest.mark.slow
def test_restarting_a_worker_mid_run_does_not_change_the_result() -> None:
    import threading

    items = list(range(24))
    expected = [x * x for x in items]
    with DaskEngine(n_workers=2, threads_per_worker=1) as engine:
        client = engine.client
        workers = sorted(client.scheduler_info()["workers"])
        finished: list[int] = []
        restarted = threading.Event()

        def on_progress(n: int) -> None:
            finished.append(n)
            if len(finished) == 4 and not restarted.is_set():
                restarted.set()
                # Kill one worker while tasks are queued and running on it.
                client.restart_workers([workers[0]], timeout=60)

        out = engine.map(_slow_square, items, progress=on_progress)
        assert restarted.is_set()
    assert out == expected


def _lookup(key: str, table: dict[str, int] | None = None, scale: int = 1) -> int:
    return (table or {}).get(key, -1) * scale


@pytest.mark.slow
def test_dask_shared_arguments_arrive_whole_even_dicts_and_none() -> None:
    items = ["a", "b", "z"]
    shared = {"table": {"a": 1, "b": 2}, "scale": 10}
    local = LocalEngine().map(_lookup, items, **shared)
    with DaskEngine(n_workers=2, threads_per_worker=1) as engine:
        assert engine.map(_lookup, items, **shared) == local == [10, 20, -10]
        assert engine.map(_lookup, items, table=None) == [-1, -1, -1]
