"""Partitioned execution: the same ``map`` in-process or on Dask distributed.

The core asks an :class:`Engine` to apply a pure function to a list of partitions (a style
group to forecast, a SKU-size group to optimise, a simulation partition) and gets the results
back in input order. Which engine runs it is chosen once, at the edge, by :func:`make_engine`.
Partition functions must be picklable top-level functions and deterministic, so a retried task
(for example after a worker restart) gives the same answer.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from stocktailor.config import EngineConfig

__all__ = ["DaskEngine", "Engine", "LocalEngine", "make_engine"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Progress = Callable[[int], None]
"""Called with the number of partitions just finished (usually 1)."""


class Engine(Protocol):
    """Runs a function over partitions and returns results in input order."""

    def map(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        progress: Progress | None = None,
        **shared: Any,
    ) -> list[R]:
        """Return ``[fn(item, **shared) for item in items]``."""
        ...

    def imap(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        progress: Progress | None = None,
        **shared: Any,
    ) -> Iterator[R]:
        """Yield ``fn(item, **shared)`` in input order, one result at a time.

        For results too large to hold together (a forecast at 1,000 stores x 20,000
        SKU-sizes): the caller writes each one out and drops it before taking the next.
        """
        ...

    def close(self) -> None:
        """Release workers (no-op in-process)."""
        ...


_DONE = object()


def _apply(item: Any, fn: Callable[..., Any], shared: dict[str, Any]) -> Any:
    return fn(item, **shared)


class LocalEngine:
    """In-process execution, one partition after another (the default)."""

    def map(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        progress: Progress | None = None,
        **shared: Any,
    ) -> list[R]:
        return list(self.imap(fn, items, progress=progress, **shared))

    def imap(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        progress: Progress | None = None,
        **shared: Any,
    ) -> Iterator[R]:
        for item in items:
            result = fn(item, **shared)
            if progress is not None:
                progress(1)
            yield result

    def close(self) -> None:
        return None

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskEngine:
    """Dask distributed execution, on an existing scheduler or a ``LocalCluster``.

    Parameters
    ----------
    address
        Scheduler address (``tcp://host:8786``); None starts a ``LocalCluster``.
    n_workers, threads_per_worker
        Size of the ``LocalCluster`` (ignored with an address).
    retries
        Times a failed task (for example a lost worker) is retried.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        retries: int = 3,
        client: Any | None = None,
    ) -> None:
        from distributed import Client, LocalCluster

        self.retries = retries
        self._cluster: Any | None = None
        if client is not None:
            self.client = client
            self._owns_client = False
            return
        if address is None:
            self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                # A free port: the scheduler's HTTP server otherwise takes 8787 and warns
                # (an error under -W error) when another cluster on the machine has it.
                dashboard_address=":0",
            )
            self.client = Client(self._cluster)  # type: ignore[no-untyped-call]
        else:
            self.client = Client(address)  # type: ignore[no-untyped-call]
        self._owns_client = True

    def _scatter(self, shared: dict[str, Any]) -> Any:
        # The shared arguments go to every worker once, as one object: scattering a dict
        # directly would split it into one future per key, and None cannot be scattered.
        [payload] = self.client.scatter([shared], broadcast=True, hash=False)
        return payload

    def map(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        progress: Progress | None = None,
        **shared: Any,
    ) -> list[R]:
        from distributed import as_completed

        if not items:
            return []
        payload = self._scatter(shared)
        futures = self.client.map(
            _apply, list(items), fn=fn, shared=payload, retries=self.retries, pure=False
        )
        if progress is not None:
            for _ in as_completed(futures):  # type: ignore[no-untyped-call]
                progress(1)
        results: list[R] = self.client.gather(futures)
        return results

    def imap(
        self,
        fn: Callable[..., R],
        items: Sequence[T],
        *,
        progress: Progress | None = None,
        **shared: Any,
    ) -> Iterator[R]:
        if not items:
            return
        payload = self._scatter(shared)
        # A bounded number of tasks in flight, so finished results don't pile up in worker
        # memory faster than the caller takes them.
        n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        window = 2 * n_workers
        pending: deque[Any] = deque()
        todo = iter(items)

        def submit() -> None:
            item = next(todo, _DONE)
            if item is not _DONE:
                pending.append(
                    self.client.submit(
                        _apply, item, fn=fn, shared=payload, retries=self.retries, pure=False
                    )
                )

        for _ in range(window):
            submit()
        while pending:
            future = pending.popleft()
            result: R = future.result()
            future.release()
            submit()
            if progress is not None:
                progress(1)
            yield result

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_engine(config: EngineConfig | None = None) -> LocalEngine | DaskEngine:
    """The engine the settings ask for (in-process unless ``engine = "dask"``)."""
    cfg = config or EngineConfig()
    if cfg.engine == "dask":
        logger.info("starting Dask engine at %s", cfg.scheduler_address or "a LocalCluster")
        return DaskEngine(
            cfg.scheduler_address,
            n_workers=cfg.n_workers,
            threads_per_worker=cfg.threads_per_worker,
        )
    return LocalEngine()
