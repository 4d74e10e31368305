"""``rjtrial meta STUDIES.csv``: pool a table of studies from the command line.

The table (CSV or Parquet; :func:`rjtrial.meta.effects_from_table`) has one row per study
and either

* ready-made effect sizes: ``estimate`` and ``variance`` (or ``std_error``), with
  ``--measure`` naming what they are (e.g. ``cohens_d``); or
* summary data, turned into effect sizes by :mod:`rjtrial.effects` according to
  ``--measure``: ``events_treatment, n_treatment, events_control, n_control`` for
  ``log_risk_ratio``, ``log_odds_ratio``, ``risk_difference``; ``mean_treatment,
  sd_treatment, n_treatment, mean_control, sd_control, n_control`` for ``hedges_g``,
  ``cohens_d``; ``events_treatment, person_time_treatment, events_control,
  person_time_control`` for ``log_incidence_rate_ratio``; every other measure of
  :mod:`rjtrial.effects` in the columns its function names
  (:data:`rjtrial.meta.table.MEASURE_COLUMNS`).

An optional ``study`` column labels the rows (``--study`` names another one).

Several effect sizes per study: give ``--effect-id COLUMN`` (the effect's id within its study)
for a three-level model (``rjtrial.meta.pool_multilevel``, levels study / effect id; ``--rho``
correlates the sampling errors within a study), and ``--robust`` for cluster-robust CR2
standard errors, Satterthwaite df and t tests, clustered by study (``rjtrial.meta.robust``).

Few trials: ``--bayes`` fits the Bayesian normal-normal model exactly (``rjtrial.meta.bayes``;
``--tau-prior``, ``--tau-scale``, ``--mu-prior MEAN,SD``, ``--interval``; ``--posterior FILE.png``
draws the joint and marginal posteriors).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING

from rjtrial.cli._base import CommandError
from rjtrial.cli._io import read_table, write_figure
from rjtrial.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

# numpy, pandas and rjtrial.meta are imported when the command runs, not when the
# parser is built: `rjtrial --help` must not pay for scipy.stats.

#: rjtrial.meta.table.MEASURES: every measure of rjtrial.effects, and "other" (a test keeps them equal).
MEASURES = (
    "log_odds_ratio",
    "log_risk_ratio",
    "risk_difference",
    "peto_log_odds_ratio",
    "arcsine_risk_difference",
    "mean_difference",
    "hedges_g",
    "cohens_d",
    "log_ratio_of_means",
    "standardised_mean_change_change_score",
    "standardised_mean_change_raw_score",
    "correlation",
    "fisher_z",
    "proportion",
    "log_proportion",
    "logit_proportion",
    "arcsine_proportion",
    "freeman_tukey_proportion",
    "incidence_rate",
    "log_incidence_rate",
    "log_incidence_rate_ratio",
    "incidence_rate_difference",
    "log_hazard_ratio",
    "other",
)
#: rjtrial.meta.pooling.METHODS and rjtrial.meta.regression.TESTS (a test keeps them equal).
METHODS = ("FE", "MH", "Peto", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ")
TESTS = ("z", "knha", "t", "adhoc")
#: rjtrial.meta.bayesian.TAU_PRIORS and INTERVALS (a test keeps them equal).
TAU_PRIORS = ("half-normal", "half-cauchy", "exponential", "uniform")
INTERVALS = ("central", "shortest")
#: rjtrial.meta.multilevel.MULTILEVEL_METHODS and MULTILEVEL_TESTS.
MULTILEVEL_METHODS = ("REML", "ML")
MULTILEVEL_TESTS = ("z", "t")
#: Measures on a log scale, which --exponentiate back-transforms ("other": the user knows).
LOG_MEASURES = (
    "log_risk_ratio",
    "log_odds_ratio",
    "log_incidence_rate_ratio",
    "log_hazard_ratio",
    "log_ratio_of_means",
    "log_incidence_rate",
    "log_proportion",
    "other",
)
#: The pooled frame's columns on the measure's scale (exponentiated by --exponentiate).
SCALE_COLUMNS = ("estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper")

FORMATS_HELP = """\
the studies table (CSV or Parquet), one row per study (or per effect size, with --effect-id):
  study                          label (optional; --study names another column)
  estimate, variance|std_error   ready-made effect sizes, on the scale --measure names
