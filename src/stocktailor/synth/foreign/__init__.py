"""Foreign scenarios: networks built with other functional forms than the product's model.

Every accuracy figure measured on the fashion scenarios (``seed-stories``, ``default``,
``scale``) is measured on data whose functional forms the demand model mirrors. The foreign
scenarios are built from how retail behaves instead: a share-of-wallet demand split, hinge
temperature responses, a linear price response, shopping-basket noise with store-day shocks,
additive or multiplicative time effects, lifecycles that rise, fade or stay flat, a social
trend with its own lead, returns, one inventory snapshot, no clearance. The product is never
tuned on them: settings are fixed on seeds 0-4, figures are reported on seeds 10-14.

``generate("foreign-base", seed)`` (or any name of :data:`FOREIGN_SCENARIOS`) returns the same
:class:`~stocktailor.synth.SyntheticNetwork` interface as the fashion scenarios, with a
:class:`ForeignTruth`; :func:`generate_foreign` builds one from a :class:`ForeignSpec`.
See ``docs/synthetic-data.md``.
"""

from __future__ import annotations

from stocktailor.synth.foreign._assemble import generate_foreign
from stocktailor.synth.foreign._spec import FOREIGN_SCENARIOS, ForeignSpec, foreign_spec
from stocktailor.synth.foreign._truth import ForeignTruth
from stocktailor.synth.foreign._world import SEGMENT_MIX, SEGMENTS, mix_distance

__all__ = [
    "FOREIGN_SCENARIOS",
    "SEGMENTS",
    "SEGMENT_MIX",
    "ForeignSpec",
    "ForeignTruth",
    "foreign_spec",
    "generate_foreign",
    "mix_distance",
]
