"""Bundled datasets, each with its provenance.

* :func:`load_bcg` -- the 13 BCG vaccine trials of Colditz et al. (1994), the textbook check
  of meta-analysis software;
* :func:`load_rj_trials` -- the ten restorative-justice RCTs of the Campbell review, with the
  offender numbers that carry a source (no per-trial effect sizes: they are not published
  in a form available to us);
* :func:`load_rj_pooled` -- the pooled results of that review, as published;
* :func:`load_assink2016` -- 100 effect sizes from 17 studies of recidivism and mental health
  in delinquent juveniles (several per study: a three-level meta-analysis);
* :func:`load_konstantopoulos2011` -- 56 schools in 11 districts (modified school calendars),
  the textbook three-level example.

The CSV files live beside this module; loading never touches the network.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_assink2016", "load_bcg", "load_konstantopoulos2011", "load_rj_pooled", "load_rj_trials"]


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


def load_assink2016() -> pd.DataFrame:
    """Recidivism and mental health in delinquent juveniles: 100 effect sizes from 17 studies.

    Each study compared the recidivism of delinquent juveniles with a mental-health disorder
    with that of juveniles without one; most studies report several effect sizes (different
    kinds of reoffending), so the effects are nested in studies. Assink & Wibbelink (2016)
    use these data to teach three-level meta-analysis. Positive values: more recidivism in
    the group with a disorder.

    Source: R package ``metadat`` 1.2-0 (``dat.assink2016``), a subset of the data of Assink et
    al. (2015); ``yi`` and ``vi`` renamed ``estimate`` and ``variance``.

    Size: 100 rows, 8 columns.

    Columns
    -------
    study : int
        Study id (17 studies, 1 to 22 effects each).
    esid : int
        Effect-size id within the study.
    id : int
        Row id.
    estimate : float
        Standardised mean difference.
    variance : float
        Its sampling variance.
    pubstatus : int
        Published study (1) or not (0).
    year : float
        Publication year, approximately mean-centred (not constant within study 3, which
        has two publications of the same data).
    deltype : str
        Kind of reoffending: ``"general"``, ``"overt"`` or ``"covert"``.

    References
    ----------
    Assink, M., & Wibbelink, C. J. M. (2016). Fitting three-level meta-analytic models in R:
    A step-by-step tutorial. The Quantitative Methods for Psychology, 12(3), 154-174.
    doi:10.20982/tqmp.12.3.p154

    Assink, M., van der Put, C. E., Hoeve, M., de Vries, S. L. A., Stams, G. J. J. M., & Oort,
    F. J. (2015). Risk factors for persistent delinquent behavior among juveniles: A
    meta-analytic review. Clinical Psychology Review, 42, 47-61. doi:10.1016/j.cpr.2015.08.002

    Examples
    --------
    >>> from rjtrial import datasets, meta
    >>> dat = datasets.load_assink2016()
    >>> res = meta.pool_multilevel(dat, levels=["study", "esid"], profile=False)
    >>> print(f"{res.estimate:.4f} {res.sigma2[0]:.4f} {res.sigma2[1]:.4f}")
    0.4268 0.1879 0.1120
    """
    return _read("assink2016.csv")


def load_konstantopoulos2011() -> pd.DataFrame:
    """Modified school calendars and achievement: 56 schools in 11 districts.

    Each row compares achievement under a modified school calendar (shorter, more frequent
    breaks) with a traditional calendar in one school; schools are nested in districts
    (Cooper et al. 2003, as analysed by Konstantopoulos 2011). The standard example of a
    three-level meta-analysis.

    Source: R package ``metadat`` 1.2-0 (``dat.konstantopoulos2011``); ``yi`` and ``vi``
    renamed ``estimate`` and ``variance``.

    Size: 56 rows, 6 columns.

    Columns
    -------
    district : int
        District id (11 districts).
    school : int
        School id within the district.
    study : int
        Row id.
    estimate : float
        Standardised mean difference (positive: higher achievement with the modified calendar).
    variance : float
        Its sampling variance.
    year : int
        Year of the study.

    References
    ----------
    Konstantopoulos, S. (2011). Fixed effects and variance components estimation in
    three-level meta-analysis. Research Synthesis Methods, 2(1), 61-76. doi:10.1002/jrsm.35

    Examples
    --------
    >>> from rjtrial import datasets
    >>> datasets.load_konstantopoulos2011().groupby("district").size().size
    11
    """
    return _read("konstantopoulos2011.csv")