or the summary data of --measure:
  log_risk_ratio, log_odds_ratio, risk_difference, peto_log_odds_ratio, arcsine_risk_difference:
      events_treatment, n_treatment, events_control, n_control
  hedges_g, cohens_d, mean_difference, log_ratio_of_means:
      mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control
  log_incidence_rate_ratio, incidence_rate_difference:
      events_treatment, person_time_treatment, events_control, person_time_control
  and every other measure of rjtrial.effects in the columns its function names
  (proportions: events, n; rates: events, person_time; correlations: correlation, n; ...)
plus any moderator, subgroup (--subgroup), weight (--weights) or effect-id (--effect-id) column.
An example: synthetic/examples/studies.csv; every column on the documentation site's
"Your data" page.

--exponentiate prints log-scale measures back-transformed (risk, odds, rate or hazard ratios)
and draws the forest plot on the ratio scale. --bayes fits the Bayesian random-effects model
(few trials), with --tau-prior, --tau-scale, --mu-prior, --interval and --posterior."""


def add_commands(subparsers) -> None:
    """Add the ``meta`` command to the ``rjtrial`` command-line parser."""
    help_text = "meta-analysis of a CSV of studies (pooled estimate, heterogeneity, bias tests)"
    p = subparsers.add_parser(
        "meta",
        help=help_text,
        description=help_text,
        epilog=FORMATS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "studies",
        metavar="STUDIES.csv",
        help="one row per study: estimate and variance (or std_error), "
        "or the summary data of --measure (columns below)",
    )
    p.add_argument(
        "--measure", required=True, choices=MEASURES, metavar="MEASURE", help=f"effect measure: {', '.join(MEASURES)}"
    )
    p.add_argument(
        "--method",
        default=None,
        choices=METHODS,
        metavar="METHOD",
        help=f"pooling method: {', '.join(METHODS)} (default REML)",
    )
    p.add_argument(
        "--test",
        default=None,
        choices=TESTS,
        help="z (default), knha (Knapp-Hartung), t (t tests on k - p df) or adhoc (Knapp-Hartung, factor >= 1)",
    )
    p.add_argument("--study", default=None, metavar="COLUMN", help="column of study labels (default: study)")
    p.add_argument("--subgroup", default=None, metavar="COLUMN", help="column of subgroup labels")
    p.add_argument(
        "--weights",
        default=None,
        metavar="COLUMN",
        help="column of user weights (metafor's weights=; needed by --method GENQ)",
    )
    p.add_argument(
        "--effect-id",
        default=None,
        metavar="COLUMN",
        help="column of effect ids within study: fit a three-level model (study / effect) "
        "for several effect sizes per study (method REML or ML; test z or t)",
    )
    p.add_argument(
        "--rho",
        type=float,
        default=None,
        help="with --effect-id: correlation of sampling errors within a study (default 0)",
    )
    p.add_argument(
        "--robust",
        action="store_true",
        help="cluster-robust (CR2) standard errors and Satterthwaite t tests, clustered by study",
    )
    p.add_argument(
        "--bayes",
        action="store_true",
        help="Bayesian random-effects meta-analysis (normal-normal model, exact quadrature): posterior "
        "medians and credible intervals of mu and tau, prediction interval, shrunken study effects",
    )
    p.add_argument(
        "--tau-prior",
        default=None,
        choices=TAU_PRIORS,
        help="with --bayes: prior of the between-study SD tau (default half-normal)",
    )
    p.add_argument(
        "--tau-scale",
        type=float,
        default=None,
        help="with --bayes: scale of the tau prior, on the measure's scale (default 0.5)",
    )
    p.add_argument(
        "--mu-prior",
        default=None,
        metavar="MEAN,SD",
        help="with --bayes: normal prior of the overall effect mu (default uniform)",
    )
    p.add_argument(
        "--interval",
        default=None,
        choices=INTERVALS,
        help="with --bayes: central (default) or shortest credible intervals",
    )
    p.add_argument("--posterior", metavar="FILE.png", help="with --bayes: plot the joint and marginal posteriors")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05)")
    p.add_argument(
        "--exponentiate",
        action="store_true",
        help="also give the pooled estimate and intervals back-transformed from the log scale "
        "(measures on the log scale), and draw the forest plot on the ratio scale",
    )
    p.add_argument("--forest", metavar="FILE.png", help="write a forest plot")
    p.add_argument("--funnel", metavar="FILE.png", help="write a funnel plot (with trim-and-fill)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_meta)


def _read(path: str) -> pd.DataFrame:
    """The studies table, its rows labelled 1, 2, ... as the user counts them (under the header)."""
    return read_table(path, "studies", dtype={}, empty_ok=False)


def _clean(value):
    import numpy as np

    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _exponentiated(frame: pd.DataFrame) -> pd.DataFrame:
    """The pooled frame's estimate and interval columns back-transformed (exp); nothing else."""
    import numpy as np

    columns = [c for c in SCALE_COLUMNS if c in frame.columns]
    return np.exp(frame[columns].astype(float))


