"""The policy registry: who decides what moves where during a simulated season, by name.

A policy is any object with ``decide(view: PolicyView) -> Decisions``
(:class:`~stocktailor.simulate.decisions.Policy`). Built-ins:

``none``
    The retailer without the product: the warehouse replenishes stores by weeks of cover, no
    store-to-store moves (:mod:`.baselines`).
``rule``
    A planner's weeks-of-cover rule with store-to-store moves (:mod:`.baselines`).
``hold``
    Moves nothing, the warehouse's stock included (:mod:`.baselines`).
``stocktailor``
    The product: clusters, demand model, allocation and transfer optimiser
    (:mod:`.stocktailor_policy`).
``same-optimiser-true-demand``
    The same optimiser fed the true demand rates (:mod:`.true_demand`); ``oracle`` is an
    alias of it.
``bound``
    The season's LP with the demand draws known (:mod:`.bound`): its optimum is an upper bound
    on every policy's profit; the run replays the LP's plan.

Policies are built per run by :func:`make_policy` (a fresh object per seed, so learned state
never leaks between runs).
"""

from __future__ import annotations

from collections.abc import Callable

from stocktailor.config import Settings
from stocktailor.simulate._types import SeasonNetwork
from stocktailor.simulate.baselines import HoldPolicy, NonePolicy, RulePolicy
from stocktailor.simulate.bound import BoundPolicy
from stocktailor.simulate.decisions import Policy
from stocktailor.simulate.stocktailor_policy import StocktailorPolicy
from stocktailor.simulate.true_demand import SameOptimiserTrueDemandPolicy

__all__ = [
    "POLICIES",
    "POLICY_ALIASES",
    "canonical_policy",
    "make_policy",
    "register_policy",
]

PolicyFactory = Callable[[SeasonNetwork, Settings], Policy]
POLICIES: dict[str, PolicyFactory] = {}
POLICY_ALIASES: dict[str, str] = {"oracle": "same-optimiser-true-demand"}


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Make ``factory(network, settings)`` available as policy ``name``."""
    POLICIES[name] = factory


def canonical_policy(name: str) -> str:
    """The registered name of ``name`` (an alias such as ``oracle`` maps to its policy)."""
    return POLICY_ALIASES.get(name, name)


def make_policy(name: str, network: SeasonNetwork, settings: Settings) -> Policy:
    """A fresh policy object for one run."""
    try:
        factory = POLICIES[canonical_policy(name)]
    except KeyError:
        msg = f"unknown policy {name!r}; expected one of {sorted(POLICIES)}"
        raise ValueError(msg) from None
    return factory(network, settings)


register_policy("none", lambda network, settings: NonePolicy(settings))
register_policy("hold", lambda network, settings: HoldPolicy())
register_policy("rule", lambda network, settings: RulePolicy(settings))
register_policy("stocktailor", lambda network, settings: StocktailorPolicy(settings))
register_policy(
    "same-optimiser-true-demand",
    lambda network, settings: SameOptimiserTrueDemandPolicy(network, settings),
)
register_policy("bound", lambda network, settings: BoundPolicy(network, settings))
