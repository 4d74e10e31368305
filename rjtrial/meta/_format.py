"""Plain-text summary of a MetaResult (formatting only; numbers stay numbers on the result)."""

from __future__ import annotations

import numpy as np

METHOD_NAMES = {
    "FE": "fixed-effect (inverse variance)",
    "MH": "Mantel-Haenszel (fixed effect)",
    "Peto": "Peto (fixed effect)",
    "DL": "DerSimonian-Laird",
    "REML": "restricted maximum likelihood",
    "ML": "maximum likelihood",
    "PM": "Paule-Mandel",
    "HE": "Hedges",
    "SJ": "Sidik-Jonkman",
    "EB": "empirical Bayes",
    "HS": "Hunter-Schmidt",
    "HSk": "Hunter-Schmidt (k-corrected)",
    "PMM": "median-unbiased Paule-Mandel",
    "GENQ": "generalised Q (user weights)",
}


def _p(p: float) -> str:
    return "p = NA" if not np.isfinite(p) else ("p < .0001" if p < 1e-4 else f"p = {p:.4f}")


def format_summary(res, *, digits: int = 4) -> str:
    f = f"{{:.{digits}f}}"
    level = f"{100 * (1 - res.alpha):g}%"
    model = "fixed-effect" if res.is_fixed_effect else ("mixed-effects" if res.has_moderators else "random-effects")
    lines = [
        f"{model.capitalize()} meta-analysis (k = {res.k}; {METHOD_NAMES.get(res.method, res.method)}"
        + {"knha": ", Knapp-Hartung", "adhoc": ", Knapp-Hartung (ad hoc, s^2 >= 1)", "t": ", t tests"}.get(res.test, "")
        + ")"
    ]
    if getattr(res, "n_omitted", 0):
        lines.append(
            f"{res.n_omitted} {'study' if res.n_omitted == 1 else 'studies'} omitted "
            "(missing estimate, variance or moderator)"
        )
    if res.measure:
        lines.append(f"measure: {res.measure}")
    if not res.is_fixed_effect:
        lines.append(
            f"tau^2 = {f.format(res.tau2)} [{f.format(res.tau2_ci_lower)}, {f.format(res.tau2_ci_upper)}]"
            f"  I^2 = {res.i2:.2f}% [{res.i2_ci_lower:.2f}, {res.i2_ci_upper:.2f}]"
            f"  H^2 = {res.h2:.2f}"
        )
    else:
        lines.append(f"I^2 = {res.i2:.2f}%  H^2 = {res.h2:.2f}")
    lines.append(
        f"{'Residual heterogeneity' if res.has_moderators else 'Heterogeneity'}: "
        f"Q({res.q_df}) = {res.q:.4f}, {_p(res.q_p_value)}"
    )
    if res.has_moderators:
        t = res.moderator_test
        dist = f"F({t.df:g}, {t.df_denominator:g})" if t.distribution == "F" else f"QM({t.df:g})"
        lines.append(
            f"Moderators: {dist} = {t.statistic:.4f}, {_p(t.p_value)}"
            + (f"; R^2 = {res.r2:.2f}%" if res.r2 is not None else "")
        )
        lines.append(res.coefficients_frame().to_string(float_format=f.format))
    else:
        stat = "t" if res.df is not None else "z"
        lines.append(
            f"estimate = {f.format(res.estimate)} (SE {f.format(res.std_error)}), {stat} = "
            f"{res.statistic:.4f}, {_p(res.p_value)}"
        )
        interval = f"{level} CI [{f.format(res.ci_lower)}, {f.format(res.ci_upper)}]"
        if not res.is_fixed_effect:
            interval += f"  {level} PI [{f.format(res.pi_lower)}, {f.format(res.pi_upper)}]"
        lines.append(interval)
    if res.subgroups is not None:
        lines.append(f"Subgroups ({res.subgroups.attrs.get('subgroup_tau2')} tau^2):")
        lines.append(
            res.subgroups[["k", "estimate", "std_error", "ci_lower", "ci_upper", "tau2"]].to_string(
                float_format=f.format
            )
        )
        t = res.subgroup_test
        dist = f"F({t.df:g}, {t.df_denominator:g})" if t.distribution == "F" else f"Q({t.df:g})"
        lines.append(f"Test of subgroup differences: {dist} = {t.statistic:.4f}, {_p(t.p_value)}")
    if not res.converged:
        lines.append(f"WARNING: the tau^2 estimator did not converge in {res.n_iterations} iterations")
    return "\n".join(lines)