def _exponentiated_lines(frame: pd.DataFrame, measure: str) -> list[str]:
    ratio = measure.removeprefix("log_").replace("_", " ") if measure != "other" else "exp(estimate)"
    shown = _exponentiated(frame)
    return [f"Back-transformed ({ratio}):", shown.to_string(float_format="{:.4f}".format)]


def _check_exponentiate(args) -> None:
    if args.exponentiate and args.measure not in LOG_MEASURES:
        raise DataError(
            f"--exponentiate back-transforms a log-scale measure ({', '.join(LOG_MEASURES)}); "
            f"{args.measure} is not one",
            table=args.studies,
        )


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {
            "study" if frame.index.name in (None, "study") else frame.index.name: _clean(idx),
            **{k: _clean(v) for k, v in row.items()},
        }
        for idx, row in zip(frame.index, frame.to_dict("records"))
    ]


#: The bias diagnostics, in the order they are printed, with their labels.
DIAGNOSTICS = {
    "egger": "Egger's regression test",
    "begg": "Begg's rank correlation",
    "trim_and_fill": "Trim-and-fill",
    "fail_safe_n": "Fail-safe N (Rosenthal)",
}


def _diagnostic_line(name: str, d: dict) -> str:
    label = DIAGNOSTICS[name]
    if not d["computable"]:
        return f"  {label}: not computable: {d['reason']}"
    if name == "egger":
        stat = "z" if d.get("df") is None else f"t({d['df']:g})"  # a t test on k - 2 df under Knapp-Hartung
        return (
            f"  {label}: {stat} = {d['statistic']:.4f}, p = {d['p_value']:.4f}"
            f" (limit estimate {d['limit_estimate']:.4f})"
        )
    if name == "begg":
        return f"  {label}: Kendall's tau = {d['statistic']:.4f}, p = {d['p_value']:.4f}"
    if name == "trim_and_fill":
        return (
            f"  {label}: {d['k0']} {'study' if d['k0'] == 1 else 'studies'} imputed on the {d['side']}; "
            f"adjusted estimate {d['estimate']:.4f} [{d['ci_lower']:.4f}, {d['ci_upper']:.4f}]"
        )
    return f"  {label}: {d['n']}"


