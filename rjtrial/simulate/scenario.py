"""Scenarios for the trial generator: a synthetic trial's design and data-generating process.

A scenario is a TOML file (see ``synthetic/*.toml``) loaded and validated by
:func:`load_scenario`. Every problem is reported at once, each naming its key, in one
:class:`ScenarioError` (as :mod:`rjtrial.protocol` does for protocols).

Sections
--------
==================  =====================================================================
``[scenario]``      ``id``, ``name``, ``description``, ``sources`` (list of citations),
                    optional ``base`` (another scenario file this one amends)
``[protocol]``      ``path`` to a protocol TOML (relative to the scenario file), or the
                    protocol's own tables inline (``[protocol.trial]``, ...)
``[strata.NAME]``   how each protocol stratum is derived from a referral: ``source`` =
                    ``"site"``, ``"offence_type"``, ``"sex"`` (optional ``map`` of
                    value -> level), ``"age"`` (``breaks``: one fewer than the levels) or
                    ``"shares"`` (``shares``: drawn independently of everything else)
``[referrals]``     ``randomised`` (trial size), ``rate_per_month`` (referrals arriving),
                    ``start`` (date of the first referral; or see ``[extraction]``),
                    ``sites`` and ``offence_mix`` (shares of the index offence types),
                    optional ``joins`` (site = months after the first referral when it
                    starts referring: earlier referrals are shared among the other sites,
                    and a registry adds the site by a protocol amendment then),
                    optional ``joins`` (site = months after the first referral when it
                    starts referring: earlier referrals are shared among the other sites,
                    and a registry adds the site by a protocol amendment then)
``[eligibility]``   for each protocol question id, the probability that the answer is the
                    eligible one (answers independent)
``[treatment]``     ``conference_held`` = P(conference held | assigned to a conference),
                    ``days_to_conference`` (distribution)
``[offenders]``     ``age_mean``, ``age_sd``, ``age_min``, ``age_max`` (truncated normal,
                    whole years), ``male`` (share)
``[index_offence]`` ``days_before_assignment`` (distribution), ``convicted`` (probability, or
                    a table by arm, e.g. for diversion from court),
                    ``sentence_days_after_assignment`` (distribution), ``custody``
                    (P(custody | index conviction))
``[reoffending]``   ``annual_rate`` (offences per year at liberty of the reference person),
                    ``reference_age``, ``log_rate_per_year_of_age``, ``log_rate_male``,
                    ``log_rate_by_offence`` and ``log_rate_by_site`` (tables, missing = 0),
                    ``frailty_variance`` (gamma frailty, mean 1), ``hazard_ratio_treated``
                    (among those who had a conference), ``offence_mix`` (types of
                    offences committed)
``[custody]``       ``probability`` (P(custody | conviction): a number or a table by offence
                    type), ``length_days`` (distribution)
``[conviction]``    ``never_convicted`` (share of offences never convicted), ``lag_days``
                    (distribution of days at liberty from offence to conviction)
``[censoring]``     ``annual_rate`` of death or emigration
``[extraction]``    ``date`` of the records extract (not in the future), optional
                    ``days_after_last_assignment`` (places the trial by counting back from
                    the extraction date; exactly one of this and ``referrals.start``),
                    ``include_unconvicted`` (default false: the extract holds convictions)
``[analysis]``      the analysis plan the truth refers to: ``window_days`` (730),
                    ``conviction_lag_days`` (183), ``prior_window_days`` (730)
``[victims]``       ``per_offender`` (mean victims interviewed per randomised offender),
                    ``satisfied_conference``, ``satisfied_otherwise``,
                    ``recommend_conference``, ``recommend_otherwise``, and the IES-R model
                    ``ies_r_baseline_mean``, ``ies_r_baseline_sd``,
                    ``ies_r_followup_intercept``, ``ies_r_followup_slope``,
                    ``ies_r_residual_sd``, ``ies_r_threshold``,
                    ``ies_r_risk_ratio_conference``
``[costs]``         ``currency``, ``conference_held``, ``assigned_not_held`` (per case)
==================  =====================================================================

Distributions (durations in days) are tables: ``{ distribution = "gamma", mean = 60,
shape = 2 }``; also ``"exponential"`` (``mean``), ``"lognormal"`` (``median``,
``sigma``), ``"uniform"`` (``low``, ``high``) and ``"fixed"`` (``value``).

Provenance
----------
Each parameter section may hold a ``provenance`` table naming, for each of its keys,
where the value comes from: a citation, or a text starting with ``"assumption"``.
:meth:`Scenario.provenance_frame` lists every parameter with its label and
:meth:`Scenario.unlabelled` those without one (the shipped scenarios have none).
A provenance entry for a key that does not exist is an error (it catches typos).
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

from rjtrial.protocol import Protocol
from rjtrial.simulate._sections import (  # noqa: F401  (re-exported: the format's public names)
    _NO_PROVENANCE,
    DAYS_PER_MONTH,
    DISTRIBUTIONS,
    PARAMETER_SECTIONS,
    SEXES,
    STRATUM_SOURCES,
    Analysis,
    Censoring,
    Conviction,
    Costs,
    Custody,
    Distribution,
    Extraction,
    IndexOffence,
    Offenders,
    Referrals,
    Reoffending,
    ScenarioError,
    StratumSource,
    Treatment,
    Victims,
)

__all__ = [
    "Distribution",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "PARAMETER_SECTIONS",
]


# ----------------------------------------------------------------------------- the scenario
@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Build with :func:`load_scenario` or :meth:`from_dict`.

    The sections are typed attributes (``scenario.reoffending.hazard_ratio_treated``);
    ``data`` keeps the validated TOML tables, from which :meth:`with_overrides` derives
    amended scenarios.
    """

    id: str
    name: str
    description: str
    sources: tuple[str, ...]
    protocol: Protocol
    strata: Mapping[str, StratumSource]
    referrals: Referrals
    eligibility: Mapping[str, float]
    treatment: Treatment
    offenders: Offenders
    index_offence: IndexOffence
    reoffending: Reoffending
    custody: Custody
    conviction: Conviction
    censoring: Censoring
    extraction: Extraction
    analysis: Analysis
    victims: Victims
    costs: Costs
    provenance: Mapping[str, str]
    data: Mapping[str, Any] = field(repr=False)
    source: str | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        base_dir: str | Path | None = None,
        source: str | None = None,
        today: _dt.date | None = None,
    ) -> "Scenario":
        """Validate a scenario given as nested dicts (parsed TOML); raise ScenarioError."""
        from rjtrial.simulate._validate import build

        problems: list[str] = []
        fields = build(
            copy.deepcopy(dict(data)), problems, Path(base_dir) if base_dir else None, today or _dt.date.today()
        )
        if problems or fields is None:
            raise ScenarioError(problems, source=source)
        return cls(**fields, source=source)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Scenario":
        """A new scenario with dotted keys replaced, e.g. ``{"reoffending.hazard_ratio_treated": 1.0}``.

        Keys under ``protocol.`` amend the protocol (a protocol given by path is
        inlined first). The provenance of an overridden key becomes ``"override"``; a
        value of ``None`` removes the key.
        """
        if not overrides:
            return self
        data = copy.deepcopy(dict(self.data))
        problems = []
        for dotted, value in overrides.items():
            parts = str(dotted).split(".")
            if len(parts) < 2 or not all(parts):
                problems.append(f"override {dotted!r}: expected SECTION.KEY")
                continue
            if parts[0] == "protocol" and "path" in data.get("protocol", {}):
                data["protocol"] = self.protocol.to_dict()
            table = data
            for part in parts[:-1]:
                table = table.setdefault(part, {})
                if not isinstance(table, dict):
                    problems.append(f"override {dotted!r}: {part} is not a table")
                    break
            else:
                labels = data[parts[0]].setdefault("provenance", {}) if parts[0] in PARAMETER_SECTIONS else {}
                if value is None:  # TOML has no null: None removes the key
                    table.pop(parts[-1], None)
                    if len(parts) == 2:
                        labels.pop(parts[1], None)
                else:
                    table[parts[-1]] = value
                    if parts[0] in PARAMETER_SECTIONS and len(parts) == 2:
                        labels[parts[1]] = "override"
        if problems:
            raise ScenarioError(problems, source=self.source)
        return Scenario.from_dict(data, source=self.source)

    def with_null(self) -> "Scenario":
        """The same scenario with no treatment effect on reoffending (``hazard_ratio_treated = 1``)."""
        return self.with_overrides({"reoffending.hazard_ratio_treated": 1.0})

    # ------------------------------------------------------------------ reading
    @property
    def offence_types(self) -> tuple[str, ...]:
        """Every offence type: index offences first, then other types of reoffences."""
        types = list(self.referrals.offence_mix)
        types += [t for t in self.reoffending.offence_mix if t not in types]
        return tuple(types)

    @property
    def control_arm(self) -> str:
        return self.protocol.arms[0]

    @property
    def conference_arm(self) -> str:
        return self.protocol.arms[1]

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain data (the validated TOML tables, protocol included)."""
        out = copy.deepcopy(dict(self.data))
        out["protocol"] = self.protocol.to_dict()
        return out

    def fingerprint(self) -> str:
        """SHA-256 of the scenario's content (protocol by content, not path; provenance excluded)."""
        data = self.to_dict()
        for section in data.values():
            if isinstance(section, dict):
                section.pop("provenance", None)
        data.get("scenario", {}).pop("base", None)
        text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def parameters(self) -> dict[str, Any]:
        """Every parameter as ``{"section.key": value}``, in file order."""
        out = {}
        for section in PARAMETER_SECTIONS:
            for key, value in self.data.get(section, {}).items():
                if key != "provenance":
                    out[f"{section}.{key}"] = value
        return out

    def provenance_frame(self):
        """Columns ``parameter, value, provenance, kind`` (kind: source, assumption, override, unlabelled)."""
        import pandas as pd

        rows = []
        for key, value in self.parameters().items():
            label = self.provenance.get(key)
            if label is None:
                kind = "not_needed" if key in _NO_PROVENANCE else "unlabelled"
            elif label.lower().startswith("assumption"):
                kind = "assumption"
            elif label == "override":
                kind = "override"
            else:
                kind = "source"
            rows.append({"parameter": key, "value": value, "provenance": label, "kind": kind})
        return pd.DataFrame(rows, columns=["parameter", "value", "provenance", "kind"])

    def unlabelled(self) -> list[str]:
        """Parameters with no provenance label (neither a source nor ``assumption``)."""
        return [k for k in self.parameters() if k not in self.provenance and k not in _NO_PROVENANCE]


