"""Largest differences between rjtrial and R on the datasets of survival_datasets.R.

Run from the repository root: ``.venv/bin/python tests/reference/survival_datasets_differences.py``.
Prints, per dataset, the largest absolute difference in coefficients and the largest
relative difference in standard errors, test statistics and survival estimates; the test
suite holds each to its tolerance (tests/validation/test_*_survival.py).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
from _survival_datasets import _data_for, _options, fit_cox, reference  # noqa: E402
from _survival_reference import as_array  # noqa: E402

from rjtrial.survival import kaplan_meier, logrank, rmst  # noqa: E402


def _rel(a, b):
    a, b = np.asarray(a, float), as_array(b)
    ok = np.isfinite(a) & np.isfinite(b) & (b != 0)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok]), initial=0.0))


def _abs(a, b):
    a, b = np.asarray(a, float), as_array(b)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[ok] - b[ok]), initial=0.0))


def main() -> None:
    worst: dict = defaultdict(lambda: defaultdict(float))
    compared: dict = defaultdict(set)
    for name, ref in reference()["cases"].items():
        data = name.split("_")[0] if not name.startswith("colon_death") else "colon"
        py = ref["py"]
        if "coef" in ref:
            fit = fit_cox(name)
            t = fit.summary_frame()
            w = worst[data]
            w["coef (abs)"] = max(w["coef (abs)"], _abs(t["estimate"], ref["coef_tight_refit"]))
            w["std error (rel)"] = max(w["std error (rel)"], _rel(t["std_error"], ref["se"]))
            for key, test in (
                ("logtest", fit.likelihood_ratio_test_),
                ("waldtest", fit.wald_test_),
                ("sctest", fit.score_test_),
                ("robscore", fit.robust_score_test_),
            ):
                if key in ref:
                    w["tests (rel)"] = max(w["tests (rel)"], _rel([test.statistic], [ref[key]["statistic"]]))
            c = fit.concordance()
            w["concordance std (rel)"] = max(w["concordance std (rel)"], _rel([c.std_error], [ref["concordance_std"]]))
            w["concordance counts (abs)"] = max(
                w["concordance counts (abs)"],
                _abs([c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both], ref["concordance"][:5]),
            )
            if "zph_km" in ref:
                w["cox.zph (rel)"] = max(
                    w["cox.zph (rel)"], _rel(fit.proportional_hazards_test()["statistic"], ref["zph_km"]["chisq"])
                )
            compared[data].add(
                "Cox "
                + ("(start, stop] " if py.get("start") else "")
                + (py.get("ties") or "efron")
                + (" strata" if py.get("strata") else "")
                + (" cluster" if py.get("cluster") else "")
            )
        elif "_km_" in name:
            km = kaplan_meier(
                _data_for(name),
                time=py["time"],
                event=py["event"],
                group=py.get("group"),
                **_options(py, ("event_coding", "conf_type")),
            )
            worst[data]["KM S and CI (abs)"] = max(
                worst[data]["KM S and CI (abs)"],
                _abs(
                    np.concatenate([km.table["survival"], km.table["ci_lower"], km.table["ci_upper"]]),
                    as_array(ref["table"]["surv"]).tolist()
                    + as_array(ref["table"]["lower"]).tolist()
                    + as_array(ref["table"]["upper"]).tolist(),
                ),
            )
            compared[data].add(f"KM ({py.get('conf_type')})")
        elif "_logrank_" in name:
            res = logrank(
                _data_for(name),
                time=py["time"],
                event=py["event"],
                group=py["group"],
                **_options(py, ("strata", "event_coding")),
            )
            worst[data]["log-rank (rel)"] = max(worst[data]["log-rank (rel)"], _rel([res.statistic], [ref["chisq"]]))
            compared[data].add("log-rank" + (" stratified" if py.get("strata") else ""))
        elif "_rmst_" in name:
            res = rmst(
                _data_for(name),
                tau=ref["tau"],
                time=py["time"],
                event=py["event"],
                group=py["group"],
                **_options(py, ("event_coding",)),
            )
            worst[data]["RMST (rel)"] = max(worst[data]["RMST (rel)"], _rel(res.table["std_error"], ref["se"]))
            compared[data].add("RMST")
    for data in worst:
        print(f"{data}: {', '.join(sorted(compared[data]))}")
        print("   " + "; ".join(f"{k} {v:.1e}" for k, v in worst[data].items()))


if __name__ == "__main__":
    main()
