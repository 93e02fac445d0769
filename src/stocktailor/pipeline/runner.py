"""The step runner: run every stale step of a plan run, reuse every stored one.

A step's output is stored under a key: sha256 of the step (name, revision, package version),
its date, the fingerprint of the data known on that date
(:meth:`~stocktailor.workspace.Workspace.fingerprint_upto`), the settings it reads and the keys
of its inputs. A step is *stale* when no output is stored under the key it would have now.
Because keys only depend on the data and settings, a run gives the same outputs whether its
upstream outputs were stored by earlier runs (the daily loop) or computed now (a fresh
workspace).

The model steps are dated on the refit day (:func:`refit_day`), the others on the as-of date:
between refits a daily run recomputes the forecast update, allocation and transfers only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from stocktailor.config import PipelineConfig, Settings
from stocktailor.engine import Engine, LocalEngine
from stocktailor.pipeline.steps import (
    LANE_PREMIUM_FILE,
    STEPS,
    Context,
    Step,
    forecast_scan,
    read_output,
    release_memos,
)
from stocktailor.pipeline.store import OutputStore, StoredOutput
from stocktailor.plan import PlanResult, ProgressFactory, headline_kpis
from stocktailor.workspace import Workspace, WorkspaceError

__all__ = ["Pipeline", "RunReport", "StepState", "plan_result", "refit_day"]

logger = logging.getLogger(__name__)


def refit_day(day: dt.date, config: PipelineConfig, first_day: dt.date | None = None) -> dt.date:
    """The refit day of ``day``: the latest day on or before it on the refit schedule.

    Refit days are ``config.refit_epoch + k * config.refit_every_days``. When that day is
    before ``first_day`` (the first day the data has both sales and a stock count) there is
    nothing to fit on then, and ``day`` itself is the refit day.
    """
    offset = (day - config.refit_epoch).days % config.refit_every_days
    anchor = day - dt.timedelta(days=offset)
    if first_day is not None and anchor < first_day:
        return day
    return anchor


@contextlib.contextmanager
def _quiet(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    del description, total
    yield lambda n: None


@dataclass
class StepState:
    """A step of one run.

    Attributes
    ----------
    action
        Before a run: ``stored`` or ``stale``; after it: ``reused`` or ``computed``.
    output
        The stored output (None for a stale step before the run).
    seconds
        Time to compute it in this run, seconds (0 when reused).
    """

    step: str
    as_of: dt.date
    key: str
    action: str
    output: StoredOutput | None = None
    seconds: float = 0.0


@dataclass
class RunReport:
    """The steps of a run and where their outputs are."""

    day: dt.date
    refit_day: dt.date
    states: list[StepState] = field(default_factory=list)
    seconds: float = 0.0

    def output(self, step: str) -> StoredOutput:
        """The stored output of ``step`` (which must be part of the run)."""
        for s in self.states:
            if s.step == step and s.output is not None:
                return s.output
        msg = f"step {step!r} is not part of this run"
        raise KeyError(msg)

    def frame(self) -> pl.DataFrame:
        """One row per step: ``step, as_of, action, seconds, rows``."""
        return pl.DataFrame(
            {
                "step": [s.step for s in self.states],
                "as_of": [s.as_of for s in self.states],
                "action": [s.action for s in self.states],
                "seconds": [round(s.seconds, 1) for s in self.states],
                "rows": [
                    int((s.output.meta if s.output else {}).get("rows", 0)) for s in self.states
                ],
            },
            schema={
                "step": pl.String,
                "as_of": pl.Date,
                "action": pl.String,
                "seconds": pl.Float64,
                "rows": pl.Int64,
            },
        )


def _closure(targets: Sequence[str] | None) -> list[Step]:
    wanted = set(targets or STEPS)
    unknown = sorted(wanted - set(STEPS))
    if unknown:
        msg = f"unknown step {unknown[0]!r}; the steps are {', '.join(STEPS)}"
        raise KeyError(msg)
    todo = list(wanted)
    while todo:
        for need in STEPS[todo.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                todo.append(need)
    return [s for s in STEPS.values() if s.name in wanted]


def _settings_part(dump: dict[str, Any], name: str) -> Any:
    node: Any = dump
    for part in name.split("."):
        node = node[part]
    return node


class Pipeline:
    """Plan runs over a workspace, reusing stored step outputs.

    Parameters
    ----------
    ws
        The workspace (ingested).
    settings
        All settings.
    engine
        Where partitioned work runs (default in-process).
    progress_factory
        Makes a progress callback per long step (the CLI passes Rich bars or plain lines).
    lane_premiums
        ``from_id, to_id, premium`` (+ ``rejections, last_rejected``) of lanes planners keep
        rejecting (:func:`stocktailor.workflow.lanes.premiums_for_run`): the plan step adds
        the premiums to those lanes' fixed costs, and the rows are part of its key.
    """

    def __init__(
        self,
        ws: Workspace,
        settings: Settings,
        *,
        engine: Engine | None = None,
        progress_factory: ProgressFactory | None = None,
        lane_premiums: pl.DataFrame | None = None,
    ) -> None:
        self.ws = ws
        self.settings = settings
        self.engine: Engine = engine or LocalEngine()
        self.progress: ProgressFactory = progress_factory or _quiet
        self.lane_premiums = lane_premiums
        self.store = OutputStore(ws.path)

    # -- dates ------------------------------------------------------------------------------

    def _sales_range(self) -> tuple[dt.date | None, dt.date | None]:
        parts = self.ws.parts("sales")
        lows = [p.min_date for p in parts if p.min_date is not None]
        highs = [p.max_date for p in parts if p.max_date is not None]
        return (min(lows) if lows else None, max(highs) if highs else None)

    def latest_day(self) -> dt.date:
        """The latest sales date (the default as-of date)."""
        last = self._sales_range()[1]
        if last is None:
            msg = "sales: no rows, so --as-of has no default; pass --as-of YYYY-MM-DD"
            raise WorkspaceError(msg)
        return last

    def _first_fit_day(self) -> dt.date | None:
        """The first day with both sales and a stock count on or before it.

        A fit before the first stock count knows no position, so it forecasts no pair: a
        retailer sending one snapshot on a Friday would get an empty forecast from a Monday
        refit. Only the data decides this day, so runs stay reproducible.
        """
        first_sale = self._sales_range()[0]
        counts = [p.min_date for p in self.ws.parts("inventory") if p.min_date is not None]
        if first_sale is None or not counts:
            return first_sale
        return max(first_sale, min(counts))

    def refit_day(self, day: dt.date) -> dt.date:
        """The refit day of ``day`` for this workspace (see :func:`refit_day`)."""
        return refit_day(day, self.settings.pipeline, self._first_fit_day())

    # -- keys -------------------------------------------------------------------------------

    def _key(
        self, step: Step, as_of: dt.date, inputs: dict[str, str], fingerprints: dict[dt.date, str]
    ) -> str:
        from stocktailor import __version__

        if as_of not in fingerprints:
            fingerprints[as_of] = self.ws.fingerprint_upto(as_of)
        dump = self.settings.model_dump(mode="json")
        payload = {
            "step": step.name,
            "revision": step.revision,
            "version": __version__,
            "as_of": as_of.isoformat(),
            "data": fingerprints[as_of],
            "settings": {name: _settings_part(dump, name) for name in step.sections},
            "inputs": inputs,
        }
        premiums = self.lane_premiums
        if step.name == "plan" and premiums is not None and premiums.height:
            # only a run with premiums gets a different key: stored plans without stay valid
            payload["lane_premiums"] = premiums.sort("from_id", "to_id").rows()
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def plan(self, day: dt.date, targets: Sequence[str] | None = None) -> list[StepState]:
        """The steps a run for ``day`` needs, each ``stored`` or ``stale``."""
        anchor = self.refit_day(day)
        fingerprints: dict[dt.date, str] = {}
        keys: dict[str, str] = {}
        states: list[StepState] = []
        for step in _closure(targets):
            as_of = anchor if step.on_refit_day else day
            inputs = {n: keys[n] for n in step.needs}
            keys[step.name] = key = self._key(step, as_of, inputs, fingerprints)
            stored = self.store.get(step.name, as_of, key)
            states.append(StepState(step.name, as_of, key, "stored" if stored else "stale", stored))
        return states

    # -- running ----------------------------------------------------------------------------

    def run(self, day: dt.date | None = None, targets: Sequence[str] | None = None) -> RunReport:
        """Run every stale step needed for ``targets`` (default all) as of ``day``.

        ``day`` defaults to the latest sales date. Holds the workspace lock, so an append
        waits for the run (and the run for an append).
        """
        start = time.perf_counter()
        day = day or self.latest_day()
        with self.ws.lock():
            self.store.sweep()
            states = self.plan(day, targets)
            ctx = Context(
                self.ws,
                self.settings,
                self.engine,
                self.progress,
                day,
                self.refit_day(day),
                lane_premiums=self.lane_premiums,
            )
            outputs: dict[str, StoredOutput] = {}
            for state in states:
                if state.output is not None:
                    state.action = "reused"
                    outputs[state.step] = state.output
                    continue
                outputs[state.step] = self._compute(ctx, STEPS[state.step], state, outputs)
            ctx.release()
            protect = {o.path for o in outputs.values()}
            self.store.prune(self.settings.pipeline.keep_outputs, protect)
        report = RunReport(day, ctx.refit_day, states, time.perf_counter() - start)
        logger.info("run %s (refit day %s) in %.1f s", day, ctx.refit_day, report.seconds)
        return report

    def _compute(
        self, ctx: Context, step: Step, state: StepState, outputs: dict[str, StoredOutput]
    ) -> StoredOutput:
        t0 = time.perf_counter()
        upstream = {n: outputs[n] for n in step.needs}
        with self.store.put(step.name, state.as_of, state.key) as (folder, meta):
            meta["inputs"] = {n: o.key for n, o in upstream.items()}
            try:
                step.compute(ctx, upstream, folder, meta)
            finally:
                # the step's memos hold its tables and their copies; later steps rebuild
                # what they need
                release_memos()
            meta["seconds"] = round(time.perf_counter() - t0, 3)
        stored = self.store.get(step.name, state.as_of, state.key)
        assert stored is not None
        state.action, state.output = "computed", stored
        state.seconds = time.perf_counter() - t0
        logger.info("%s (%s) computed in %.1f s", step.name, state.as_of, state.seconds)
        return stored


def plan_result(ws: Workspace, report: RunReport, settings: Settings) -> PlanResult:
    """The run as a :class:`~stocktailor.plan.PlanResult` (for publishing to the workflow).

    The forecast carried is the rows of the (store, SKU) pairs on an allocation or transfer
    line (what the review pages show), not the whole network's.
    """
    clusters = read_output(report.output("clusters"), "labels.parquet")
    plan = report.output("plan")
    transfers = read_output(plan, "transfers.parquet")
    allocation = read_output(plan, "allocation.parquet")
    pairs = pl.concat(
        [
            transfers.select(pl.col("from_id").alias("store_id"), "sku"),
            transfers.select(pl.col("to_id").alias("store_id"), "sku"),
            allocation.select(pl.col("to_id").alias("store_id"), "sku"),
        ]
    ).unique()
    scan = forecast_scan(report.output("forecast"))
    forecast = scan.join(pairs.lazy(), on=["store_id", "sku"], how="semi").collect()
    total = float(scan.select(pl.col("mean").sum()).collect().item() or 0.0)
    stores = ws.read("stores")
    assert stores is not None
    checked = report.output("demand").path / "validation.parquet"
    validation = pl.read_parquet(checked) if checked.exists() else pl.DataFrame()
    kpis = headline_kpis(
        allocation,
        transfers,
        {k: float(v) for k, v in plan.meta.get("kpis", {}).items()},
        forecast_units=total,
        stores=stores.filter(pl.col("kind") == "store").height,
        clusters=clusters["cluster_id"].n_unique(),
    )
    return PlanResult(
        as_of=report.day,
        clusters=clusters,
        forecast=forecast,
        allocation=allocation,
        transfers=transfers,
        kpis=kpis,
        settings=settings.model_dump(mode="json") | _premium_record(plan),
        data_fingerprint=ws.fingerprint(),
        recommendations=read_output(plan, "recommendations.parquet"),
        validation=validation,
    )


def _premium_record(plan: StoredOutput) -> dict[str, Any]:
    """The lane premiums the plan step used, for the published run's config (empty without)."""
    from stocktailor.workflow.lanes import RUN_CONFIG_KEY

    file = plan.file(LANE_PREMIUM_FILE)
    if not file.exists():
        return {}
    rows = pl.read_parquet(file)
    rows = rows.with_columns(pl.col(pl.Datetime, pl.Date).cast(pl.String))
    return {RUN_CONFIG_KEY: rows.to_dicts()}