def load_scenario(
    path: str | os.PathLike[str], *, overrides: Mapping[str, Any] | None = None, strict: bool = False
) -> Scenario:
    """Load and validate a scenario file; raise :class:`ScenarioError` listing every problem.

    Parameters
    ----------
    path : str or path
        The scenario TOML file.
    overrides : dict, optional
        Dotted keys to replace, e.g. ``{"reoffending.hazard_ratio_treated": 1.0}``.
    strict : bool
        Also refuse parameters without a provenance label.

    Examples
    --------
    >>> s = load_scenario("synthetic/jrc-london-burglary.toml")
    >>> s.referrals.randomised, s.protocol.randomisation.method
    (167, 'stratified_blocks')
    >>> s.with_null().reoffending.hazard_ratio_treated
    1.0
    """
    path = Path(path)
    data = _read_with_base(path, [])
    scenario = Scenario.from_dict(data, base_dir=path.parent, source=str(path))
    if overrides:
        scenario = scenario.with_overrides(overrides)
    if strict and scenario.unlabelled():
        raise ScenarioError(
            [f"{k}: no provenance (add it to [{k.split('.')[0]}.provenance])" for k in scenario.unlabelled()],
            source=str(path),
        )
    return scenario


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([f"file not found: {path}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"cannot read {path}: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"not valid TOML: {exc}"], source=str(path)) from None
    protocol = data.get("protocol")
    if isinstance(protocol, dict) and isinstance(protocol.get("path"), str):
        protocol["path"] = str((path.parent / protocol["path"]).resolve())
    return data


