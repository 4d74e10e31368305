"""Three-level meta-analysis with robust variance (Assink & Wibbelink 2016)
=========================================================================

Reproduce the three-level meta-analysis of Assink & Wibbelink (2016): recidivism and mental
health in delinquent juveniles (dat.assink2016: 100 effect sizes from 17 studies).

The tutorial (Assink & Wibbelink 2016, The Quantitative Methods for Psychology 12(3),
154-174, doi:10.20982/tqmp.12.3.p154) fits these models with R metafor; the reference column
is what its calls give in R 4.2.2 / metafor 3.8-1, with the cluster-robust (CR2) tests of
clubSandwich 0.5.8 and the correlated-effects RVE of robumeta 2.0 on the same data
(tests/reference/metafor_multilevel.R holds the calls and full-precision values):

* ``res <- rma.mv(yi, vi, random = ~ 1 | study/esid, data = dat.assink2016)``: overall
  effect, the variance between effects within studies (level 2) and between studies
  (level 3), their profile-likelihood intervals (``confint(res)``) and the distribution of
  the total variance over the levels (the tutorial's "percentage of variance" table, as
  metafor's FAQ computes it);
* ``rma.mv(..., mods = ~ deltype)``: the kind of reoffending as a moderator ("covert" the
  reference level);
* ``coef_test(res, vcov = "CR2")``, ``Wald_test(..., test = "HTZ")`` and
  ``robu(yi ~ 1, studynum = study, var.eff.size = vi, modelweights = "CORR", rho = 0.8)``.

Prints our number beside the reference, rounded as shown; exits 1 on any mismatch. Run from
the repository root::

    .venv/bin/python analysis/assink2016_three_level.py
"""

from __future__ import annotations

import sys

from rjtrial import datasets, meta

# quantity -> (reference value, R expression)
REFERENCE = {
    "estimate": (0.4268, "coef(res)"),
    "std_error": (0.1184, "res$se"),
    "ci_lower": (0.1947, "res$ci.lb"),
    "ci_upper": (0.6589, "res$ci.ub"),
    "sigma2_level3": (0.1879, "res$sigma2[1] (between studies)"),
    "sigma2_level3_ci_lower": (0.0844, "confint(res)[[1]]$random[1, 'ci.lb']"),
    "sigma2_level3_ci_upper": (0.4673, "confint(res)[[1]]$random[1, 'ci.ub']"),
    "sigma2_level2": (0.1120, "res$sigma2[2] (within studies)"),
    "sigma2_level2_ci_lower": (0.0671, "confint(res)[[2]]$random[1, 'ci.lb']"),
    "sigma2_level2_ci_upper": (0.1810, "confint(res)[[2]]$random[1, 'ci.ub']"),
    "i2_level3": (58.31, "100 sigma2[1] / (sum(sigma2) + (k - p) / tr(P))"),
    "i2_level2": (34.76, "100 sigma2[2] / (sum(sigma2) + (k - p) / tr(P))"),
    "q": (809.4611, "res$QE"),
    "deltype_overt": (0.5078, "coef(rma.mv(..., mods = ~ deltype))['deltypeovert']"),
    "deltype_qm": (14.9760, "rma.mv(..., mods = ~ deltype)$QM"),
    "cr2_std_error": (0.1186, "coef_test(res, vcov = 'CR2')$SE"),
    "cr2_df": (15.45, "coef_test(res, vcov = 'CR2')$df_Satt"),
    "cr2_htz_deltype_f": (47.7593, "Wald_test(res_deltype, constrain_zero(2:3), 'CR2', test = 'HTZ')$Fstat"),
    "cr2_htz_deltype_df": (0.797, "Wald_test(...)$df_denom"),
    "robu_estimate": (0.3586, "robu(...)$reg_table$b.r"),
    "robu_std_error": (0.0892, "robu(...)$reg_table$SE"),
    "robu_df": (14.37, "robu(...)$reg_table$dfs"),
    "robu_tau2": (0.0863, "robu(...)$mod_info$tau.sq"),
}


def main() -> int:
    dat = datasets.load_assink2016()
    res = meta.pool_multilevel(dat, levels=["study", "esid"])
    deltype = meta.pool_multilevel(dat, levels=["study", "esid"], moderators="deltype", profile=False)
    rob = meta.robust(res)
    htz = meta.robust(deltype).wald_test(["deltype[general]", "deltype[overt]"])
    rve = meta.rve(dat, cluster="study")
    cr2 = rob.summary_frame().iloc[0]
    robu = rve.summary_frame().iloc[0]
    ours = {
        "estimate": res.estimate,
        "std_error": res.std_error,
        "ci_lower": res.ci_lower,
        "ci_upper": res.ci_upper,
        "sigma2_level3": res.sigma2[0],
        "sigma2_level3_ci_lower": res.sigma2_ci_lower[0],
        "sigma2_level3_ci_upper": res.sigma2_ci_upper[0],
        "sigma2_level2": res.sigma2[1],
        "sigma2_level2_ci_lower": res.sigma2_ci_lower[1],
        "sigma2_level2_ci_upper": res.sigma2_ci_upper[1],
        "i2_level3": res.i2_levels[0],
        "i2_level2": res.i2_levels[1],
        "q": res.q,
        "deltype_overt": deltype.coefficients[deltype.coefficient_names.index("deltype[overt]")],
        "deltype_qm": deltype.moderator_test.statistic,
        "cr2_std_error": cr2.std_error,
        "cr2_df": cr2.df,
        "cr2_htz_deltype_f": htz.statistic,
        "cr2_htz_deltype_df": htz.df_denominator,
        "robu_estimate": robu.estimate,
        "robu_std_error": robu.std_error,
        "robu_df": robu.df,
        "robu_tau2": rve.tau2,
    }
    print("Assink & Wibbelink (2016): recidivism and mental health in delinquent juveniles, three-level model")
    print(f"{'quantity':<26}{'rjtrial':>14}{'R':>12}  agree")
    failures = 0
    for name, (expected, _) in REFERENCE.items():
        decimals = len(str(expected).split(".")[1]) if "." in str(expected) else 0
        value = float(ours[name])
        agree = round(value, decimals) == expected
        failures += not agree
        print(f"{name:<26}{value:>14.{decimals + 2}f}{expected:>12}  {'yes' if agree else 'NO'}")
    print()
    print(res.format())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
