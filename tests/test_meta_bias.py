"""rjtrial.meta.bias: Egger, Begg, trim-and-fill, fail-safe N (agreement with R in tests/validation/)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rjtrial import datasets, effects
from rjtrial.meta import begg, egger, fail_safe_n, pool, trim_and_fill
from rjtrial.meta.bias import BeggTest, EggerTest, FailSafeN, TrimFillResult


@pytest.fixture(scope="module")
def bcg():
    data = datasets.load_bcg()
    es = effects.log_risk_ratio(
        data,
        events_treatment="tpos",
        n_treatment=data.tpos + data.tneg,
        events_control="cpos",
        n_control=data.cpos + data.cneg,
        study="author",
    )
    return pool(es, method="REML")


def symmetric_effects(pairs=8):
    """Pairs of studies on either side of 0.3 at each standard error, distances all distinct."""
    se = np.repeat(np.linspace(0.1, 0.6, pairs), 2)
    yi = 0.3 + np.tile([1.0, -1.0], pairs) * np.linspace(0.02, 0.3, 2 * pairs)
    return pd.DataFrame({"estimate": yi, "variance": se**2}, index=[f"s{i}" for i in range(len(se))])


def test_results_are_frozen(bcg):
    for result in (egger(bcg), begg(bcg), fail_safe_n(bcg)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.p_value = 0.5
    assert isinstance(egger(bcg), EggerTest) and isinstance(begg(bcg), BeggTest)
    assert isinstance(fail_safe_n(bcg), FailSafeN) and isinstance(trim_and_fill(bcg), TrimFillResult)


def test_trim_and_fill_imputes_reflections_about_the_trimmed_estimate(bcg):
    tf = trim_and_fill(bcg)
    assert tf.k0 == len(tf.imputed) == 1 and tf.side == "right"
    assert list(tf.result.studies[-1:]) == ["Filled 1"]
    assert tf.result.k == bcg.k + 1
    assert tf.estimate == tf.result.estimate


def test_trim_and_fill_with_explicit_side(bcg):
    assert trim_and_fill(bcg, side="left").side == "left"


def test_symmetric_funnel_needs_no_filling():
    res = pool(symmetric_effects(), method="REML")
    assert trim_and_fill(res).k0 == 0
    assert trim_and_fill(res, estimator="R0").k0 == 0
    assert abs(egger(res).statistic) < 1


def test_asymmetric_funnel_is_detected():
    rng = np.random.default_rng(7)
    se = np.linspace(0.05, 0.6, 30)
    yi = 0.1 + 2.0 * se + rng.normal(0, 0.02, 30)  # small studies show larger effects
    res = pool(pd.DataFrame({"estimate": yi, "variance": se**2}), method="FE")
    assert egger(res).p_value < 1e-6
    assert begg(res).p_value < 1e-3
    assert trim_and_fill(res).k0 > 0


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda r: trim_and_fill(r, estimator="Q9"), "choose one of 'L0', 'R0'"),
        (lambda r: trim_and_fill(r, side="up"), "'left', 'right'"),
        (lambda r: fail_safe_n(r, method="fisher"), "'rosenthal', 'orwin', 'rosenberg'"),
        (lambda r: fail_safe_n(r, alpha=2), "alpha"),
    ],
)
def test_bad_options_name_the_choices(bcg, call, message):
    with pytest.raises(ValueError, match=message):
        call(bcg)


def test_mantel_haenszel_fits_are_refused():
    data = datasets.load_bcg()
    es = effects.log_risk_ratio(
        data,
        events_treatment="tpos",
        n_treatment=data.tpos + data.tneg,
        events_control="cpos",
        n_control=data.cpos + data.cneg,
    )
    with pytest.raises(ValueError, match="inverse-variance"):
        egger(pool(es, method="MH"))


def test_trim_and_fill_refuses_meta_regression():
    data = datasets.load_bcg()
    es = effects.log_risk_ratio(
        data,
        events_treatment="tpos",
        n_treatment=data.tpos + data.tneg,
        events_control="cpos",
        n_control=data.cpos + data.cneg,
    ).assign(ablat=data.ablat.values)
    with pytest.raises(ValueError, match="intercept-only"):
        trim_and_fill(pool(es, method="REML", moderators="ablat"))


def test_orwin_target_and_sign(bcg):
    f = fail_safe_n(bcg, method="orwin", target=0.2)  # sign follows the mean effect
    assert f.target == -0.2 and f.mean_effect < 0 and f.n > 0


def test_docstring_examples_run():
    import doctest

    import rjtrial.meta.bias as module

    assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_equal_standard_errors_say_why_egger_and_the_side_of_trim_and_fill_are_not_computable():
    # it was "the design (intercept, sei) is rank deficient ... a moderator is constant"
    import pandas as pd

    from rjtrial.meta import egger, pool, trim_and_fill

    res = pool(pd.DataFrame({"estimate": [0.1, -0.2, 0.3, 0.05], "variance": [0.04] * 4}, index=list("ABCD")))
    with pytest.raises(ValueError, match="Egger's test is not computable: all standard errors are equal"):
        egger(res)
    with pytest.raises(ValueError, match="all standard errors are equal.*side='left' or 'right'"):
        trim_and_fill(res)
    assert trim_and_fill(res, side="left").k0 >= 0


# --------------------------------------------------------------------------- egger's options
def _bcg_effects():
    from rjtrial import datasets, effects

    bcg = datasets.load_bcg()
    return effects.log_risk_ratio(
        bcg,
        events_treatment="tpos",
        n_treatment=bcg.tpos + bcg.tneg,
        events_control="cpos",
        n_control=bcg.cpos + bcg.cneg,
    )


@pytest.mark.parametrize("kwargs,message", [({"predictor": "se"}, "predictor='se'"), ({"model": "glm"}, "model='glm'")])
def test_egger_bad_options(kwargs, message):
    from rjtrial.meta import egger, pool

    with pytest.raises(ValueError, match=message):
        egger(pool(_bcg_effects()), **kwargs)


def test_egger_sample_sizes_from_the_frame_or_given():
    from rjtrial.meta import egger, pool

    es = _bcg_effects()
    res = pool(es)
    from_frame = egger(res, predictor="ni")
    given = egger(res, predictor="ni", n=(es.n_treatment + es.n_control).to_numpy())
    assert from_frame.statistic == pytest.approx(given.statistic, abs=1e-14)
    bare = pool(es[["estimate", "variance"]])
    with pytest.raises(ValueError, match="give n="):
        egger(bare, predictor="ninv")


def test_egger_equal_variances_is_a_clear_error():
    import pandas as pd

    from rjtrial.meta import egger, pool

    es = pd.DataFrame({"estimate": [0.1, 0.3, -0.2, 0.4, 0.0], "variance": 0.04})
    with pytest.raises(ValueError, match="not computable: all standard errors are equal"):
        egger(pool(es))