def cmd_meta(args) -> int:
    """Run ``rjtrial meta``; returns the exit code (0)."""
    from rjtrial.meta import effects_from_table, pool, small_study_diagnostics

    bayes_only = [
        f"--{name.replace('_', '-')}"
        for name in ("tau_prior", "tau_scale", "mu_prior", "interval", "posterior")
        if getattr(args, name) is not None
    ]
    if args.bayes:
        clash = [
            f"--{name.replace('_', '-')}"
            for name in ("method", "test", "subgroup", "weights", "effect_id", "rho", "funnel")
            if getattr(args, name) is not None
        ]
        clash += [f"--{name}" for name in ("robust", "exponentiate") if getattr(args, name)]
        if clash:
            raise CommandError(f"--bayes cannot be combined with {', '.join(clash)}")
    elif bayes_only:
        raise CommandError(f"{', '.join(bayes_only)} {'needs' if len(bayes_only) == 1 else 'need'} --bayes")
    args.method = "REML" if args.method is None else args.method
    args.test = "z" if args.test is None else args.test
    _check_exponentiate(args)
    table = _read(args.studies)
    if args.bayes:
        es = effects_from_table(table, measure=args.measure, study=args.study, source=args.studies)
        return _cmd_bayes(args, es)
    dependent = args.effect_id is not None or args.robust
    es = effects_from_table(
        table, measure=args.measure, study=args.study, source=args.studies, repeated_studies=dependent
    )
    if dependent:
        return _cmd_dependent(args, table, es)
    if args.subgroup is not None and args.subgroup not in es.columns:
        raise DataError(f"no column {args.subgroup!r} for --subgroup", table=args.studies)
    if args.weights is not None and args.weights not in es.columns:
        raise DataError(f"no column {args.weights!r} for --weights", table=args.studies)
    if args.method == "GENQ" and args.weights is None:
        raise DataError("--method GENQ needs --weights COLUMN", table=args.studies)
    res = pool(es, method=args.method, test=args.test, subgroup=args.subgroup, alpha=args.alpha, weights=args.weights)
    if not all(math.isfinite(getattr(res, name)) for name in ("estimate", "std_error")):
        raise DataError(
            f"the pooled estimate is {res.estimate} (standard error {res.std_error}): the values are too "
            "extreme to pool in double precision",
            table=args.studies,
        )
    diagnostics: dict = {}
    notes: list[str] = []
    inverse_variance = res.method not in ("MH", "Peto")
    if inverse_variance and res.k >= 3:
        diagnostics = small_study_diagnostics(res)
    else:
        notes.append("bias diagnostics need an inverse-variance model and at least 3 studies")
    if args.forest:
        import matplotlib

        matplotlib.use("Agg")
        ax = res.plot_forest(exponentiate=args.exponentiate)
        write_figure(ax.figure, args.forest)
    if args.funnel:
        import matplotlib

        matplotlib.use("Agg")
        ax = res.plot_funnel(trim_and_fill=diagnostics.get("trim_and_fill", {}).get("computable", False))
        write_figure(ax.figure, args.funnel)
    if args.json:
        out = {
            "measure": args.measure,
            "method": res.method,
            "test": res.test,
            "alpha": res.alpha,
            "pooled": _records(res.summary_frame()),
            "exponentiated": _records(_exponentiated(res.summary_frame())) if args.exponentiate else None,
            "heterogeneity": {k: _clean(getattr(res, k)) for k in ("tau2", "i2", "h2", "q", "q_df", "q_p_value")},
            "studies": _records(res.study_frame()),
            "diagnostics": {k: {kk: _clean(vv) for kk, vv in v.items()} for k, v in diagnostics.items()},
            "files": {k: v for k, v in (("forest", args.forest), ("funnel", args.funnel)) if v},
        }
        print(json.dumps(out, indent=2))
        return 0
    lines = [res.format_summary(), ""]
    if args.exponentiate:
        lines += [*_exponentiated_lines(res.summary_frame(), args.measure), ""]
    if diagnostics:
        lines += ["Small-study effects:", *(_diagnostic_line(name, value) for name, value in diagnostics.items())]
    lines += notes
    for name, path in (("forest plot", args.forest), ("funnel plot", args.funnel)):
        if path:
            lines.append(f"wrote {name} to {path}")
    print("\n".join(lines).rstrip())
    return 0


