"""rjtrial.meta.bayes: the exact posterior against an independent brute-force quadrature, and its checks.

The brute force integrates the joint posterior of (tau, mu) directly -- prior(tau) prior(mu)
prod N(y_i; mu, v_i + tau^2) -- by composite Gauss-Legendre quadrature over both parameters,
without the closed-form integration over mu, the change of variable or the mixtures that
``bayes`` uses. A posterior quantile of ours must have brute-force probability p to 1e-9.
(R bayesmeta and the published numbers are in tests/validation/test_crins2014_bayes.py.)
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from rjtrial import datasets, effects
from rjtrial.errors import DataError, RjtrialWarning
from rjtrial.meta import BayesResult, bayes, pool

GX, GW = np.polynomial.legendre.leggauss(20)
PROBABILITY = 1e-9  # brute-force probability of our quantiles, absolute
MOMENT = 1e-9  # posterior means and SDs, relative

CRINS = pd.DataFrame(
    {  # Crins et al. (2014), as in Röver (2020), Table 3
        "study": [
            "Spada (2006)",
            "Ganschow (2005)",
            "Gibelli (2004)",
            "Heffron (2003)",
            "Schuller (2005)",
            "Gras (2008)",
        ],
        "exp_events": [4, 9, 16, 14, 3, 0],
        "exp_total": [36, 54, 28, 61, 18, 50],
        "cont_events": [11, 29, 19, 15, 8, 3],
        "cont_total": [36, 54, 28, 20, 12, 34],
    }
)


def crins_effects() -> pd.DataFrame:
    return effects.log_odds_ratio(
        CRINS,
        events_treatment="exp_events",
        n_treatment="exp_total",
        events_control="cont_events",
        n_control="cont_total",
        study="study",
    )


def bcg_effects() -> pd.DataFrame:
    bcg = datasets.load_bcg()
    return effects.log_risk_ratio(
        bcg,
        events_treatment="tpos",
        n_treatment=bcg.tpos + bcg.tneg,
        events_control="cpos",
        n_control=bcg.cpos + bcg.cneg,
        study="author",
    )


def hart_effects() -> pd.DataFrame:
    hart = pd.read_csv(Path(__file__).parent / "reference" / "metadat_hart1999.csv")
    return effects.log_incidence_rate_ratio(
        hart,
        events_treatment="x1i",
        person_time_treatment="t1i",
        events_control="x2i",
        person_time_control="t2i",
        study="study",
    )


LOG_PRIORS = {
    "half-normal": lambda t, s: stats.halfnorm.logpdf(t, scale=s),
    "half-cauchy": lambda t, s: stats.halfcauchy.logpdf(t, scale=s),
    "exponential": lambda t, s: stats.expon.logpdf(t, scale=s),
    "uniform": lambda t, s: np.zeros_like(t),
}
CASES = {  # name: (effects, tau_prior, tau_scale, mu_prior)
    "crins-half-normal": (crins_effects, "half-normal", 0.5, (0.0, 4.0)),
    "bcg-half-cauchy": (bcg_effects, "half-cauchy", 0.5, None),
    "hart-exponential": (hart_effects, "exponential", 0.5, None),
    "bcg-uniform": (bcg_effects, "uniform", 0.5, None),
}


def _rule(edges):
    a, b = edges[:-1], edges[1:]
    h = (b - a) / 2
    return (((a + b) / 2)[:, None] + h[:, None] * GX).ravel(), (h[:, None] * GW).ravel()


class BruteForce:
    """Integrals of g(tau, mu) against the joint posterior, by tensor Gauss-Legendre quadrature
    (geometric panels in tau from 0; even panels in mu, finer over ``mu_core`` and around ``near``)."""

    def __init__(self, es, tau_prior, tau_scale, mu_prior, tau_max, mu_range, mu_core):
        self.y, self.v = es["estimate"].to_numpy(), es["variance"].to_numpy()
        self.log_prior = lambda t: LOG_PRIORS[tau_prior](t, tau_scale)
        self.mu_prior, self.tau_max, self.mu_range, self.mu_core = mu_prior, tau_max, mu_range, mu_core
        self.offset = 0.0
        self.offset = math.log(self.integral(lambda t, m: 1.0))

    def log_joint(self, tau, mu):
        """log prior(tau) + log prior(mu) + sum_i log N(y_i; mu, v_i + tau^2), on a (tau, mu) mesh
        (``tau`` constant along rows): the sum over studies expanded in powers of mu."""
        total = self.v + tau[:, :1, None] ** 2
        a = (self.y**2 / total).sum(axis=-1)
        b = (self.y / total).sum(axis=-1)
        c = (1 / total).sum(axis=-1)
        logdet = np.log(2 * np.pi * total).sum(axis=-1)
        lp = -0.5 * (logdet + a - 2 * mu * b + mu**2 * c)
        if self.mu_prior is not None:
            lp = lp + stats.norm.logpdf(mu, *self.mu_prior)
        return lp + self.log_prior(tau)

    def integral(self, g, *, tau_upper=None, mu_upper=None, near=None):
        top = self.tau_max if tau_upper is None else tau_upper
        t, wt = _rule(np.concatenate([[0.0], np.geomspace(1e-8, 1, 40) * top]))
        lo, hi = self.mu_range[0], self.mu_range[1] if mu_upper is None else mu_upper
        edges = np.concatenate([np.linspace(lo, hi, 31), np.linspace(*self.mu_core, 61)])
        edges = np.unique(np.clip(edges, lo, hi))
        if near is not None:
            steps = np.geomspace(1e-8, 2, 28)
            edges = np.unique(np.clip(np.concatenate([edges, near - steps, near + steps, [near]]), lo, hi))
        m, wm = _rule(edges)
        T, M = np.meshgrid(t, m, indexing="ij")
        return float((wt[:, None] * wm * np.exp(self.log_joint(T, M) - self.offset) * g(T, M)).sum())

    # the probabilities our quantiles must have
    def mu_cdf(self, x):
        return self.integral(lambda t, m: 1.0, mu_upper=x)

    def tau_cdf(self, x):
        return self.integral(lambda t, m: 1.0, tau_upper=x)

    def prediction_cdf(self, x):
        return self.integral(lambda t, m: special.ndtr((x - m) / t), near=x)

    def study_cdf(self, i, x):
        yi, vi = self.y[i], self.v[i]

        def g(t, m):  # theta_i | mu, tau, y_i is normal: precision-weighted y_i and mu
            precision = 1 / vi + 1 / t**2
            return special.ndtr((x - (yi / vi + m / t**2) / precision) * np.sqrt(precision))

        return self.integral(g, near=x)

    def mu_density(self, x):
        t, wt = _rule(np.concatenate([[0.0], np.geomspace(1e-8, 1, 40) * self.tau_max]))
        return float((wt * np.exp(self.log_joint(t[:, None], np.full((t.size, 1), x)) - self.offset)[:, 0]).sum())


@lru_cache(maxsize=None)
def fitted(case: str, interval: str = "central") -> BayesResult:
    make, prior, scale, mu_prior = CASES[case]
    return bayes(make(), tau_prior=prior, tau_scale=scale, mu_prior=mu_prior, interval=interval)


@lru_cache(maxsize=None)
def brute(case: str) -> BruteForce:
    make, prior, scale, mu_prior = CASES[case]
    res = fitted(case)
    tau_max = 30 * float(res.quantile("tau", 0.999)[0])
    lo, hi = res.quantile("prediction", [1e-10, 1 - 1e-10])
    width = hi - lo
    core = tuple(res.quantile("mu", [1e-6, 1 - 1e-6]))
    return BruteForce(make(), prior, scale, mu_prior, tau_max, (lo - width, hi + width), core)


QUANTITIES = [
    ("mu", "estimate", 0.5),
    ("mu", "ci_lower", 0.025),
    ("mu", "ci_upper", 0.975),
    ("tau", "tau", 0.5),
    ("tau", "tau_ci_lower", 0.025),
    ("tau", "tau_ci_upper", 0.975),
    ("prediction", "pi_lower", 0.025),
    ("prediction", "pi_upper", 0.975),
]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("parameter,attribute,p", QUANTITIES, ids=[q[1] for q in QUANTITIES])
def test_quantiles_have_their_probability_under_brute_force_quadrature(case, parameter, attribute, p):
    res, check = fitted(case), brute(case)
    cdf = {"mu": check.mu_cdf, "tau": check.tau_cdf, "prediction": check.prediction_cdf}[parameter]
    assert cdf(getattr(res, attribute)) == pytest.approx(p, abs=PROBABILITY)


@pytest.mark.parametrize("case", ["crins-half-normal", "hart-exponential"])
@pytest.mark.parametrize("position", [0, -1])
def test_shrunken_study_effects_match_brute_force(case, position):
    res, check = fitted(case), brute(case)
    row = res.shrinkage.iloc[position]
    i = position % len(res.shrinkage)
    for value, p in ((row.estimate, 0.5), (row.ci_lower, 0.025), (row.ci_upper, 0.975)):
        assert check.study_cdf(i, value) == pytest.approx(p, abs=PROBABILITY)


@pytest.mark.parametrize("case", ["crins-half-normal", "hart-exponential", "bcg-uniform"])
def test_posterior_means_and_sds_match_brute_force(case):
    res, check = fitted(case), brute(case)
    mu_mean = check.integral(lambda t, m: m)
    tau_mean = check.integral(lambda t, m: t)
    assert res.mean == pytest.approx(mu_mean, rel=MOMENT)
    assert res.tau_mean == pytest.approx(tau_mean, rel=MOMENT)
    assert res.std_error == pytest.approx(math.sqrt(check.integral(lambda t, m: (m - mu_mean) ** 2)), rel=MOMENT)
    assert res.tau_std_error == pytest.approx(math.sqrt(check.integral(lambda t, m: (t - tau_mean) ** 2)), rel=MOMENT)
    assert res.prediction_mean == pytest.approx(mu_mean, rel=MOMENT)


def test_shortest_intervals_hold_their_probability_with_equal_density_at_both_ends():
    res, check = fitted("crins-half-normal", "shortest"), brute("crins-half-normal")
    assert check.mu_cdf(res.ci_upper) - check.mu_cdf(res.ci_lower) == pytest.approx(0.95, abs=PROBABILITY)
    assert check.mu_density(res.ci_lower) == pytest.approx(check.mu_density(res.ci_upper), rel=1e-8)
    assert res.ci_upper - res.ci_lower < fitted("crins-half-normal").ci_upper - fitted("crins-half-normal").ci_lower
    # tau's density is highest at 0 here: the shortest interval starts there
    assert res.tau_ci_lower == 0.0
    assert check.tau_cdf(res.tau_ci_upper) == pytest.approx(0.95, abs=PROBABILITY)


# ------------------------------------------------------------------------------------------ the result
def test_summary_frame_study_frame_and_json():
    res = fitted("crins-half-normal")
    frame = res.summary_frame()
    assert list(frame.columns) == ["term", "estimate", "mean", "std_error", "ci_lower", "ci_upper"]
    assert list(frame.term) == ["mu", "tau", "prediction"]
    assert frame.attrs == {"alpha": 0.05, "interval": "central", "measure": "log_odds_ratio"}
    studies = res.study_frame()
    assert list(studies.index) == list(CRINS.study)
    assert list(studies.columns) == [
        "observed",
        "observed_std_error",
        "estimate",
        "mean",
        "std_error",
        "ci_lower",
        "ci_upper",
    ]
    # shrinkage pulls each study towards mu
    assert (np.abs(studies.estimate - res.estimate) < np.abs(studies.observed - res.estimate)).all()
    data = json.loads(json.dumps(res.to_dict()))
    assert data["estimate"] == pytest.approx(res.estimate) and len(data["shrinkage"]) == 6
    assert data["tau_prior"] == "half-normal(scale=0.5)" and data["mu_prior"] == "normal(mean=0, sd=4)"
    assert "_posterior" not in data


def test_format_names_priors_intervals_and_studies():
    text = fitted("crins-half-normal").format()
    assert "tau ~ half-normal(scale=0.5); mu ~ normal(mean=0, sd=4)" in text
    assert "95% central interval" in text and "Heffron (2003)" in text and "k = 6 studies" in text


def test_cdf_quantile_and_density_agree():
    res = fitted("hart-exponential")
    for parameter in ("mu", "tau", "prediction", res.shrinkage.index[2]):
        x = res.quantile(parameter, [0.1, 0.5, 0.9])
        np.testing.assert_allclose(res.cdf(parameter, x), [0.1, 0.5, 0.9], atol=1e-12)
        h = 1e-5 * max(1.0, abs(float(x[1])))
        slope = (res.cdf(parameter, x[1] + h) - res.cdf(parameter, x[1] - h)) / (2 * h)
        assert res.density(parameter, x[1])[0] == pytest.approx(slope[0], rel=1e-6)
    with pytest.raises(ValueError, match="give 'mu', 'tau', 'prediction' or a study label"):
        res.cdf("sigma", 0.0)


def test_joint_density_integrates_to_the_marginal_of_tau():
    res = fitted("crins-half-normal")
    mu, w = _rule(np.linspace(-8, 5, 41))
    marginal = (res.joint_density(np.full_like(mu, 0.3), mu) * w).sum()
    assert marginal == pytest.approx(res.density("tau", 0.3)[0], rel=1e-10)


def test_a_flat_tau_prior_gives_the_frequentist_conditional_moments():
    # Röver (2020), section 3.5: given tau = tau_REML, mu's posterior under a uniform prior has the mean and SD of
    # rma(); R: rma(yi, vi)$b, $se
    es = crins_effects()
    fit = pool(es, method="REML")
    res = bayes(es, tau_prior="uniform")
    _, mean, var = res._posterior.model.conditional(np.array([math.sqrt(fit.tau2)]))
    assert mean[0] == pytest.approx(fit.estimate, rel=1e-12) and math.sqrt(var[0]) == pytest.approx(
        fit.std_error, rel=1e-12
    )


def test_a_prior_given_as_a_function_equals_the_named_prior():
    es = crins_effects()
    named = bayes(es, tau_prior="half-cauchy", tau_scale=0.3)
    function = bayes(es, tau_prior=lambda t: 1 / (1 + (t / 0.3) ** 2))  # unnormalised
    for attribute in ("estimate", "ci_lower", "ci_upper", "tau", "tau_ci_upper", "pi_lower"):
        assert getattr(function, attribute) == pytest.approx(getattr(named, attribute), rel=1e-10)
    assert function.tau_scale is None and "user-supplied" in function.tau_prior


# ------------------------------------------------------------------------------------------ careless input
@pytest.mark.parametrize(
    "options,text",
    [
        (dict(tau_prior="half-t"), "choose one of 'half-normal', 'half-cauchy', 'exponential', 'uniform'"),
        (dict(tau_scale=0), "tau_scale must be a positive number"),
        (dict(tau_scale=float("nan")), "tau_scale must be a positive number"),
        (dict(tau_scale="0.5"), "tau_scale must be a positive number"),
        (dict(mu_prior=(0,)), "mu_prior must be None"),
        (dict(mu_prior=(0, -1)), "positive sd"),
        (dict(mu_prior="flat"), "mu_prior must be None"),
        (dict(interval="hpd"), "'central', 'shortest'"),
        (dict(alpha=1.5), "alpha must be in \\(0, 1\\)"),
        (dict(na_action="drop"), "'omit', 'raise'"),
        (dict(tau_prior=lambda t: -np.ones_like(t)), "non-negative densities"),
    ],
)
def test_bad_options_are_named(options, text):
    with pytest.raises(ValueError, match=text):
        bayes(crins_effects(), **options)


@pytest.mark.parametrize("k,mu_prior,ok", [(2, None, False), (3, None, True), (1, (0, 1), False), (2, (0, 1), True)])
def test_a_uniform_tau_prior_needs_enough_studies(k, mu_prior, ok):
    es = crins_effects().iloc[:k]
    if ok:
        assert np.isfinite(bayes(es, tau_prior="uniform", mu_prior=mu_prior).tau)
    else:
        with pytest.raises(ValueError, match="posterior is improper"):
            bayes(es, tau_prior="uniform", mu_prior=mu_prior)


def test_a_heavy_tailed_posterior_has_no_mean_and_says_so():
    with pytest.warns(RjtrialWarning, match="heavy tail .*tau\\^-2"):
        res = bayes(crins_effects().iloc[:3], tau_prior="uniform")
    assert math.isnan(res.tau_mean) and math.isnan(res.mean) and math.isnan(res.prediction_std_error)
    assert np.isfinite([res.tau, res.tau_ci_upper, res.estimate, res.ci_lower]).all()
    assert np.isfinite(res.shrinkage[["mean", "std_error"]].to_numpy()).all()  # bounded: they exist
    assert any("heavy tail" in note for note in res.notes) and "heavy tail" in res.format()


def test_one_study_with_a_proper_prior():
    res = bayes(crins_effects().iloc[:1], tau_prior="half-normal")
    # the posterior of tau is its prior (one study says nothing about heterogeneity without a prior on mu)
    assert res.tau == pytest.approx(stats.halfnorm.ppf(0.5, scale=0.5), rel=1e-10)
    assert res.estimate == pytest.approx(crins_effects().estimate.iloc[0], rel=1e-10)


def test_missing_studies_are_omitted_counted_and_warned():
    es = crins_effects()
    es.loc["Gras (2008)", "variance"] = np.nan
    with pytest.warns(RjtrialWarning, match="left out .*Gras"):
        res = bayes(es)
    assert res.k == 5 and res.n_omitted == 1 and "1 omitted" in res.format()
    assert "Gras (2008)" not in res.shrinkage.index
    with pytest.raises(DataError) as info:
        bayes(es, na_action="raise")
    assert info.value.row == "Gras (2008)"


def test_a_non_positive_variance_names_the_study():
    es = crins_effects()
    es.loc["Gibelli (2004)", "variance"] = 0.0
    with pytest.raises(DataError, match="variance must be positive") as info:
        bayes(es)
    assert info.value.row == "Gibelli (2004)"


def test_the_plot_has_the_joint_and_both_marginals():
    import matplotlib

    matplotlib.use("Agg")
    fig = fitted("crins-half-normal").plot(exponentiate=True)
    joint, mu, tau = fig.axes
    assert joint.get_xlabel() == "heterogeneity tau" and "log odds ratio" in joint.get_ylabel()
    assert "mu" in mu.get_title() and "tau" in tau.get_title()
    assert len(tau.get_lines()) >= 3  # posterior, prior, median
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_forest_plot_shows_observed_and_shrunken_effects_mu_and_the_prediction():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = fitted("crins-half-normal")
    fig = res.plot_forest()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [*map(str, res.shrinkage.index), "mu", "new study"]
    segments = [line.get_xdata() for line in ax.get_lines() if len(line.get_xdata()) == 2]
    study = res.shrinkage.iloc[0]
    assert [study.ci_lower, study.ci_upper] in [list(x) for x in segments]  # the shrunken interval
    z = 1.959963984540054
    observed = [study.observed - z * study.observed_std_error, study.observed + z * study.observed_std_error]
    assert any(np.allclose(x, observed) for x in segments)
    diamond = ax.patches[0].get_xy()[:, 0]
    assert diamond.min() == pytest.approx(res.ci_lower) and diamond.max() == pytest.approx(res.ci_upper)
    band = ax.patches[1].get_xy()[:, 0]
    assert band.min() == pytest.approx(res.pi_lower) and band.max() == pytest.approx(res.pi_upper)
    plt.close(fig)
