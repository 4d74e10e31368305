"""Allocation engines, the allocation schedule, and design metrics.

``engines`` holds the methods (simple, permuted blocks, biased coin, minimisation);
``schedule`` fixes a trial's allocations from one seed; ``metrics`` measures a
design's predictability and imbalance.
"""

from rjtrial.randomise.engines import (
    as_generator,
    biased_coin,
    biased_coin_probabilities,
    choose,
    minimisation_probabilities,
    minimise,
    permuted_blocks,
    simple,
)
from rjtrial.randomise.schedule import Schedule, allocate_cohort, fixed_sequence, make_schedule, new_seed

__all__ = [
    "Schedule",
    "allocate_cohort",
    "as_generator",
    "biased_coin",
    "biased_coin_probabilities",
    "choose",
    "fixed_sequence",
    "make_schedule",
    "minimisation_probabilities",
    "minimise",
    "new_seed",
    "permuted_blocks",
    "simple",
]
