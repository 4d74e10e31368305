"""What the outcome of a follow-up table is: the definition that travels with it.

:func:`rjtrial.followup.build` records how it counted reoffending in the table's ``attrs``
(window, date basis, conviction lag, extraction date, preset...). A CSV file loses
``attrs``, so the definition is also written beside the table as a small JSON file
(:func:`write_definition`, :func:`read_definition`), and ``rjtrial analyse`` and the report
print it (:func:`describe`): a reader of the results must know what "reoffended" meant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

__all__ = ["DEFINITION_KEYS", "definition", "definition_path", "describe", "read_definition", "write_definition"]

#: The keys of a follow-up table's ``attrs`` that define its outcome.
DEFINITION_KEYS = (
    "preset",
    "window_days",
    "date_basis",
    "conviction_lag_days",
    "extraction_date",
    "extraction_date_source",
    "followup_cutoff",
    "prior_window_days",
    "proven_within_days",
    "offence_types",
    "time_unit",
    "rjtrial_version",
)


def definition(table: pd.DataFrame) -> dict[str, Any] | None:
    """The outcome definition recorded in a follow-up table's ``attrs`` (None if it has none)."""
    attrs = getattr(table, "attrs", {}) or {}
    if "window_days" not in attrs:
        return None
    return {key: attrs.get(key) for key in DEFINITION_KEYS}


def describe(defn: Mapping[str, Any] | None) -> str:
    """The definition in one sentence, e.g. "Any reoffence dated by the offence within 730 days of random
    assignment, counted if convicted by 2027-06-30 minus a 90-day conviction lag (records extracted
    2027-06-30)"."""
    if not defn:
        return "Outcome definition not recorded with this table (built elsewhere, or its definition file is missing)"
    basis = {"offence": "dated by the offence", "conviction": "dated by the conviction"}.get(
        str(defn.get("date_basis")), "dated"
    )
    parts = [f"Any reoffence {basis}, within {defn.get('window_days')} days of random assignment"]
    if defn.get("proven_within_days") is not None:
        parts.append(f"proven within a further {defn['proven_within_days']} days")
    if defn.get("offence_types"):
        parts.append("offence types " + ", ".join(map(str, defn["offence_types"])))
    extraction = defn.get("extraction_date")
    if extraction:
        source = " (today: no extraction date was given)" if defn.get("extraction_date_source") == "today" else ""
        lag = defn.get("conviction_lag_days") or 0
        cut = f", follow-up censored at {defn.get('followup_cutoff')} ({lag}-day conviction lag)" if lag else ""
        parts.append(f"records extracted {extraction}{source}{cut}")
    if defn.get("preset"):
        parts.append(f"preset {defn['preset']}")
    return "; ".join(parts)


def definition_path(table_path: str | Path) -> Path:
    """Where the definition of a table file lives: ``followup.csv`` -> ``followup.outcome.json``."""
    path = Path(table_path)
    return path.with_name(path.stem + ".outcome.json")


def write_definition(table: pd.DataFrame, table_path: str | Path) -> Path | None:
    """Write the table's definition beside its file (owner-only, atomic); None if it has none."""
    from rjtrial._files import write_private

    defn = definition(table)
    if defn is None:
        return None
    return write_private(definition_path(table_path), json.dumps(defn, indent=2) + "\n")


def read_definition(table_path: str | Path) -> dict[str, Any] | None:
    """The definition written beside a table file, or None when there is none (or it is unreadable)."""
    path = definition_path(table_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {key: data.get(key) for key in DEFINITION_KEYS} if isinstance(data, dict) else None