def _read_with_base(path: Path, seen: list[Path]) -> dict:
    """Read a scenario file, merged over the file named by its ``scenario.base``."""
    resolved = path.resolve()
    if resolved in seen:
        raise ScenarioError([f"scenario.base: circular reference through {path}"], source=str(seen[0]))
    data = _read(path)
    base = data.get("scenario", {}).get("base") if isinstance(data.get("scenario"), dict) else None
    if base is None:
        return data
    if not isinstance(base, str):
        raise ScenarioError([f"scenario.base: must be a file name, got {base!r}"], source=str(path))
    parent = _read_with_base(path.parent / base, [*seen, resolved])
    if "protocol" in data:  # a protocol given here replaces the base's wholly
        parent.pop("protocol", None)
    merged = _deep_merge(parent, data)
    merged["scenario"]["base"] = str((path.parent / base).resolve())
    return merged


def _deep_merge(base: dict, top: Mapping) -> dict:
    """``top`` over ``base``, section by section: a key given in ``top`` replaces the base's
    value wholly (a distribution or a share table is never mixed with the base's), and its
    base provenance label is dropped unless ``top`` labels it again."""
    out = copy.deepcopy(base)
    for section, table in top.items():
        if isinstance(table, Mapping) and isinstance(out.get(section), dict) and section != "protocol":
            merged = out[section]
            labels = merged.get("provenance", {}) if isinstance(merged.get("provenance"), dict) else {}
            for key, value in table.items():
                if key == "provenance":
                    continue
                merged[key] = copy.deepcopy(value)
                labels.pop(key, None)
            if isinstance(table.get("provenance"), Mapping):
                labels.update(copy.deepcopy(dict(table["provenance"])))
            if labels:
                merged["provenance"] = labels
        else:
            out[section] = copy.deepcopy(table)
    return out
