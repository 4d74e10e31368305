"""R ``bayesmeta`` reference numbers for rjtrial.meta.bayes and the tolerances they are held to.

Two references: the numbers printed in Röver (2020), "Bayesian random-effects meta-analysis
using the bayesmeta R package", J Stat Softw 93(6), doi:10.18637/jss.v093.i06 (its worked
example, Crins et al. 2014), and bayesmeta 3.4 itself, run by
``tests/reference/bayesmeta_reference.R`` at ``delta = 1e-6, epsilon = 1e-9`` and stored in
``tests/reference/bayesmeta_reference.json`` (15 significant digits).

bayesmeta integrates the marginal posterior of tau exactly, but represents the posteriors of
mu, of a new study's effect and of each study's effect as finite normal mixtures (its DIRECT
algorithm) whose accuracy is set by ``delta`` and ``epsilon``; the paper was run at the defaults
(0.01 and 1e-4). The tolerances below follow: the printed precision for tau, bayesmeta's
default accuracy for what the paper printed from mixtures.
"""

from __future__ import annotations

import json
from functools import lru_cache

from _metafor_reference import REFERENCE_DIR

__all__ = ["TOL", "load_bayesmeta"]

TOL = {
    "published_exact": {"abs": 1e-7, "rel": 0},  # paper: tau's summaries, P(tau > 1), its 99% quantile (7 digits)
    "published_mu": {"abs": 5e-4, "rel": 0},  # paper: mu's median, mean, SD, interval (bayesmeta's default mixture)
    "published_prediction": {"abs": 2e-3, "rel": 0},  # paper: a new study's effect (default mixture)
    "published_shrinkage": {"abs": 1e-3, "rel": 0},  # paper: two studies' shrunken effects (default mixture)
    "published_tail": {"abs": 2e-6, "rel": 0},  # paper: P(mu > 0) = 6.2e-5, a tail of the default mixture
    "bayesmeta": {"abs": 1e-6, "rel": 0},  # bayesmeta 3.4 at delta = 1e-6, epsilon = 1e-9: every summary
    # bayesmeta's shortest intervals: the left end found by R's optimize() at its default tolerance
    # (.Machine$double.eps^0.25 = 1.2e-4) on a flat width; their width and coverage are held to 1e-6
    "bayesmeta_shortest": {"abs": 1.2e-4, "rel": 0},
}


def assert_shortest(result, parameter, ours, theirs, alpha=0.05) -> None:
    """A shortest interval against bayesmeta's: no wider (to ``TOL["bayesmeta"]``), bayesmeta's
    holding 1 - alpha under our posterior (to ``TOL["bayesmeta"]``), the ends within
    ``TOL["bayesmeta_shortest"]``."""
    import numpy as np

    tolerance = TOL["bayesmeta"]["abs"]
    (lower, upper), (r_lower, r_upper) = ours, theirs
    assert upper - lower <= r_upper - r_lower + tolerance, (parameter, upper - lower, r_upper - r_lower)
    coverage = float(np.asarray(result.cdf(parameter, r_upper) - result.cdf(parameter, r_lower)).ravel()[0])
    assert abs(coverage - (1 - alpha)) <= tolerance, (parameter, coverage)
    assert (
        abs(lower - r_lower) <= TOL["bayesmeta_shortest"]["abs"]
        and abs(upper - r_upper) <= TOL["bayesmeta_shortest"]["abs"]
    ), (parameter, lower - r_lower, upper - r_upper)


@lru_cache(maxsize=1)
def load_bayesmeta() -> dict:
    """``tests/reference/bayesmeta_reference.json``."""
    with open(REFERENCE_DIR / "bayesmeta_reference.json") as handle:
        return json.load(handle)