def _cmd_dependent(args, table: pd.DataFrame, es: pd.DataFrame) -> int:
    """``--effect-id`` (three-level model) and/or ``--robust`` (CR2 inference by study)."""
    from rjtrial.meta import pool, pool_multilevel, robust

    study = args.study if args.study is not None else ("study" if "study" in table.columns else None)
    if study is None:
        raise DataError("--effect-id and --robust need a study column (name it with --study)", table=args.studies)
    if args.subgroup is not None:
        raise DataError("--subgroup cannot be combined with --effect-id or --robust", table=args.studies)
    es = es.copy()
    es["_study"] = es.index.to_numpy()
    if args.effect_id is not None:
        if args.effect_id not in es.columns:
            raise DataError(
                f"no column {args.effect_id!r} for --effect-id (columns: {', '.join(map(str, table.columns))})",
                table=args.studies,
            )
        if args.method not in MULTILEVEL_METHODS:
            raise DataError(
                f"--effect-id fits a multilevel model: --method must be one of "
                f"{', '.join(MULTILEVEL_METHODS)}, not {args.method}",
                table=args.studies,
            )
        if args.test not in MULTILEVEL_TESTS:
            raise DataError(
                f"--effect-id: --test must be one of {', '.join(MULTILEVEL_TESTS)}, not {args.test}", table=args.studies
            )
        es = es.rename(columns={"_study": study}) if study not in es.columns else es.assign(**{study: es["_study"]})
        res = pool_multilevel(
            es, levels=[study, args.effect_id], method=args.method, test=args.test, rho=args.rho, alpha=args.alpha
        )
    else:
        if args.rho is not None:
            raise DataError("--rho needs --effect-id", table=args.studies)
        es = es.rename(columns={"_study": study}) if study not in es.columns else es.assign(**{study: es["_study"]})
        res = pool(es, method=args.method, test=args.test, alpha=args.alpha)
    rob = robust(res, cluster=study) if args.robust else None
    if args.json:
        out = {
            "measure": args.measure,
            "model": res.to_dict()
            if hasattr(res, "to_dict") and args.effect_id
            else {
                "method": res.method,
                "test": res.test,
                "alpha": res.alpha,
                "pooled": _records(res.summary_frame()),
                "heterogeneity": {k: _clean(getattr(res, k)) for k in ("tau2", "i2", "q", "q_df", "q_p_value")},
            },
            "robust": rob.to_dict() if rob is not None else None,
        }
        if args.exponentiate:
            out["exponentiated"] = _records(_exponentiated((rob if rob is not None else res).summary_frame()))
        print(json.dumps(out, indent=2))
        return 0
    text = res.format() if args.effect_id is not None else res.format_summary()
    lines = [text]
    if rob is not None:
        lines += ["", rob.format()]
    if args.exponentiate:
        lines += ["", *_exponentiated_lines((rob if rob is not None else res).summary_frame(), args.measure)]
    print("\n".join(lines))
    return 0


def _mu_prior(text: str | None):
    """``--mu-prior MEAN,SD`` as (mean, sd), or None."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        mean, sd = (float(part) for part in parts)
    except ValueError:
        raise CommandError(f"--mu-prior must be MEAN,SD (two numbers, e.g. 0,4), got {text!r}") from None
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        raise CommandError(f"--mu-prior MEAN,SD needs a finite mean and a positive SD, got {text!r}")
    return mean, sd


def _cmd_bayes(args, es: pd.DataFrame) -> int:
    """``--bayes``: :func:`rjtrial.meta.bayes` on the table's effect sizes."""
    from rjtrial.meta import bayes

    options = {
        name: value
        for name, value in (("tau_prior", args.tau_prior), ("tau_scale", args.tau_scale), ("interval", args.interval))
        if value is not None
    }
    res = bayes(es, mu_prior=_mu_prior(args.mu_prior), alpha=args.alpha, **options)
    figures = {}
    for name, path, draw in (
        ("forest", args.forest, lambda r: r.plot_forest()),
        ("posterior", args.posterior, lambda r: r.plot()),
    ):
        if path:
            import matplotlib

            matplotlib.use("Agg")
            write_figure(draw(res), path)
            figures[name] = path
    if args.json:
        print(json.dumps({"measure": args.measure, "bayes": res.to_dict(), "files": figures}, indent=2))
        return 0
    lines = [res.format()]
    lines += [f"wrote {name} plot to {path}" for name, path in figures.items()]
    print("\n".join(lines))
    return 0
