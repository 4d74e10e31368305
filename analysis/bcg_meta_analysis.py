"""Reproduce the BCG vaccine meta-analysis (Colditz et al. 1994; 13 trials, log risk ratios).
==========================================================================================

Prints our numbers beside the reference values of R metafor 3.8-1
(``res <- rma(yi, vi, data = escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg))``
and ``regtest(res)``, ``ranktest(res)``, ``trimfill(res)``, ``fsn(yi, vi)``; full-precision values in
tests/reference/), rounded as printed; the estimate, tau^2 and I^2 are the figures quoted in the
meta-analysis issue and in Viechtbauer (2010, J Stat Softw 36(3), doi:10.18637/jss.v036.i03).
Exits 1 if any differs at the printed rounding. Run from the repository root::

    .venv/bin/python analysis/bcg_meta_analysis.py [--plots DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rjtrial import datasets, effects, meta

# quantity -> reference value (R metafor 3.8-1), compared at the decimals shown
REFERENCE = {
    "estimate": -0.7145,  # coef(res)
    "std_error": 0.1798,  # res$se
    "ci_lower": -1.0669,  # res$ci.lb
    "ci_upper": -0.3622,  # res$ci.ub
    "tau2": 0.3132,  # res$tau2
    "i2": 92.22,  # res$I2
    "q": 152.2330,  # res$QE
    "egger_z": -0.8033,  # regtest(res)$zval
    "begg_tau": 0.0256,  # ranktest(res)$tau
    "trimfill_k0": 1,  # trimfill(res)$k0 (side "right")
    "trimfill_estimate": -0.6571,  # coef(trimfill(res))
    "fsn_rosenthal": 598,  # fsn(yi, vi)$fsnum
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plots", metavar="DIR", help="write forest.png and funnel.png to DIR")
    args = parser.parse_args(argv)
    bcg = datasets.load_bcg()
    es = effects.log_risk_ratio(
        bcg,
        events_treatment="tpos",
        n_treatment=bcg.tpos + bcg.tneg,
        events_control="cpos",
        n_control=bcg.cpos + bcg.cneg,
        study="author",
    )
    res = meta.pool(es, method="REML")
    tf = meta.trim_and_fill(res)
    ours = {
        "estimate": res.estimate,
        "std_error": res.std_error,
        "ci_lower": res.ci_lower,
        "ci_upper": res.ci_upper,
        "tau2": res.tau2,
        "i2": res.i2,
        "q": res.q,
        "egger_z": meta.egger(res).statistic,
        "begg_tau": meta.begg(res).statistic,
        "trimfill_k0": tf.k0,
        "trimfill_estimate": tf.estimate,
        "fsn_rosenthal": meta.fail_safe_n(res).n,
    }
    print("BCG vaccine trials (Colditz et al. 1994), REML random effects, log risk ratio")
    print(f"{'quantity':<20}{'rjtrial':>14}{'metafor':>12}  agree")
    failures = 0
    for name, expected in REFERENCE.items():
        decimals = len(str(expected).split(".")[1]) if "." in str(expected) else 0
        value = ours[name]
        agree = round(value, decimals) == expected
        failures += not agree
        shown = f"{value:>14d}" if isinstance(value, int) else f"{value:>14.{decimals + 2}f}"
        print(f"{name:<20}{shown}{expected:>12}  {'yes' if agree else 'NO'}")
    if args.plots:
        import matplotlib

        matplotlib.use("Agg")
        out = Path(args.plots)
        out.mkdir(parents=True, exist_ok=True)
        res.plot_forest(exponentiate=True).figure.savefig(out / "forest.png", dpi=150, bbox_inches="tight")
        res.plot_funnel(trim_and_fill=tf).figure.savefig(out / "funnel.png", dpi=150, bbox_inches="tight")
        print(f"wrote {out / 'forest.png'} and {out / 'funnel.png'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
