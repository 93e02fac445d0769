"""Settings: economics, constraints, season defaults and run options.

Settings are built once at the edge (the CLI or the app factory) with :func:`load_settings`
and passed into the core. Values come from, in increasing priority: the defaults below, a TOML
file (``--config FILE.toml``), and ``STOCKTAILOR_*`` environment variables where a double
underscore separates the section from the field, e.g.
``STOCKTAILOR_ECONOMICS__SALVAGE_FRACTION=0.3`` or
``STOCKTAILOR_CONSTRAINTS__PRESENTATION_MINIMUM=2``.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stocktailor.automation import WorkflowConfig
from stocktailor.measure.settings import MeasureConfig
from stocktailor.posts.settings import PostsConfig
from stocktailor.serve_settings import ServeConfig as ServeConfig
from stocktailor.transfer_settings import TransfersConfig

ENV_PREFIX = "STOCKTAILOR_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EconomicsConfig(_Section):
    """Money (in units of ``currency``) and lane costs."""

    currency: str = Field(
        "USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code money is shown in (VND, EUR...)."
    )
    salvage_fraction: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Salvage value of an unsold unit at season end, as a share of full price "
        "(used when products.salvage_value is missing).",
    )
    lane_cost_per_unit_base: float = Field(
        0.4, ge=0.0, description="Per-unit transfer cost of a derived lane, currency per unit."
    )
    lane_cost_per_unit_per_km: float = Field(
        0.0015, ge=0.0, description="Extra per-unit cost per km of great-circle distance."
    )
    lane_cost_per_shipment_base: float = Field(
        25.0, ge=0.0, description="Fixed cost of one shipment on a derived lane, currency."
    )
    lane_cost_per_shipment_per_km: float = Field(
        0.05, ge=0.0, description="Extra fixed shipment cost per km, currency per km."
    )
    lane_lead_time_base_days: int = Field(
        2, ge=0, description="Lead time of a derived lane at zero distance, days."
    )
    lane_km_per_day: float = Field(
        800.0, gt=0.0, description="Distance a derived lane covers per extra day of lead time."
    )
    holding_cost_per_unit_week: float = Field(
        0.0, ge=0.0, description="Cost of holding one unit for a week, currency (0 = ignored)."
    )


class ConstraintsConfig(_Section):
    """Operational rules every plan obeys."""

    presentation_minimum: int = Field(
        1, ge=0, description="Units of a SKU a store keeps on hand (never shipped out), units."
    )
    keep_core_size_run: bool = Field(
        False, description="Never break a store's run of core sizes of a style when shipping out."
    )
    min_transfer_units: int = Field(2, ge=1, description="Smallest transfer line, units.")
    pack_size: int = Field(1, ge=1, description="Transfer lines are multiples of this, units.")
    max_outbound_lanes_per_store: int = Field(
        3, ge=0, description="Distinct destinations a store ships to in one run."
    )
    max_inbound_lanes_per_store: int = Field(
        3, ge=0, description="Distinct sources a store receives from in one run."
    )
    min_days_before_retransfer: int = Field(
        14, ge=0, description="Units received in the last N days do not move again, days."
    )
    transfer_budget: float | None = Field(
        None, ge=0.0, description="Optional cap on total transfer cost per run, currency."
    )
    respect_capacity: bool = Field(True, description="Never fill a store past capacity_units.")


class SeasonConfig(_Section):
    """Season defaults for products without their own dates."""

    start: dt.date | None = Field(None, description="First selling day; default: first sales date.")
    end: dt.date | None = Field(
        None, description="Last full-price day when products.season_end is missing."
    )
    markdown_calendar: tuple[tuple[int, float], ...] = Field(
        (),
        description="(weeks before season end, price factor) steps the retailer marks down "
        "by, e.g. [[4, 0.7], [2, 0.5]]; empty = no markdowns. The simulator uses it for a "
        "network that declares no calendar of its own.",
    )
    horizon_days: int = Field(
        7,
        ge=0,
        description="Sales may be dated at most this many days after the latest snapshot.",
    )
    horizon_weeks: int = Field(
        13,
        ge=1,
        description="Forecast horizon of products without a season end (a never-ending "
        "assortment: no products.season_end and no [season] end), weeks. Products with a "
        "season end are forecast to it.",
    )


class DemandConfig(_Section):
    """Demand model settings."""

    model: Literal["select", "lightgbm", "baseline"] = Field(
        "select",
        description="select: validate every candidate on the workspace's own history and "
        "choose per category x cluster (stocktailor.demand.DemandForecaster); lightgbm: the "
        "global LightGBM model alone; baseline: statsforecast AutoETS.",
    )
    candidates: tuple[str, ...] = Field(
        ("lgbm", "velocity", "ses", "croston", "tsb", "seasonal_naive", "seasonal", "blend"),
        description="Candidates the selecting forecaster validates (seasonal ones only with a "
        "year plus the holdout of history).",
    )
    validation_origins: int = Field(
        2, ge=1, description="Rolling origins of the holdout (fewer when history is short)."
    )
    max_holdout_weeks: int = Field(
        13, ge=1, description="Longest holdout (a third of the history at most), weeks."
    )
    min_group_units: float = Field(
        300.0,
        ge=0.0,
        description="Holdout units a category x cluster group needs to choose for itself "
        "(else its category's, then the network's choice), units.",
    )
    min_group_pairs: int = Field(
        30, ge=1, description="Store x SKU pairs a group needs to choose for itself."
    )
    bias_prior_units: float = Field(
        300.0,
        ge=0.0,
        description="Prior weight of 'no bias' when the level is calibrated on the holdout, units.",
    )
    dormant_weeks: int = Field(
        8,
        ge=1,
        description="A pair unsold this many weeks is forecast at most its last year's weekly "
        "demand p90 (or mean), and not at all when out of stock all along, unsold a year, weeks.",
    )
    seasonal_history_days: int = Field(
        728,
        ge=14,
        description="Days of history prepared for the candidates (the LightGBM model keeps "
        "history_days), so seasonal candidates see last year, days.",
    )
    validation_max_series: int = Field(
        20_000,
        ge=100,
        description="Store x style series validated at most (a random sample of styles above).",
    )
    keep_candidate_forecasts: bool = Field(
        False,
        description="Also forecast with every candidate (PlanResult.candidate_forecasts; for "
        "benchmarks: costs a fit of each).",
    )
    validation_train_rows: int = Field(
        60_000, ge=1000, description="LightGBM training rows of the holdout refits at most."
    )
    censor_threshold_units: int = Field(
        0, ge=0, description="A day whose opening stock is at most this is censored, units."
    )
    quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)
    history_days: int = Field(364, ge=14, description="Days of history the model trains on, days.")
    num_boost_round: int = Field(100, ge=1)
    learning_rate: float = Field(0.1, gt=0.0)
    random_state: int = 0
    num_leaves: int = Field(31, ge=2, description="LightGBM leaves per tree.")
    min_data_in_leaf: int = Field(50, ge=1, description="LightGBM minimum rows per leaf.")
    max_bin: int = Field(255, ge=2, description="LightGBM histogram bins per feature.")
    num_threads: int = Field(
        1, ge=1, description="LightGBM threads (more than 1 only pays on an idle machine)."
    )
    censor_prior_days: float = Field(
        7.0,
        ge=0.0,
        description="Weight of the cluster prior in a store x SKU censored rate, days.",
    )
    base_prior_weeks: float = Field(
        3.0,
        ge=0.0,
        description="Weight of the cluster level in a series' base level, weeks.",
    )
    color_prior_units: float = Field(
        5.0, ge=0.0, description="Weight of the network colour mix in a store's, units."
    )
    size_prior_strength: float | None = Field(
        None,
        ge=0.0,
        description="Weight of the cluster curve in a store's size curve, units; empty = "
        "empirical Bayes per level and size group. One fit per plan serves the forecast's "
        "size split and the allocation.",
    )
    trend_lead_days: int | None = Field(
        None,
        ge=0,
        description="Days by which trend indices lead sales, days; empty = estimated from the "
        "history (no significant lead: trends unused).",
    )
    train_origins: int = Field(8, ge=1, description="Weekly forecast origins in the training set.")
    max_horizon_weeks: int = Field(11, ge=1, description="Longest training horizon, weeks.")
    max_train_rows: int = Field(
        150_000, ge=1000, description="Training rows kept (random subsample above), rows."
    )
    dispersion_scale: float = Field(
        1.0, gt=0.0, description="Multiplier on the fitted negative-binomial dispersion."
    )
    level_cv: float = Field(
        0.25,
        ge=0.0,
        description="Extra coefficient of variation of a series' level shared by its weeks.",
    )
    lifecycle_offset: bool = Field(
        False, description="Extrapolate each style's recent log-linear trend in the base."
    )
    lifecycle_damping: float = Field(
        0.7, ge=0.0, le=1.0, description="Share of the style's recent slope extrapolated."
    )
    temperature_offset: bool = Field(
        True,
        description="Offset each week by the style's temperature response (pooled across "
        "stores, climate past the forecasts).",
    )
    trend_offset: bool = Field(
        True,
        description="Trend indices enter as a log offset (target week vs base weeks) with a "
        "per-store slope fitted on the training rows.",
    )
    trend_beta_sd: float = Field(
        0.5, gt=0.0, description="Prior sd of the trend slope (pooled, and stores to pooled)."
    )
    trend_beta_prior: float = Field(
        0.0, description="Prior mean of the pooled trend slope (0: no effect unless earned)."
    )
    price_offset: bool = Field(
        True,
        description="Offset each week by -elasticity x log(price factor), the log-log "
        "elasticity estimated from the history's promotions (price-ratio tree features stay).",
    )
    price_elasticity_prior: float = Field(
        0.0,
        ge=0.0,
        description="Prior price elasticity (demand ~ price_factor ** -e); the estimate from "
        "the history's price variation is shrunk toward it (0: no effect unless earned).",
    )
    price_elasticity_prior_sd: float = Field(
        0.75, gt=0.0, description="Prior standard deviation of the pooled price elasticity."
    )
    refit_every_weeks: int = Field(
        4,
        ge=1,
        description="In a backtest, retrain the booster every N weekly plans (update between).",
    )


class ClusteringConfig(_Section):
    """Store clustering settings."""

    n_clusters: int | None = Field(None, ge=2, description="Force k; default chooses k.")
    k_min: int = Field(2, ge=2)
    k_max: int = Field(12, ge=2)
    window_days: int = Field(84, ge=7, description="Rolling window of sales used, days.")
    feature_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Weight per feature group (style_mix, category_mix, attribute_mix, tag_mix, "
        "velocity, price, size, weather, demographics, format, climate); missing groups take "
        "the defaults of stocktailor.clustering.DEFAULT_GROUP_WEIGHTS (buying behaviour only: "
        "style_mix 1, category_mix and attribute_mix 0.5, the rest 0); 0 switches a group off, "
        "e.g. {demographics = 0.25, format = 0.25} lets store attributes count.",
    )
    selection: Literal["mix_difference", "replication", "silhouette", "stability"] = Field(
        "mix_difference",
        description="How the clusters are found: stores grouped until every two groups' mixes "
        "differ by at least min_mix_difference (mix_difference, cross-fitted on the two halves "
        "of the window), or k-means with k chosen by half-window replication, mean silhouette "
        "or bootstrap stability.",
    )
    min_mix_difference: float = Field(
        0.2,
        gt=0.0,
        description="Two groups of stores whose style and sales mixes differ by at least this "
        "much stay apart (root-mean-square log-ratio per unit sold: 0.2 = the typical unit "
        "sells about 20% more or less; selection=mix_difference).",
    )
    noise_margin: float = Field(
        2.0,
        ge=0.0,
        description="Two groups of stores stay apart only when their mix difference exceeds "
        "min_mix_difference by this many standard errors (from how the two halves of the "
        "window disagree store by store).",
    )
    singleton_factor: float = Field(
        1.0,
        ge=1.0,
        description="A single store is its own cluster only when it is also this many times "
        "min_mix_difference from every group.",
    )
    climate_iterations: int = Field(
        3,
        ge=0,
        description="Times the style mix's climate slopes are re-estimated within the "
        "clusters found and the stores clustered again (0: slopes across all stores).",
    )
    replication_threshold: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="Minimum Jaccard overlap of every cluster with its match in each "
        "half-window's clustering (selection=replication).",
    )
    split_attributes: list[str] = Field(
        default_factory=list,
        description="Store attributes (e.g. format) whose levels are split off a cluster when "
        "the stores' behaviour differs beyond chance and by at least min_mix_difference "
        "(automatic clusters only); empty: store attributes are not trusted.",
    )
    split_alpha: float = Field(
        0.1, gt=0.0, le=1.0, description="Permutation-test p-value for an attribute split."
    )
    n_bootstrap: int = Field(10, ge=2, description="Bootstrap resamples per k (stability).")
    reliability_weighting: bool = Field(
        True,
        description="Weight each z-scored behaviour feature by its split-half reliability in "
        "the window (mix groups are cross-fitted instead).",
    )
    move_margin: float = Field(
        0.25,
        ge=0.0,
        description="Re-clustering keeps a store in its old cluster unless the new one is closer "
        "by this relative margin (hysteresis against flip-flopping).",
    )
    change_factor: float | None = Field(
        1.5,
        gt=0.0,
        description="Re-clustering moves a store only if its own behaviour changed by more than "
        "this many times the network's median change (its cluster's drift removed); "
        "empty = no such test.",
    )
    pooling_prior_days: float | None = Field(
        None,
        ge=0.0,
        description="Strength of the cluster prior when pooling thin store x SKU rates, in "
        "in-stock days; None tunes it on split-half likelihood.",
    )
    random_state: int = 0


class SolverConfig(_Section):
    """Optimiser settings."""

    fixed_cost_method: Literal["auto", "heuristic", "mip"] = "auto"
    mip_time_limit_s: float = Field(30.0, gt=0.0)
    candidate_partners: int | None = Field(
        None, ge=1, description="Keep the N nearest partners per store (default: all that can pay)."
    )
    holdback_share: float = Field(
        0.2, ge=0.0, le=1.0, description="Share of warehouse stock held back at season start."
    )
    broken_size_run_penalty: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Demand lost on other sizes when a core size is missing (0 = not modelled).",
    )
    mip_warm_start: bool = Field(
        True, description="Start the HiGHS MIP from the lane-greedy heuristic's solution."
    )
    mip_max_stores: int = Field(
        60, ge=0, description="fixed_cost_method=auto runs the HiGHS MIP up to this many stores."
    )
    mip_max_variables: int = Field(
        20_000,
        ge=0,
        description="fixed_cost_method=auto skips the MIP when it would have more variables.",
    )
    max_lane_rounds: int = Field(
        8, ge=0, description="Lane-closing rounds (close unpaid lanes, re-solve) of the heuristic."
    )
    resolve_in_process: bool = Field(
        True,
        description="Kept for old settings files; no effect. The lane-closing re-solves on the "
        "lane-valuation sample always run in the calling process from cached value curves, and "
        "the final pass (every SKU on the chosen lanes, minimum-quantity step, line P&L) always "
        "runs through the engine.",
    )
    lp_bound: bool = Field(
        True,
        description="Compute the LP-relaxation bound of the fixed-charge model (one more "
        "min-cost flow per SKU).",
    )
    large_network_stores: int = Field(
        300,
        ge=1,
        description="Above this many stores and with candidate_partners unset, each store keeps "
        "only its large_network_partners cheapest partners (lanes either way).",
    )
    large_network_partners: int = Field(
        20, ge=1, description="Partners per store on large networks (see large_network_stores)."
    )
    lane_sample_styles: int | None = Field(
        1500,
        ge=1,
        description="With fixed lane costs and more styles than this, lanes are valued on an "
        "evenly spaced sample of this many styles before every SKU is solved on the chosen "
        "lanes (None = value lanes on all styles; then the LP bound is available).",
    )
    holdback_cv_reference: float = Field(
        0.5,
        gt=0.0,
        description="Forecast CV at which the allocation holds back exactly holdback_share.",
    )
    max_holdback_share: float = Field(
        0.6, ge=0.0, le=1.0, description="Largest share of warehouse stock held back."
    )
    joint_warehouse: bool = Field(
        True,
        description="Plan warehouse stock and store stock in one optimisation (the warehouse "
        "is a source of the transfer network, its lanes outside the per-store lane limits and "
        "the transfer budget); False plans store-to-store moves only.",
    )


class SimulationConfig(_Section):
    """Season simulator settings."""

    decision_every_days: int = Field(7, ge=1)
    broken_size_run_effect: float = Field(0.0, ge=0.0, le=1.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    refit_every_weeks: int = Field(
        13,
        ge=1,
        description="The stocktailor policy refits its demand model this often (demand sensing "
        "in between), weeks.",
    )
    weather_forecast_days: int = Field(
        14, ge=0, description="Days of weather forecast a policy sees after its as-of date, days."
    )
    weather_forecast_error_c: float = Field(
        0.6,
        ge=0.0,
        description="Forecast temperature error, standard deviation per sqrt(day of lead), deg C.",
    )
    events_known_days: int = Field(
        28, ge=0, description="Events starting this many days after as-of are already known, days."
    )
    rule_window_days: int = Field(
        21, ge=1, description="The rule policy's sales window for velocity, days."
    )
    rule_target_weeks: float = Field(
        3.0, gt=0.0, description="The rule policy's target weeks of cover, weeks."
    )
    rule_donor_multiple: float = Field(
        1.5,
        ge=1.0,
        description="The rule policy gives from stores above this multiple of the target cover.",
    )
    min_history_days: int = Field(
        21,
        ge=0,
        description="The stocktailor and same-optimiser-true-demand policies decide from this "
        "many days of season sales on (the demand model needs a few weeks), days.",
    )
    oracle_waits_for_history: bool = Field(
        True,
        description="same-optimiser-true-demand (formerly 'oracle') keeps the stocktailor "
        "decision calendar (True) or decides from day 0 (False).",
    )
    oracle_value_weighting: bool = Field(
        True,
        description="same-optimiser-true-demand counts a markdown-day unit of true demand as "
        "the share of a full-price unit's margin over salvage it earns (the optimiser values "
        "sales at full price).",
    )
    update_between_refits: bool = Field(
        False,
        description="The stocktailor policy re-predicts with the last model on every decision "
        "day (True) or reuses the forecast of its last refit (False, faster).",
    )
    sensing: bool = Field(
        True,
        description="Between refits the stocktailor policy scales the remaining forecast by "
        "demand-sensing ratios (in-stock sales since the fit / their forecast, per store x "
        "style, shrunk to the style's network ratio).",
    )
    sensing_prior_units: float = Field(
        20.0,
        ge=0.0,
        description="Credibility prior of the sensing ratios: forecast units that weigh as much "
        "as the prior ratio (1 for a style, the style's ratio for a store), units.",
    )
    sensing_bounds: tuple[float, float] = Field(
        (0.5, 2.0), description="Lowest and highest demand-sensing ratio."
    )
    recluster_on_refit: bool = Field(
        False,
        description="The stocktailor policy refits the store clusters on every demand refit "
        "(True) or only on its first decision (False).",
    )
    predict_partitions: int = Field(
        1,
        ge=1,
        description="Style partitions of the stocktailor policy's demand prediction (more = "
        "less memory, more time).",
    )
    candidate_min_gain: float | None = Field(
        0.0,
        description="The optimiser policies send the optimiser only SKUs where one unit "
        "moved can gain more than this after the cheapest lane cost, currency per unit "
        "(None = all SKUs with movable stock).",
    )
    candidate_max_cells: int | None = Field(
        60_000,
        ge=1,
        description="Work budget of the optimiser policies per decision, stores x SKUs: at most "
        "this / stores SKUs go to the transfer optimiser (and to replenishment after the "
        "first allocation), those reviewed least recently first, then the highest scores "
        "(None = no limit).",
    )
    fixed_cost_method: Literal["auto", "heuristic", "mip"] = Field(
        "heuristic",
        description="solver.fixed_cost_method used by the simulated optimiser policies (the MIP "
        "polish costs up to solver.mip_time_limit_s per decision).",
    )
    holdback_share: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="The simulated stocktailor policy executes each recommended transfer line "
        "only with probability 1 - this share (a random control group for measuring the "
        "executed lines' uplift; 0 executes every line).",
    )
    bound_max_cells: int = Field(
        100_000,
        ge=1,
        description="The bound policy (the season LP with the demand draws known) refuses "
        "networks with more stores x SKUs than this (its LP grows with locations squared).",
    )


class EngineConfig(_Section):
    """Where partitioned work runs."""

    engine: Literal["local", "dask"] = "local"
    scheduler_address: str | None = Field(
        None,
        description="Dask scheduler, e.g. tcp://host:8786 (None with engine=dask: LocalCluster).",
    )
    n_workers: int = Field(2, ge=1, description="Workers of a LocalCluster.")
    threads_per_worker: int = Field(1, ge=1)
    partitions: int = Field(16, ge=1, description="Partitions of partitioned work.")


class PipelineConfig(_Section):
    """The continuous pipeline: refit schedule, daily updates, stored outputs."""

    refit_every_days: int = Field(
        7,
        ge=1,
        description="Clusters, size curves and the demand model are fitted on refit days only: "
        "the latest day on or before the as-of date a whole number of these periods after "
        "refit_epoch (1 = every day), or the as-of date when that day precedes the first stock "
        "count. Between refits demand sensing updates the last refit's forecast. The refit day "
        "depends only on the data and the as-of date, so outputs are the same, days.",
    )
    refit_epoch: dt.date = Field(
        dt.date(2000, 1, 3),
        description="A refit day (2000-01-03 is a Monday: weekly refits fall on Mondays).",
    )
    weather_forecast_days: int = Field(
        14,
        ge=0,
        description="A step dated on a day reads weather up to this many days after it (the "
        "forecasts a daily feed has sent by then), so its output does not depend on forecasts "
        "appended later, days.",
    )
    sensing_prior_units: float = Field(
        200.0,
        ge=0.0,
        description="Credibility prior of the daily update's sensing ratios (in-stock sales since "
        "the refit / their forecast, per store x style, shrunk to the style's network ratio): "
        "forecast units that weigh as much as the prior ratio, units. 200 was chosen on seeds "
        "0-4 of scale 20 x 300 (20 and 60 let one day's sales move the forecast too far).",
    )
    sensing_bounds: tuple[float, float] = Field(
        (0.5, 2.0), description="Lowest and highest sensing ratio of the daily update."
    )
    keep_outputs: int = Field(
        3,
        ge=1,
        description="Stored outputs kept per step: those of the latest N as-of dates, plus the "
        "ones they were computed from.",
    )


class Settings(_Section):
    """All settings of one run."""

    economics: EconomicsConfig = EconomicsConfig()
    constraints: ConstraintsConfig = ConstraintsConfig()
    season: SeasonConfig = SeasonConfig()
    demand: DemandConfig = DemandConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    solver: SolverConfig = SolverConfig()
    simulation: SimulationConfig = SimulationConfig()
    engine: EngineConfig = EngineConfig()
    pipeline: PipelineConfig = PipelineConfig()
    serve: ServeConfig = ServeConfig()
    measure: MeasureConfig = MeasureConfig()
    posts: PostsConfig = PostsConfig()
    transfers: TransfersConfig = TransfersConfig()
    workflow: WorkflowConfig = WorkflowConfig()


class ConfigError(ValueError):
    """A settings file or environment variable is invalid."""


def _set_path(target: dict[str, Any], keys: list[str], value: Any) -> None:
    node = target
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            msg = f"config: {'.'.join(keys)} conflicts with a scalar value at {key}"
            raise ConfigError(msg)
        node = child
    node[keys[-1]] = value


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        value: Any = raw
        # TOML syntax lets an env var carry lists and numbers; a bare word stays a string.
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        _set_path(out, keys, value)
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from defaults, a TOML file and ``STOCKTAILOR_*`` variables.

    Parameters
    ----------
    path
        TOML file with sections named like the fields of :class:`Settings`.
    environ
        Environment to read overrides from (default ``os.environ``).
    overrides
        Nested mapping applied last (used by the CLI for command options).

    Raises
    ------
    ConfigError
        Naming the file or variable and the field that is invalid.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        source = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            msg = f"{p}: config file not found"
            raise ConfigError(msg) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            msg = f"{p}: not valid TOML: {exc}"
            raise ConfigError(msg) from None
    env = _env_overrides(os.environ if environ is None else environ)
    if env:
        source += " + STOCKTAILOR_* environment"
    data = _merge(_merge(data, env), overrides or {})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        msg = f"{source}: setting {where}: {first['msg']}"
        raise ConfigError(msg) from None


def settings_markdown() -> str:
    """Every setting with its default and description, as Markdown (docs/configuration.md)."""
    lines = [
        "# Configuration",
        "",
        "Settings come from, in increasing priority: these defaults, a TOML file passed with",
        "`--config FILE.toml`, and environment variables `STOCKTAILOR_<SECTION>__<FIELD>` (values",
        "in TOML syntax, e.g. `STOCKTAILOR_CONSTRAINTS__PACK_SIZE=6`).",
        "This page is generated from `stocktailor.config` (`settings_markdown()`); a test keeps",
        "it in step.",
        "",
        "```toml",
        "[economics]",
        "salvage_fraction = 0.3",
        "```",
    ]
    for section, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        lines += ["", f"## [{section}]", "", (model.__doc__ or "").strip().splitlines()[0], ""]
        lines += ["| setting | default | meaning |", "|---|---|---|"]
        for name, field in model.model_fields.items():
            default = field.get_default(call_default_factory=True)
            text = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{name}` | `{default!r}` | {text} |")
    return "\n".join(lines) + "\n"
