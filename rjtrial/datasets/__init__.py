"""Bundled datasets, each with its provenance.

* :func:`load_bcg` -- the 13 BCG vaccine trials of Colditz et al. (1994), the textbook check
  of meta-analysis software;
* :func:`load_rj_trials` -- the ten restorative-justice RCTs of the Campbell review, with the
  offender numbers that carry a source (no per-trial effect sizes: they are not published
  in a form available to us);
* :func:`load_rj_pooled` -- the pooled results of that review, as published.

The CSV files live beside this module; loading never touches the network.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_bcg", "load_rj_pooled", "load_rj_trials"]


def _read(name: str, **kwargs) -> pd.DataFrame:
    with resources.files(__name__).joinpath(name).open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, **kwargs)


def load_bcg() -> pd.DataFrame:
    """The BCG vaccine trials: 13 trials of BCG vaccination against tuberculosis.

    Source: R package ``metadat`` (``dat.bcg``), transcribed from Colditz et al. (1994),
    Table 1; the same rows as metafor's and the Cochrane textbook examples.

    Size: 13 rows, 9 columns.

    Columns
    -------
    trial : int
        Trial number (1-13).
    author : str
        First author(s) (not unique: "Rosenthal et al" and "Comstock et al" recur).
    year : int
        Publication year.
    tpos, tneg : int
        Vaccinated participants who did / did not develop tuberculosis.
    cpos, cneg : int
        Unvaccinated (control) participants who did / did not develop tuberculosis.
    ablat : int
        Absolute latitude of the trial site (degrees).
    alloc : str
        Allocation: ``"random"``, ``"alternate"`` or ``"systematic"``.

    References
    ----------
    Colditz, G. A., Brewer, T. F., Berkey, C. S., Wilson, M. E., Burdick, E., Fineberg, H. V.,
    & Mosteller, F. (1994). Efficacy of BCG vaccine in the prevention of tuberculosis:
    Meta-analysis of the published literature. JAMA, 271(9), 698-702.
    doi:10.1001/jama.1994.03510330076038

    Examples
    --------
    >>> from rjtrial import datasets, effects, meta
    >>> bcg = datasets.load_bcg()
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg, study="author")
    >>> res = meta.pool(es, method="REML")
    >>> print(f"{res.estimate:.4f} {res.tau2:.4f} {res.i2:.2f}")
    -0.7145 0.3132 92.22
    """
    return _read("bcg.csv")


def load_rj_trials() -> pd.DataFrame:
    """The ten restorative-justice RCTs pooled by the Campbell review, with their sizes.

    Holds only figures with a source. Per-trial effect sizes are **not** included: they
    were not available to us, and this table must not be completed with guesses. To pool
    RJ trials, enter your own effect sizes (e.g. with :mod:`rjtrial.effects`).

    Source: trial names and numbers of offenders from a Cambridge presentation by
    H. Strang (as recorded in the project's domain notes). These sizes sum to 1,927, not
    the 1,880 offenders of the review's pooled analysis (:func:`load_rj_pooled`); the two
    figures come from different sources and are left as published.

    Size: 10 rows, 3 columns.

    Columns
    -------
    trial : str
        Trial (site and offence type) as named in the presentation: three Canberra, one
        Indianapolis, six UK.
    location : str
        ``"Canberra"``, ``"Indianapolis"`` or ``"UK"``.
    n_offenders : int
        Offenders randomised.

    References
    ----------
    Strang, H., et al. (2013). Restorative justice conferencing (RJC) using face-to-face
    meetings of offenders and victims: Effects on offender recidivism and victim
    satisfaction. A systematic review. Campbell Systematic Reviews, 2013:12.
    doi:10.4073/csr.2013.12
    """
    return _read("rj_trials.csv")


def load_rj_pooled() -> pd.DataFrame:
    """The pooled results of the Campbell review of restorative-justice conferencing.

    Repeat-conviction frequency: d = -0.155 (p = .001) from 10 RCTs, 1,880 offenders
    (9 of 10 trials in the predicted direction); victim satisfaction: d = 0.327 (its p, k
    and n are not recorded here: missing). Negative d on reoffending favours RJ.

    Source: Strang et al. (2013), Campbell Systematic Reviews 2013:12; Sherman et al.
    (2015), J Quant Criminol 31:1-24.

    Size: 2 rows, 7 columns.

    Columns
    -------
    outcome : str
    measure : str
        ``"standardised mean difference (d)"``.
    estimate : float
        The pooled d.
    p_value : float
        As published (NaN where not recorded).
    k : float
        Number of trials pooled (NaN where not recorded).
    n_offenders : float
        Offenders in the pooled analysis (NaN where not recorded).
    source : str
        Citation with DOI.

    References
    ----------
    Strang, H., et al. (2013). Campbell Systematic Reviews, 2013:12. doi:10.4073/csr.2013.12
    Sherman, L. W., et al. (2015). Journal of Quantitative Criminology, 31, 1-24.
    """
    return _read("rj_pooled.csv")
