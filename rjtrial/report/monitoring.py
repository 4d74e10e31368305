"""The report's interim-monitoring section: the group-sequential design and the looks taken.

The looks come from the registry's audit log (:meth:`rjtrial.registry.Registry.interim_looks`:
each was recorded by ``rjtrial monitor look`` with the numbers the committee saw), the design
from the file given to ``rjtrial report --design`` or, without it, from the settings recorded
with the looks. Nothing is recomputed from the data here: the section shows what was decided,
when, by whom, and on how many events.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from rjtrial.errors import RjtrialError
from rjtrial.monitor import SequentialDesign

__all__ = ["monitoring_section", "read_design"]

DECISIONS = {
    "efficacy": "stop for efficacy",
    "harm": "stop for harm",
    "futility": "futility bound crossed",
    "continue": "continue",
    "no_effect_shown": "final: no effect shown",
}


def read_design(source) -> SequentialDesign | None:
    """A design given as a :class:`~rjtrial.monitor.SequentialDesign`, its ``to_dict()``, or the path
    of its JSON file (``rjtrial monitor design -o``); None stays None."""
    if source is None or isinstance(source, SequentialDesign):
        return source
    if isinstance(source, dict):
        return SequentialDesign.from_dict(source)
    path = Path(source)
    if not path.is_file():
        raise RjtrialError(f"design file {path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RjtrialError(f"design file {path} is not JSON: {str(exc).splitlines()[0]}") from None
    return SequentialDesign.from_dict(data, source=f"design file {path}")


def _number(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


#: What a blinded report may say of a look's decision: that it continued, or the final analysis's
#: "no effect shown"; anything else (efficacy, harm, futility) says which way the arms differ.
BLINDED_DECISIONS = {"continue": "continue", "no_effect_shown": "final: no effect shown"}
#: A look's numbers that compare the arms: a blinded report leaves them out.
COMPARATIVE = ("statistic", "hazard_ratio", "ci_lower", "ci_upper", "cp_design", "cp_trend")


def monitoring_section(
    design: SequentialDesign | None, looks: Sequence[dict[str, Any]], *, blinded: bool = False
) -> dict | None:
    """The section's content, or None when there is neither a design nor a look.

    Returns a dict: ``design`` (settings line and per-look boundaries, or None), ``looks`` (one
    dict per look logged: number, date, who, events, fraction, statistic, hazard ratio and its
    repeated interval, boundary, decision, conditional power, audit entry), ``other_designs``
    (looks logged under a design other than the one shown: their number) and ``blinded``.

    On a blinded analysis (``blinded=True``) the looks keep when, by whom, on how many events and
    at which boundary, but lose every number comparing the arms (statistic, hazard ratio, its
    interval, conditional power) and any decision other than "continue" or the final "no effect
    shown": set beside the blinded estimate, the direction of an interim result would tell which
    code is which arm.
    """
    if design is None and looks:
        settings = looks[-1].get("design")
        if isinstance(settings, dict):
            try:
                design = SequentialDesign.from_dict({"settings": settings})
            except RjtrialError:
                design = None
    if design is None and not looks:
        return None
    shown = [x for x in looks if design is None or x.get("design_fingerprint") == design.fingerprint]
    rows = []
    for x in shown:
        rows.append(
            {
                "look": x.get("look"),
                "at": str(x.get("at", ""))[:10],
                "by": x.get("by"),
                "seq": x.get("seq"),
                "records_to": str((x.get("followup") or {}).get("extracted_on") or "")[:10],
                "events": x.get("events"),
                "fraction": _number(x.get("information_fraction")),
                "statistic": _number(x.get("statistic")),
                "hazard_ratio": _number(x.get("hazard_ratio")),
                "ci_lower": _number(x.get("ci_lower")),
                "ci_upper": _number(x.get("ci_upper")),
                "critical_value": _number(x.get("critical_value")),
                "efficacy_hazard_ratio": _number(x.get("efficacy_hazard_ratio")),
                "futility_hazard_ratio": _number(x.get("futility_hazard_ratio")),
                "decision": DECISIONS.get(str(x.get("decision")), str(x.get("decision"))),
                "cp_design": _number(x.get("conditional_power_design")),
                "cp_trend": _number(x.get("conditional_power_trend")),
                "final": bool(x.get("final")),
            }
        )
    if blinded:
        for row, x in zip(rows, shown):
            for name in COMPARATIVE:
                del row[name]
            row["decision"] = BLINDED_DECISIONS.get(str(x.get("decision")), "withheld while the analysis is blinded")
    out: dict[str, Any] = {"looks": rows, "other_designs": len(looks) - len(shown), "design": None, "blinded": blinded}
    if design is not None:
        frame = design.summary_frame()
        sided = "two-sided" if design.sides == 2 else "one-sided"
        futility = (
            "no futility boundary"
            if design.futility is None
            else f"{'binding' if design.binding else 'non-binding'} {design.futility} futility boundary"
        )
        out["design"] = {
            "summary": (
                f"{design.looks} looks, {design.spending} alpha spending (Lan–DeMets), {sided} alpha "
                f"{design.alpha:g}, power {design.power:g} to detect a hazard ratio of {design.hazard_ratio:g}; "
                f"{futility}"
            ),
            "max_events": design.max_events,
            "inflation_factor": design.inflation_factor,
            "two_sided": design.sides == 2,
            "has_futility": design.futility is not None,
            "rows": frame.to_dict(orient="records"),
            "fingerprint": design.fingerprint,
        }
    return out
