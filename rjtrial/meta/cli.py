"""``rjtrial meta STUDIES.csv``: pool a table of studies from the command line.

The CSV has one row per study and either

* ready-made effect sizes: ``estimate`` and ``variance`` (or ``std_error``), with
  ``--measure`` naming what they are (e.g. ``cohens_d``); or
* summary data, turned into effect sizes by :mod:`rjtrial.effects` according to
  ``--measure``: ``events_treatment, n_treatment, events_control, n_control`` for
  ``log_risk_ratio``, ``log_odds_ratio``, ``risk_difference``; ``mean_treatment,
  sd_treatment, n_treatment, mean_control, sd_control, n_control`` for ``hedges_g``,
  ``cohens_d``; ``events_treatment, person_time_treatment, events_control,
  person_time_control`` for ``log_incidence_rate_ratio``.

An optional ``study`` column labels the rows (``--study`` names another one).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from typing import TYPE_CHECKING

from rjtrial.errors import DataError, RjtrialError

if TYPE_CHECKING:
    import pandas as pd

# numpy, pandas and rjtrial.meta are imported when the command runs, not when the
# parser is built: `rjtrial --help` must not pay for scipy.stats.

BINARY = ("events_treatment", "n_treatment", "events_control", "n_control")
MEANS = ("mean_treatment", "sd_treatment", "n_treatment", "mean_control", "sd_control", "n_control")
RATES = ("events_treatment", "person_time_treatment", "events_control", "person_time_control")
MEASURE_COLUMNS = {
    "log_risk_ratio": BINARY, "log_odds_ratio": BINARY, "risk_difference": BINARY,
    "hedges_g": MEANS, "cohens_d": MEANS, "log_incidence_rate_ratio": RATES,
}
MEASURES = tuple(MEASURE_COLUMNS) + ("log_hazard_ratio", "mean_difference", "other")
#: rjtrial.meta.pooling.METHODS and rjtrial.meta.regression.TESTS (a test keeps them equal).
METHODS = ("FE", "MH", "Peto", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
TESTS = ("z", "knha")


def add_parser(subparsers) -> None:
    """Add the ``meta`` command to the ``rjtrial`` command-line parser."""
    help_text = "meta-analysis of a CSV of studies (pooled estimate, heterogeneity, bias tests)"
    p = subparsers.add_parser("meta", help=help_text, description=help_text)
    p.add_argument("studies", metavar="STUDIES.csv", help="one row per study (see rjtrial.meta.cli)")
    p.add_argument("--measure", required=True, choices=MEASURES, metavar="MEASURE",
                   help=f"effect measure: {', '.join(MEASURES)}")
    p.add_argument("--method", default="REML", choices=METHODS, metavar="METHOD",
                   help=f"pooling method: {', '.join(METHODS)} (default REML)")
    p.add_argument("--test", default="z", choices=TESTS, help="z (default) or knha (Knapp-Hartung)")
    p.add_argument("--study", default=None, metavar="COLUMN", help="column of study labels (default: study)")
    p.add_argument("--subgroup", default=None, metavar="COLUMN", help="column of subgroup labels")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05)")
    p.add_argument("--forest", metavar="FILE.png", help="write a forest plot")
    p.add_argument("--funnel", metavar="FILE.png", help="write a funnel plot (with trim-and-fill)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_meta)


def _read(path: str) -> pd.DataFrame:
    """The studies table, its rows labelled 1, 2, ... as the user counts them (under the header)."""
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise RjtrialError(f"{path}: no such file")
    try:
        table = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the CSV ({str(exc).splitlines()[0]})", table=path) from None
    if len(table) == 0:
        raise DataError("no study rows", table=path)
    table.index = pd.RangeIndex(1, len(table) + 1)
    return table


#: Largest relative difference between std_error**2 and variance, when both are given, that
#: rounding explains (each to three significant digits: up to about 1.5%).
AGREEMENT = 0.02


def effects_from_table(table: pd.DataFrame, *, measure: str, study: str | None = None,
                       source: str = "STUDIES.csv") -> pd.DataFrame:
    """The effect-size frame of a studies table (see the module docstring).

    Every value is checked before the rows are labelled by study, so that an error names
    ``source``, the table's row (its index label: the file's row for :func:`_read`) and the
    column: text or a blank where a number is needed, a variance or standard error that is
    not positive, ``std_error`` and ``variance`` that disagree beyond rounding
    (:data:`AGREEMENT`), values too extreme to pool, fractional or negative counts, a
    missing or repeated study label.
    """
    from rjtrial import effects
    from rjtrial._checks import _numeric, in_table
    from rjtrial.meta._data import prepare

    label = study if study is not None else ("study" if "study" in table.columns else None)
    if label is not None:
        if label not in table.columns:
            raise DataError(f"no column {label!r} (columns: {', '.join(map(str, table.columns))})", table=source)
        _check_labels(table, label, source)
    try:
        if "estimate" in table.columns and ("variance" in table.columns or "std_error" in table.columns):
            frame = table.copy()
            frame["estimate"] = _numeric(table, "estimate", role="estimate", table=source)
            if "std_error" in table.columns:
                se = _numeric(table, "std_error", role="std_error", table=source)
                _positive(table, se, "std_error", source)
                _poolable_std_error(table, se, source)
            if "variance" in table.columns:
                frame["variance"] = _numeric(table, "variance", role="variance", table=source)
                _positive(table, frame["variance"].to_numpy(), "variance", source)
            else:
                frame["variance"] = se**2
            frame.attrs["measure"] = measure
            prepare(frame)  # extreme values, named by the file's row
            if "variance" in table.columns and "std_error" in table.columns:
                _agree(table, se, frame["variance"].to_numpy(), source)
            es = frame.set_index(label) if label is not None else frame
            es.attrs["measure"] = measure
            return es
        if measure not in MEASURE_COLUMNS:
            raise DataError(f"measure {measure!r} needs the columns estimate and variance (or std_error)",
                            table=source)
        needed = MEASURE_COLUMNS[measure]
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise DataError(f"--measure {measure} needs columns {', '.join(needed)} (or estimate and variance); "
                            f"missing {', '.join(missing)}", table=source)
        es = getattr(effects, measure)(table, **{c: c for c in needed})
        prepare(es)
    except DataError as exc:
        raise (in_table(exc, source) if exc.table != source else exc) from None
    extra = [c for c in table.columns if c not in needed and c != label]
    for column in extra:
        es[column] = table[column].to_numpy()
    if label is not None:
        es.index = table[label].rename("study").to_numpy()
        es.index.name = "study"
    return es


def _check_labels(table: pd.DataFrame, label: str, source: str) -> None:
    import numpy as np

    labels = table[label]
    bad = labels.isna().to_numpy()
    if bad.any():
        raise DataError("missing study label", table=source, row=table.index[int(np.flatnonzero(bad)[0])],
                        column=label)
    twice = labels.duplicated().to_numpy()
    if twice.any():
        i = int(np.flatnonzero(twice)[0])
        first = table.index[int(np.flatnonzero((labels == labels.iloc[i]).to_numpy())[0])]
        raise DataError(f"study {labels.iloc[i]!r} appears twice (first on row {first}): each row is one study; "
                        "give each a distinct label", table=source, row=table.index[i], column=label)


def _positive(table: pd.DataFrame, values, column: str, source: str) -> None:
    import numpy as np

    bad = np.flatnonzero(values <= 0)
    if bad.size:
        raise DataError(f"{column} must be positive, got {values[bad[0]]:g}", table=source,
                        row=table.index[int(bad[0])], column=column)


def _poolable_std_error(table: pd.DataFrame, se, source: str) -> None:
    import numpy as np

    from rjtrial.meta._data import VARIANCE_RANGE

    low, high = VARIANCE_RANGE
    with np.errstate(over="ignore", under="ignore"):
        variance = se**2
    bad = np.flatnonzero((variance < low) | (variance > high))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"std_error {se[i]:g} is too {'small' if variance[i] < low else 'large'} to pool (its square "
                        f"between {low:g} and {high:g}): is it on the measure's scale?",
                        table=source, row=table.index[i], column="std_error")


def _agree(table: pd.DataFrame, se, variance, source: str) -> None:
    import numpy as np

    with np.errstate(over="ignore"):
        apart = np.abs(se**2 - variance) > AGREEMENT * np.maximum(se**2, variance)
    bad = np.flatnonzero(apart)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"std_error {se[i]:g} squared is {se[i] ** 2:g}, but variance is {variance[i]:g}: the two "
            f"columns disagree beyond rounding ({100 * AGREEMENT:g}%); give one of them",
            table=source, row=table.index[i], column="std_error",
        )


def _clean(value):
    import numpy as np

    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{"study" if frame.index.name in (None, "study") else frame.index.name: _clean(idx),
             **{k: _clean(v) for k, v in row.items()}} for idx, row in zip(frame.index, frame.to_dict("records"))]


def _save(figure, path: str) -> None:
    """A figure, written as every output is: owner-only, whole or not at all."""
    import io

    import matplotlib.pyplot as plt

    from rjtrial._files import write_private

    from pathlib import Path

    buffer = io.BytesIO()  # the format from the file's extension (png, pdf, svg...), as savefig does
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=150, bbox_inches="tight")
    plt.close(figure)
    write_private(path, buffer.getvalue())


#: The bias diagnostics, in the order they are printed, with their labels.
DIAGNOSTICS = {"egger": "Egger's regression test", "begg": "Begg's rank correlation",
               "trim_and_fill": "Trim-and-fill", "fail_safe_n": "Fail-safe N (Rosenthal)"}


def _diagnostics(res) -> dict[str, dict]:
    """Each bias diagnostic, or why it cannot be computed: one that fails never sinks the others
    or the pooled estimate. With every standard error equal (equal-sized trials), Egger's
    regression has a constant predictor, Begg's rank correlation nothing to rank and
    trim-and-fill no side to estimate."""
    import numpy as np

    from rjtrial.meta import begg, egger, fail_safe_n, trim_and_fill

    vi = res.vi[np.isfinite(res.yi) & np.isfinite(res.vi)]
    equal = bool(np.ptp(vi) <= 1e-12 * np.max(vi))

    def egger_values():
        e = egger(res)
        return {"statistic": e.statistic, "p_value": e.p_value, "limit_estimate": e.limit_estimate}

    def begg_values():
        b = begg(res)
        return {"statistic": b.statistic, "p_value": b.p_value}

    def trim_and_fill_values():
        t = trim_and_fill(res)
        return {"k0": t.k0, "side": t.side, "estimate": t.estimate, "std_error": t.std_error,
                "ci_lower": t.ci_lower, "ci_upper": t.ci_upper, "tau2": t.tau2}

    def fail_safe_n_values():
        f = fail_safe_n(res)
        return {"n": f.n, "method": f.method, "p_value": f.p_value}

    computed = {"egger": egger_values, "begg": begg_values, "trim_and_fill": trim_and_fill_values,
                "fail_safe_n": fail_safe_n_values}
    out: dict[str, dict] = {}
    for name, compute in computed.items():
        if equal and name != "fail_safe_n":
            out[name] = {"computable": False, "reason": "all standard errors are equal"}
            continue
        try:
            values = compute()
        except (ValueError, ArithmeticError, RjtrialError, np.linalg.LinAlgError) as exc:
            out[name] = {"computable": False, "reason": str(exc)}
            continue
        if any(isinstance(v, float) and not math.isfinite(v) for k, v in values.items() if k in ("statistic", "n")):
            out[name] = {"computable": False, "reason": "its statistic is undefined for these studies"}
            continue
        out[name] = {"computable": True, **values}
    return out


def _diagnostic_line(name: str, d: dict) -> str:
    label = DIAGNOSTICS[name]
    if not d["computable"]:
        return f"  {label}: not computable: {d['reason']}"
    if name == "egger":
        return (f"  {label}: z = {d['statistic']:.4f}, p = {d['p_value']:.4f}"
                f" (limit estimate {d['limit_estimate']:.4f})")
    if name == "begg":
        return f"  {label}: Kendall's tau = {d['statistic']:.4f}, p = {d['p_value']:.4f}"
    if name == "trim_and_fill":
        return (f"  {label}: {d['k0']} {'study' if d['k0'] == 1 else 'studies'} imputed on the {d['side']}; "
                f"adjusted estimate {d['estimate']:.4f} [{d['ci_lower']:.4f}, {d['ci_upper']:.4f}]")
    return f"  {label}: {d['n']}"


def cmd_meta(args) -> int:
    """Run ``rjtrial meta``; returns the exit code (0)."""
    from rjtrial.meta import pool

    table = _read(args.studies)
    es = effects_from_table(table, measure=args.measure, study=args.study, source=args.studies)
    if args.subgroup is not None and args.subgroup not in es.columns:
        raise DataError(f"no column {args.subgroup!r} for --subgroup", table=args.studies)
    res = pool(es, method=args.method, test=args.test, subgroup=args.subgroup, alpha=args.alpha)
    if not all(math.isfinite(getattr(res, name)) for name in ("estimate", "std_error")):
        raise DataError(f"the pooled estimate is {res.estimate} (standard error {res.std_error}): the values are too "
                        "extreme to pool in double precision", table=args.studies)
    diagnostics: dict = {}
    notes: list[str] = []
    inverse_variance = res.method not in ("MH", "Peto")
    if inverse_variance and res.k >= 3:
        diagnostics = _diagnostics(res)
    else:
        notes.append("bias diagnostics need an inverse-variance model and at least 3 studies")
    if args.forest:
        import matplotlib

        matplotlib.use("Agg")
        ax = res.plot_forest()
        _save(ax.figure, args.forest)
    if args.funnel:
        import matplotlib

        matplotlib.use("Agg")
        ax = res.plot_funnel(trim_and_fill=diagnostics.get("trim_and_fill", {}).get("computable", False))
        _save(ax.figure, args.funnel)
    if args.json:
        out = {
            "measure": args.measure, "method": res.method, "test": res.test, "alpha": res.alpha,
            "pooled": _records(res.summary_frame()),
            "heterogeneity": {k: _clean(getattr(res, k)) for k in ("tau2", "i2", "h2", "q", "q_df", "q_p_value")},
            "studies": _records(res.study_frame()),
            "diagnostics": {k: {kk: _clean(vv) for kk, vv in v.items()} for k, v in diagnostics.items()},
            "files": {k: v for k, v in (("forest", args.forest), ("funnel", args.funnel)) if v},
        }
        print(json.dumps(out, indent=2))
        return 0
    lines = [res.format_summary(), ""]
    if diagnostics:
        lines += ["Small-study effects:", *(_diagnostic_line(name, value) for name, value in diagnostics.items())]
    lines += notes
    for name, path in (("forest plot", args.forest), ("funnel plot", args.funnel)):
        if path:
            lines.append(f"wrote {name} to {path}")
    print("\n".join(lines).rstrip())
    return 0
