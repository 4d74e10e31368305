"""A table of studies -> the effect-size frame :func:`rjtrial.meta.pool` takes.

:func:`effects_from_table` reads one row per study holding either ready-made effect sizes
(``estimate`` and ``variance`` or ``std_error``) or summary data that :mod:`rjtrial.effects`
turns into effect sizes for the given measure, in columns named as the measure's function
names its inputs (:data:`MEASURE_COLUMNS`, from :data:`rjtrial.effects.MEASURES`), e.g.

* ``events_treatment, n_treatment, events_control, n_control`` for ``log_risk_ratio``,
  ``log_odds_ratio``, ``risk_difference``, ``peto_log_odds_ratio``, ``arcsine_risk_difference``;
* ``mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control`` for
  ``hedges_g``, ``cohens_d``, ``mean_difference``, ``log_ratio_of_means``;
* ``events_treatment, person_time_treatment, events_control, person_time_control`` for
  ``log_incidence_rate_ratio``, ``incidence_rate_difference``;
* ``events, n`` for the proportions, ``events, person_time`` for the incidence rates,
  ``correlation, n`` for ``correlation`` and ``fisher_z``; the standardised mean changes take
  ``mean_before, mean_after, n, sd_before`` (``sd_after`` for change scores) and
  ``correlation``.

An optional ``study`` column labels the rows. Every value is checked; an error names the
table, the row and the column. ``rjtrial meta`` is this plus :func:`rjtrial.meta.pool`.
"""

from __future__ import annotations

import pandas as pd

from rjtrial.effects import MEASURES as EFFECT_MEASURES
from rjtrial.errors import DataError

__all__ = ["MEASURE_COLUMNS", "effects_from_table"]

#: The columns of summary data each measure needs: its inputs in :data:`rjtrial.effects.MEASURES`.
MEASURE_COLUMNS = {name: entry.inputs for name, entry in EFFECT_MEASURES.items()}
MEASURES = tuple(MEASURE_COLUMNS) + ("other",)

#: Largest relative difference between std_error**2 and variance, when both are given, that
#: rounding explains (each to three significant digits: up to about 1.5%).
AGREEMENT = 0.02


def effects_from_table(
    table: pd.DataFrame,
    *,
    measure: str,
    study: str | None = None,
    source: str = "STUDIES.csv",
    repeated_studies: bool = False,
) -> pd.DataFrame:
    """The effect-size frame of a studies table (see the module docstring).

    Every value is checked before the rows are labelled by study, so that an error names
    ``source``, the table's row (its index label: the file's row when read by ``rjtrial meta``) and the
    column: text or a blank where a number is needed, a variance or standard error that is
    not positive, ``std_error`` and ``variance`` that disagree beyond rounding
    (``AGREEMENT``), values too extreme to pool, fractional or negative counts, a
    missing or repeated study label (``repeated_studies=True`` allows several rows per study:
    several effect sizes of one study, for a multilevel model or cluster-robust inference).
    """
    from rjtrial import effects
    from rjtrial._checks import in_table, numeric
    from rjtrial.meta._data import prepare

    label = study if study is not None else ("study" if "study" in table.columns else None)
    if label is not None:
        if label not in table.columns:
            raise DataError(f"no column {label!r} (columns: {', '.join(map(str, table.columns))})", table=source)
        _check_labels(table, label, source, repeated=repeated_studies)
    try:
        if "estimate" in table.columns and ("variance" in table.columns or "std_error" in table.columns):
            frame = table.copy()
            frame["estimate"] = numeric(table, "estimate", role="estimate", table=source)
            if "std_error" in table.columns:
                se = numeric(table, "std_error", role="std_error", table=source)
                _positive(table, se, "std_error", source)
                _poolable_std_error(table, se, source)
            if "variance" in table.columns:
                frame["variance"] = numeric(table, "variance", role="variance", table=source)
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
            raise DataError(f"measure {measure!r} needs the columns estimate and variance (or std_error)", table=source)
        needed = MEASURE_COLUMNS[measure]
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise DataError(
                f"--measure {measure} needs columns {', '.join(needed)} (or estimate and variance); "
                f"missing {', '.join(missing)}",
                table=source,
            )
        es = effects.effect_size(table, measure=measure, **{c: c for c in needed}, na_action="raise")
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


def _check_labels(table: pd.DataFrame, label: str, source: str, *, repeated: bool = False) -> None:
    import numpy as np

    labels = table[label]
    bad = labels.isna().to_numpy()
    if bad.any():
        raise DataError("missing study label", table=source, row=table.index[int(np.flatnonzero(bad)[0])], column=label)
    twice = labels.duplicated().to_numpy()
    if twice.any() and not repeated:
        i = int(np.flatnonzero(twice)[0])
        first = table.index[int(np.flatnonzero((labels == labels.iloc[i]).to_numpy())[0])]
        raise DataError(
            f"study {labels.iloc[i]!r} appears twice (first on row {first}): each row is one study; "
            "give each a distinct label",
            table=source,
            row=table.index[i],
            column=label,
        )


def _positive(table: pd.DataFrame, values, column: str, source: str) -> None:
    import numpy as np

    bad = np.flatnonzero(values <= 0)
    if bad.size:
        raise DataError(
            f"{column} must be positive, got {values[bad[0]]:g}",
            table=source,
            row=table.index[int(bad[0])],
            column=column,
        )


def _poolable_std_error(table: pd.DataFrame, se, source: str) -> None:
    import numpy as np

    from rjtrial.meta._data import VARIANCE_RANGE

    low, high = VARIANCE_RANGE
    with np.errstate(over="ignore", under="ignore"):
        variance = se**2
    bad = np.flatnonzero((variance < low) | (variance > high))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"std_error {se[i]:g} is too {'small' if variance[i] < low else 'large'} to pool (its square "
            f"between {low:g} and {high:g}): is it on the measure's scale?",
            table=source,
            row=table.index[i],
            column="std_error",
        )


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
            table=source,
            row=table.index[i],
            column="std_error",
        )
