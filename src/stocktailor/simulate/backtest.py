"""The backtest: scenarios x seeds x policies through the simulator, KPIs and the report.

Each (seed, policy) pair is one partition for :meth:`stocktailor.engine.Engine.map`; a worker
generates the seed's network (cached, so the policies of one seed share it) and runs one
policy. Every policy of a seed meets the same customers (common random numbers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from stocktailor.config import Settings
from stocktailor.simulate._types import SeasonNetwork, SimResult
from stocktailor.simulate.kpis import KpiTables, kpis
from stocktailor.simulate.policies import POLICIES, canonical_policy, make_policy
from stocktailor.simulate.season import simulate_season
from stocktailor.simulate.space import build_space

__all__ = ["BacktestResult", "backtest", "run_partition"]

logger = logging.getLogger(__name__)

NetworkFactory = Callable[[int], SeasonNetwork]

_CACHE: dict[tuple[Any, ...], Any] = {}


@dataclass
class BacktestResult:
    """Outputs of :func:`backtest`.

    Attributes
    ----------
    scenario, seeds, policies
        What ran.
    results
        One :class:`~stocktailor.simulate.SimResult` per (seed, policy), seed-major.
    kpis
        KPI frames (see :class:`~stocktailor.simulate.kpis.KpiTables`).
    segments
        ``store_id, segment`` of the truth (first seed), used as store clusters in the KPIs.
    report_path, kpis_path
        The HTML report and the CSV of every KPI (None when no ``out_dir``).
    seconds
        Wall time, s.
    """

    scenario: str
    seeds: tuple[int, ...]
    policies: tuple[str, ...]
    results: list[SimResult]
    kpis: KpiTables
    segments: pl.DataFrame | None
    report_path: Path | None = None
    kpis_path: Path | None = None
    seconds: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)

    def kpi_table(self, names: Sequence[str] | None = None) -> pl.DataFrame:
        """Mean KPIs per policy (rows) for the headline ``names``."""
        names = list(
            names
            or (
                "profit",
                "profit_uplift_vs_rule",
                "bound_profit",
                "bound_uplift_share",
                "profit_uplift",
                "revenue_full_price",
                "full_price_sell_through",
                "lost_units",
                "salvaged_units",
                "transfer_units",
                "transfer_cost",
            )
        )
        s = self.kpis.summary.filter(pl.col("kpi").is_in(names))
        return s.pivot(on="kpi", index="policy", values="mean").select(
            "policy", *[n for n in names if n in s["kpi"].unique().to_list()]
        )


def _network(
    scenario: str | NetworkFactory,
    seed: int,
    n_stores: int | None,
    n_sku_sizes: int | None,
) -> SeasonNetwork:
    if callable(scenario):
        return scenario(seed)
    key = (scenario, seed, n_stores, n_sku_sizes)
    if key not in _CACHE:
        from stocktailor.synth import generate

        _CACHE.clear()  # keep one network per process
        _CACHE[key] = generate(scenario, seed, n_stores=n_stores, n_sku_sizes=n_sku_sizes)
    net: SeasonNetwork = _CACHE[key]
    return net


def run_partition(
    item: tuple[int, str],
    *,
    scenario: str | NetworkFactory,
    settings: Settings,
    n_stores: int | None = None,
    n_sku_sizes: int | None = None,
    measure: Sequence[str] = (),
) -> SimResult:
    """Run one (seed, policy) partition (a top-level function for :class:`Engine`)."""
    seed, policy = item
    t0 = time.perf_counter()
    net = _network(scenario, seed, n_stores, n_sku_sizes)
    gen_s = time.perf_counter() - t0
    space_key = ("space", id(net))
    if space_key not in _CACHE:
        _CACHE[space_key] = build_space(net, settings)
    pol = make_policy(policy, net, settings)
    if policy in measure:
        from stocktailor.simulate.measurement import SalesRecorder

        pol = SalesRecorder(pol)
    cpu0 = time.process_time()
    res = simulate_season(
        net,
        pol,
        settings,
        seed=seed,
        policy_name=policy,
        space=_CACHE[space_key],
    )
    if policy in measure:
        from stocktailor.simulate.replay import true_uplift_by_decision

        res.info["uplift_truth"] = true_uplift_by_decision(
            net, settings, res, space=_CACHE[space_key]
        )
        held = getattr(pol, "held_back", None)
        res.info["held_back"] = held() if callable(held) else None
        from stocktailor.simulate.measurement import measure_season

        res.info.update(measure_season(net, settings, res, pol))
    seg = getattr(net.truth, "segments", None)
    res.info["segments"] = (
        seg.select("store_id", "segment") if isinstance(seg, pl.DataFrame) else None
    )
    res.info["generate_seconds"] = gen_s
    res.info["cpu_seconds"] = time.process_time() - cpu0
    res.info["timings"] = dict(getattr(pol, "timings_", {}))
    res.info["cpu_timings"] = dict(getattr(pol, "cpu_timings_", {}))
    bound = getattr(pol, "bound_", None)
    if bound is not None:
        res.info["upper_bound"] = float(bound.upper_bound)
        res.info["bound_seconds"] = float(bound.seconds)
    stats = getattr(pol, "stats_", None)
    if stats:
        res.info["candidates"] = [dict(x) for x in stats]
    logger.info(
        "backtest seed %s policy %s: %.1f s (decisions %.1f s)",
        seed,
        policy,
        res.seconds,
        res.decision_seconds,
    )
    return res


def backtest(
    scenario: str | NetworkFactory,
    seeds: Sequence[int],
    policies: Sequence[str],
    settings: Settings,
    out_dir: Path | str | None,
    *,
    n_stores: int | None = None,
    n_sku_sizes: int | None = None,
    engine: Any | None = None,
    progress: Callable[[int], None] | None = None,
    measure: Sequence[str] = (),
) -> BacktestResult:
    """Simulate ``policies`` on ``scenario`` for every seed and report the KPIs.

    Parameters
    ----------
    scenario
        A generator scenario name (``default``, ``seed-stories``, ``scale``) or a function
        ``seed -> network``.
    seeds
        Seeds of the networks and of the demand draws.
    policies
        Policy names (see :data:`~stocktailor.simulate.policies.POLICIES`; ``oracle`` is an
        alias of ``same-optimiser-true-demand``); ``none``, ``rule`` and ``bound`` are needed
        for the uplift KPIs and the share of the bound.
    settings
        Run settings.
    out_dir
        Folder for ``report.html``, ``kpis.csv``, ``kpi_summary.csv`` and ``moves.csv`` (None:
        no files).
    n_stores, n_sku_sizes
        Size of the ``scale`` scenario.
    engine
        An :class:`~stocktailor.engine.Engine` (default in-process).
    progress
        Called with 1 per finished (seed, policy) run.
    measure
        Policies to measure (e.g. ``["stocktailor"]``): each of their runs is replayed without
        each decision day's executed transfer lines (common random numbers), and the lines'
        estimated and true value per decision day go to ``uplift_truth.csv`` (``decision_date,
        lines, units, estimated, true, seed, policy``); the lines held back by
        ``simulation.holdback_share`` go to ``held_back.csv``. The runs are also measured as a
        retailer would (:mod:`stocktailor.simulate.measurement`): ``uplift_measurement.csv``
        (``decision_date, lines, units, estimated, measured, measured_low, measured_high,
        true, seed, policy``), ``uplift_by_category.csv`` (``decision_date, category, lines,
        units, estimated, measured, measured_low, measured_high, seed, policy``: each day's
        lines of a category measured together, what calibration learns from) and, with a
        holdback, ``holdback_estimate.csv``.
    """
    from stocktailor.engine import LocalEngine

    t0 = time.perf_counter()
    policies = [canonical_policy(p) for p in policies]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        msg = f"unknown policy {unknown[0]!r}; expected one of {sorted(POLICIES)}"
        raise ValueError(msg)
    if not seeds or not policies:
        msg = "backtest needs at least one seed and one policy"
        raise ValueError(msg)
    items = [(int(s), p) for s in seeds for p in policies]
    eng = engine if engine is not None else LocalEngine()
    results: list[SimResult] = eng.map(
        run_partition,
        items,
        progress=progress,
        scenario=scenario,
        settings=settings,
        n_stores=n_stores,
        n_sku_sizes=n_sku_sizes,
        measure=tuple(canonical_policy(p) for p in measure),
    )
    segments = results[0].info.get("segments")
    tables = kpis(results, segments=segments)
    name = scenario if isinstance(scenario, str) else getattr(scenario, "__name__", "custom")
    out = BacktestResult(
        scenario=name,
        seeds=tuple(int(s) for s in seeds),
        policies=tuple(policies),
        results=results,
        kpis=tables,
        segments=segments,
    )
    if out_dir is not None:
        _write_outputs(out, Path(out_dir), t0)
    out.seconds = time.perf_counter() - t0
    return out


def _write_outputs(out: BacktestResult, d: Path, t0: float) -> None:
    """``kpis.csv``, ``kpi_summary.csv``, ``moves.csv``, the measurement files and the report."""
    from stocktailor.report import write_backtest_report

    d.mkdir(parents=True, exist_ok=True)
    out.kpis_path = d / "kpis.csv"
    out.kpis.long.write_csv(out.kpis_path)
    out.kpis.summary.write_csv(d / "kpi_summary.csv")
    moves = pl.concat(
        [
            r.moves.with_columns(pl.lit(r.policy).alias("policy"), pl.lit(r.seed).alias("seed"))
            for r in out.results
        ],
        how="vertical",
    )
    moves.write_csv(d / "moves.csv")
    out.files = {
        "kpis": out.kpis_path,
        "summary": d / "kpi_summary.csv",
        "moves": d / "moves.csv",
    }
    out.files.update(_write_measurement(out.results, d))
    out.seconds = time.perf_counter() - t0
    out.report_path = write_backtest_report(out, d / "report.html")
    out.files["report"] = out.report_path


def _write_measurement(results: Sequence[SimResult], d: Path) -> dict[str, Path]:
    """``uplift_truth.csv`` and ``held_back.csv`` of the measured runs (none: no files)."""
    files: dict[str, Path] = {}
    for key, name in (
        ("uplift_truth", "uplift_truth.csv"),
        ("held_back", "held_back.csv"),
        ("uplift_measurement", "uplift_measurement.csv"),
        ("uplift_by_category", "uplift_by_category.csv"),
        ("holdback_estimate", "holdback_estimate.csv"),
    ):
        parts = [
            r.info[key].with_columns(pl.lit(r.seed).alias("seed"), pl.lit(r.policy).alias("policy"))
            for r in results
            if isinstance(r.info.get(key), pl.DataFrame)
        ]
        if parts:
            files[key] = d / name
            pl.concat(parts, how="diagonal_relaxed").write_csv(files[key])
    return files
