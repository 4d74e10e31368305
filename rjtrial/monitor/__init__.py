"""Interim monitoring of a trial: a group-sequential design and its looks.

* :func:`design` -- boundaries for a planned number of looks from an alpha-spending function
  (O'Brien–Fleming, Pocock, Hwang–Shih–DeCani, Kim–DeMets), with an optional futility
  boundary, the maximum and expected numbers of events (:class:`SequentialDesign`);
* :func:`look` -- one interim analysis: the information fraction from the events observed, the
  log-rank statistic, the Lan–DeMets boundary recomputed at that fraction, the decision,
  conditional power and the repeated confidence interval (:class:`InterimLook`);
  :func:`boundaries_at` gives the boundaries alone, for looks at any numbers of events.

Statistics only: recording a look in the registry's audit log is the registry's business
(:meth:`rjtrial.registry.Registry.record_interim_look`; ``rjtrial monitor look`` does both).
Every boundary, probability and event count agrees with R rpact to 1e-8 or better
(``tests/validation/test_rpact_group_sequential.py``).
"""

from rjtrial.monitor.design import SequentialDesign, design
from rjtrial.monitor.look import InterimLook, boundaries_at, look
from rjtrial.monitor.spending import SpendingFunction, spending_function

__all__ = [
    "InterimLook",
    "SequentialDesign",
    "SpendingFunction",
    "boundaries_at",
    "design",
    "look",
    "spending_function",
]
