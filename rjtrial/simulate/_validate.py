"""Validation of scenario tables: every problem reported at once, each naming its key.

Used by :meth:`rjtrial.simulate.scenario.Scenario.from_dict`, which assembles the
:class:`~rjtrial.simulate.scenario.Scenario` from the fields :func:`build` returns (so this
module needs only the section types of :mod:`rjtrial.simulate._sections`); not a public module.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Mapping, TypeVar, cast

from rjtrial.errors import ProtocolError
from rjtrial.protocol import Protocol
from rjtrial.simulate._sections import (
    _STRUCTURAL,
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
    StratumSource,
    Treatment,
    Victims,
)

_T = TypeVar("_T")


def _pending(value: _T | None) -> _T:
    """A value read for a section object, typed as the object needs it.

    A required value a :class:`_Section` reads is None only where it has recorded a problem,
    and :func:`build` then returns None: the objects holding such a None are never used.
    """
    return cast(_T, value)


class _Section:
    """Reads one table, recording problems with ``section.key`` names."""

    def __init__(self, data: Mapping, name: str, problems: list[str], *, required: bool = True):
        self.name, self.problems = name, problems
        value = data.get(name)
        if value is None:
            if required:
                problems.append(f"{name}: missing section [{name}]")
            value = {}
        elif not isinstance(value, Mapping):
            problems.append(f"{name}: must be a table, got {type(value).__name__}")
            value = {}
        self.table = value
        self.used: set[str] = {"provenance"}

    def where(self, key: str) -> str:
        return f"{self.name}.{key}"

    def get(self, key, default=None, *, required=True):
        self.used.add(key)
        if key not in self.table:
            if required and default is None:
                self.problems.append(f"{self.where(key)}: missing")
            return default
        return self.table[key]

    def number(self, key, *, low=None, high=None, low_open=False, integer=False, default=None, required=True):
        value = self.get(key, default, required=required)
        if value is None:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if integer:
            ok = ok and float(value).is_integer()
        if ok and low is not None and (value < low or (low_open and value == low)):
            ok = False
        if ok and high is not None and value > high:
            ok = False
        if not ok:
            kind = "a whole number" if integer else "a number"
            bounds = []
            if low is not None:
                bounds.append(f"{'>' if low_open else '>='} {low}")
            if high is not None:
                bounds.append(f"<= {high}")
            self.problems.append(
                f"{self.where(key)}: must be {kind}{' ' + ' and '.join(bounds) if bounds else ''}, got {value!r}"
            )
            return None
        return int(value) if integer else float(value)

    def probability(self, key, **kw):
        return self.number(key, low=0.0, high=1.0, **kw)

    def shares(self, key, *, levels=None, required=True) -> dict[str, float] | None:
        value = self.get(key, required=required)
        if value is None:
            return None if required else {}
        where = self.where(key)
        if not isinstance(value, Mapping) or not value:
            self.problems.append(f"{where}: must be a table of name = share, got {value!r}")
            return None
        bad = [k for k, v in value.items() if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0]
        if bad:
            self.problems.append(f"{where}: shares of {bad} must be non-negative numbers")
            return None
        total = float(sum(value.values()))
        if abs(total - 1.0) > 1e-6:
            self.problems.append(f"{where}: shares must add up to 1, they add up to {total:.6g}")
            return None
        if levels is not None and set(value) != set(levels):
            self.problems.append(f"{where}: must give a share for each of {list(levels)}, got {list(value)}")
            return None
        return {str(k): float(v) for k, v in value.items()}

    def coefficients(self, key) -> dict[str, float]:
        value = self.get(key, {}, required=False)
        if not isinstance(value, Mapping) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value.values()
        ):
            self.problems.append(f"{self.where(key)}: must be a table of name = number, got {value!r}")
            return {}
        return {str(k): float(v) for k, v in value.items()}

    def distribution(self, key, *, default=None) -> Distribution | None:
        value = self.get(key, default)
        if value is None:
            return None
        where = self.where(key)
        if not isinstance(value, Mapping) or "distribution" not in value:
            self.problems.append(
                f"{where}: must be a table with a 'distribution' ({', '.join(DISTRIBUTIONS)}), got {value!r}"
            )
            return None
        name = value["distribution"]
        if name not in DISTRIBUTIONS:
            self.problems.append(f"{where}.distribution: unknown {name!r} (one of: {', '.join(DISTRIBUTIONS)})")
            return None
        needed = DISTRIBUTIONS[name]
        extra = sorted(set(value) - set(needed) - {"distribution"})
        missing = [k for k in needed if k not in value]
        if extra or missing:
            self.problems.append(
                f"{where}: {name} takes {', '.join(needed)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {extra}" if extra else "")
            )
            return None
        params = {}
        for k in needed:
            v = value[k]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                self.problems.append(f"{where}.{k}: must be a non-negative number, got {v!r}")
                return None
            params[k] = float(v)
        if name == "gamma" and params["shape"] <= 0:
            self.problems.append(f"{where}.shape: must be positive")
            return None
        if name == "uniform" and params["low"] > params["high"]:
            self.problems.append(f"{where}: low must not exceed high")
            return None
        return Distribution(name, params)

    def finish(self, *, provenance: dict[str, str] | None = None) -> None:
        unknown = [k for k in self.table if k not in self.used]
        for key in unknown:
            self.problems.append(
                f"{self.where(key)}: unknown key (expected: {', '.join(sorted(self.used - {'provenance'}))})"
            )
        if provenance is None:
            return
        labels = self.table.get("provenance", {})
        if not isinstance(labels, Mapping):
            self.problems.append(f'{self.name}.provenance: must be a table of key = "source or assumption"')
            return
        for key, label in labels.items():
            if key not in self.table or key == "provenance":
                self.problems.append(f"{self.name}.provenance.{key}: no parameter {key!r} in [{self.name}]")
            elif not isinstance(label, str) or not label.strip():
                self.problems.append(f"{self.name}.provenance.{key}: must be a citation or 'assumption...'")
            else:
                provenance[f"{self.name}.{key}"] = label


def _joins(ref: _Section, sites) -> dict[str, float]:
    """``referrals.joins``: site = months after the first referral when it starts referring (a protocol
    amendment adds it then); at least one site refers from the start."""
    value = ref.get("joins", {}, required=False)
    where = ref.where("joins")
    if not isinstance(value, Mapping):
        ref.problems.append(f"{where}: must be a table of site = months, got {value!r}")
        return {}
    out = {}
    for site, months in value.items():
        if sites is not None and site not in sites:
            ref.problems.append(f"{where}.{site}: not one of referrals.sites ({', '.join(sites)})")
        elif isinstance(months, bool) or not isinstance(months, (int, float)) or not 0 <= months < 1200:
            ref.problems.append(f"{where}.{site}: must be months from 0, got {months!r}")
        else:
            out[str(site)] = float(months)
    if sites is not None and out and all(out.get(s, 0.0) > 0 for s in sites):
        ref.problems.append(f"{where}: every site joins late; at least one must refer from the start")
    return {k: v for k, v in out.items() if v > 0}


def build(data: dict, problems: list[str], base_dir: Path | None, today) -> dict | None:
    """The fields of a :class:`~rjtrial.simulate.scenario.Scenario` (``source`` aside), or None
    when ``problems`` (appended to) is not empty. One step per section, in the file's order."""
    for key in data:
        if key not in PARAMETER_SECTIONS + _STRUCTURAL:
            problems.append(f"{key}: unknown section (expected: {', '.join(_STRUCTURAL + PARAMETER_SECTIONS)})")
    provenance: dict[str, str] = {}
    sid, name, description, sources = _head(data, problems)
    protocol = _protocol(data, problems, base_dir)
    ref = _Section(data, "referrals", problems)
    referrals = _referrals(ref, problems, provenance)
    eligibility = _eligibility(data, problems, provenance, protocol)
    treat = _Section(data, "treatment", problems)
    treatment = Treatment(
        treat.probability("conference_held"),
        _pending(treat.distribution("days_to_conference", default={"distribution": "fixed", "value": 0})),
    )
    treat.finish(provenance=provenance)
    offenders = _offenders(data, problems, provenance)
    index_offence = _index_offence(data, problems, provenance, list(protocol.arms) if protocol is not None else [])
    reoffending = _reoffending(data, problems, provenance, referrals)
    custody = _custody(data, problems, provenance, referrals, reoffending)
    con = _Section(data, "conviction", problems)
    conviction = Conviction(con.probability("never_convicted"), _pending(con.distribution("lag_days")))
    con.finish(provenance=provenance)
    cen = _Section(data, "censoring", problems)
    censoring = Censoring(cen.number("annual_rate", low=0))
    cen.finish(provenance=provenance)
    extraction = _extraction(data, problems, provenance, today, has_start="start" in ref.table)
    ana = _Section(data, "analysis", problems, required=False)
    analysis = Analysis(
        ana.number("window_days", low=1, integer=True, default=730, required=False),
        ana.number("conviction_lag_days", low=0, integer=True, default=183, required=False),
        ana.number("prior_window_days", low=0, integer=True, default=730, required=False),
    )
    ana.finish(provenance=provenance)
    victims = _victims(data, problems, provenance)
    costs = _costs(data, problems, provenance)
    strata = _strata(data, problems, protocol, referrals.sites, referrals.offence_mix)
    if problems:
        return None
    return dict(
        id=sid,
        name=name,
        description=description,
        sources=tuple(sources),
        protocol=protocol,
        strata=strata,
        referrals=referrals,
        eligibility=eligibility,
        treatment=treatment,
        offenders=offenders,
        index_offence=index_offence,
        reoffending=reoffending,
        custody=custody,
        conviction=conviction,
        censoring=censoring,
        extraction=extraction,
        analysis=analysis,
        victims=victims,
        costs=costs,
        provenance=provenance,
        data=data,
    )


def _head(data: dict, problems: list[str]):
    """``[scenario]``: id, name, description and sources."""
    head = _Section(data, "scenario", problems)
    sid = head.get("id")
    if sid is not None and (not isinstance(sid, str) or not sid.strip()):
        problems.append(f"scenario.id: must be a non-empty string, got {sid!r}")
    name = head.get("name")
    description = head.get("description", "", required=False)
    sources = head.get("sources", [], required=False)
    head.get("base", required=False)
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        problems.append(f"scenario.sources: must be a list of citations, got {sources!r}")
        sources = []
    head.finish()
    return sid, name, description, sources


def _referrals(ref: _Section, problems: list[str], provenance: dict[str, str]) -> Referrals:
    """``[referrals]``: how many, how fast, from which sites, for which offences, and late sites."""
    randomised = ref.number("randomised", low=1, integer=True)
    rate = ref.number("rate_per_month", low=0, low_open=True)
    sites = ref.shares("sites")
    offence_mix = ref.shares("offence_mix")
    start = _date(ref, "start", required=False)
    joins = _joins(ref, sites)
    ref.finish(provenance=provenance)
    for t in offence_mix or {}:
        if not _identifier(t) or t == "offences":
            problems.append(
                f"referrals.offence_mix: offence type {t!r} must be letters, digits or '_' (and not 'offences')"
            )
    return Referrals(randomised, rate, _pending(sites), _pending(offence_mix), start, joins)


def _eligibility(data: dict, problems: list[str], provenance: dict[str, str], protocol) -> dict[str, float]:
    """``[eligibility]``: the probability of an eligible answer to each of the protocol's questions."""
    elig = _Section(data, "eligibility", problems, required=bool(protocol and protocol.eligibility))
    eligibility = {}
    for q in protocol.eligibility if protocol else ():
        p = elig.probability(q.id)
        if p is not None:
            eligibility[q.id] = p
    if protocol is not None:
        elig.finish(provenance=provenance)
    return eligibility


def _offenders(data: dict, problems: list[str], provenance: dict[str, str]) -> Offenders:
    """``[offenders]``: age and sex."""
    off = _Section(data, "offenders", problems)
    offenders = Offenders(
        off.number("age_mean", low=0),
        off.number("age_sd", low=0, low_open=True),
        off.number("age_min", low=0),
        off.number("age_max", low=0),
        off.probability("male"),
    )
    if None not in (offenders.age_min, offenders.age_max) and offenders.age_min >= offenders.age_max:
        problems.append("offenders.age_max: must exceed offenders.age_min")
    off.finish(provenance=provenance)
    return offenders


def _index_offence(data: dict, problems: list[str], provenance: dict[str, str], arms: list[str]) -> IndexOffence:
    """``[index_offence]``: when it was, whether convicted (overall or per arm), custody after it."""
    idx = _Section(data, "index_offence", problems)
    convicted_value = idx.get("convicted")
    if isinstance(convicted_value, Mapping):
        convicted = {}
        for arm in arms:
            v = convicted_value.get(arm)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
                problems.append(f"index_offence.convicted.{arm}: must be a probability for each arm, got {v!r}")
            else:
                convicted[arm] = float(v)
        extra = [a for a in convicted_value if a not in arms]
        if extra:
            problems.append(f"index_offence.convicted: {extra} are not arms of the protocol ({', '.join(arms)})")
    else:
        p = idx.probability("convicted")
        convicted = {arm: p for arm in arms} if p is not None else {}
    index_offence = IndexOffence(
        _pending(idx.distribution("days_before_assignment")),
        convicted,
        _pending(idx.distribution("sentence_days_after_assignment")),
        idx.probability("custody"),
    )
    idx.finish(provenance=provenance)
    return index_offence


def _reoffending(data: dict, problems: list[str], provenance: dict[str, str], referrals: Referrals) -> Reoffending:
    """``[reoffending]``: the rate model, frailty, the treatment effect and the mix of reoffences."""
    reo = _Section(data, "reoffending", problems)
    reoffending = Reoffending(
        annual_rate=reo.number("annual_rate", low=0, low_open=True),
        reference_age=reo.number("reference_age", low=0),
        log_rate_per_year_of_age=reo.number("log_rate_per_year_of_age", default=0.0, required=False),
        log_rate_male=reo.number("log_rate_male", default=0.0, required=False),
        log_rate_by_offence=reo.coefficients("log_rate_by_offence"),
        log_rate_by_site=reo.coefficients("log_rate_by_site"),
        frailty_variance=reo.number("frailty_variance", low=0),
        hazard_ratio_treated=reo.number("hazard_ratio_treated", low=0, low_open=True),
        offence_mix=_pending(reo.shares("offence_mix")),
    )
    reo.finish(provenance=provenance)
    for t in reoffending.offence_mix or {}:
        if not _identifier(t) or t == "offences":
            problems.append(
                f"reoffending.offence_mix: offence type {t!r} must be letters, digits or '_' (and not 'offences')"
            )
    if referrals.offence_mix is not None:
        unknown = [t for t in reoffending.log_rate_by_offence if t not in referrals.offence_mix]
        if unknown:
            problems.append(
                f"reoffending.log_rate_by_offence: {unknown} are not index offence types "
                f"({', '.join(referrals.offence_mix)})"
            )
    if referrals.sites is not None:
        unknown = [s for s in reoffending.log_rate_by_site if s not in referrals.sites]
        if unknown:
            problems.append(f"reoffending.log_rate_by_site: {unknown} are not sites ({', '.join(referrals.sites)})")
    return reoffending


def _custody(
    data: dict, problems: list[str], provenance: dict[str, str], referrals: Referrals, reoffending: Reoffending
) -> Custody:
    """``[custody]``: the probability of custody after a conviction (overall or per offence type), its length."""
    index_types = referrals.offence_mix or {}
    all_types = list(index_types) + [t for t in (reoffending.offence_mix or {}) if t not in index_types]
    cus = _Section(data, "custody", problems)
    prob = cus.get("probability")
    custody_prob: dict[str, float] = {}
    if isinstance(prob, Mapping):
        for t in all_types:
            v = prob.get(t)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
                problems.append(f"custody.probability.{t}: must be a probability for each offence type, got {v!r}")
            else:
                custody_prob[t] = float(v)
        extra = [t for t in prob if t not in all_types]
        if extra:
            problems.append(f"custody.probability: {extra} are not offence types ({', '.join(all_types)})")
    else:
        p = cus.probability("probability")
        custody_prob = {t: p for t in all_types} if p is not None else {}
    custody = Custody(custody_prob, _pending(cus.distribution("length_days")))
    cus.finish(provenance=provenance)
    return custody


def _extraction(data: dict, problems: list[str], provenance: dict[str, str], today, *, has_start: bool) -> Extraction:
    """``[extraction]``: when the records were extracted (never in the future), which count."""
    ext = _Section(data, "extraction", problems)
    extraction_date = _date(ext, "date")
    after = ext.number("days_after_last_assignment", low=0, integer=True, required=False)
    include = ext.get("include_unconvicted", False, required=False)
    if not isinstance(include, bool):
        problems.append(f"extraction.include_unconvicted: must be true or false, got {include!r}")
    if extraction_date is not None and extraction_date > today:
        problems.append(
            f"extraction.date: {extraction_date} is in the future (the registry refuses future assignment times)"
        )
    has_after = "days_after_last_assignment" in ext.table
    if not has_after and not has_start:
        problems.append(
            "extraction.days_after_last_assignment: give it, or referrals.start, to place the trial in time"
        )
    elif has_after and has_start:
        problems.append("referrals.start: give either it or extraction.days_after_last_assignment, not both")
    extraction = Extraction(_pending(extraction_date), after, bool(include))
    ext.finish(provenance=provenance)
    return extraction


def _victims(data: dict, problems: list[str], provenance: dict[str, str]) -> Victims:
    """``[victims]``: how many per offender, satisfaction, and post-traumatic stress (IES-R)."""
    vic = _Section(data, "victims", problems)
    victims = Victims(
        per_offender=vic.number("per_offender", low=0),
        satisfied_conference=vic.probability("satisfied_conference"),
        satisfied_otherwise=vic.probability("satisfied_otherwise"),
        recommend_conference=vic.probability("recommend_conference"),
        recommend_otherwise=vic.probability("recommend_otherwise"),
        ies_r_baseline_mean=vic.number("ies_r_baseline_mean", low=0, high=88),
        ies_r_baseline_sd=vic.number("ies_r_baseline_sd", low=0, low_open=True),
        ies_r_followup_intercept=vic.number("ies_r_followup_intercept"),
        ies_r_followup_slope=vic.number("ies_r_followup_slope"),
        ies_r_residual_sd=vic.number("ies_r_residual_sd", low=0, low_open=True),
        ies_r_threshold=vic.number("ies_r_threshold", low=0, high=88),
        ies_r_risk_ratio_conference=vic.number("ies_r_risk_ratio_conference", low=0, low_open=True),
    )
    vic.finish(provenance=provenance)
    return victims


def _costs(data: dict, problems: list[str], provenance: dict[str, str]) -> Costs:
    """``[costs]``: the currency and the cost of a conference held and of one assigned but not held."""
    cst = _Section(data, "costs", problems)
    currency = cst.get("currency")
    if currency is not None and (not isinstance(currency, str) or not currency.strip()):
        problems.append(f"costs.currency: must be a currency code such as 'GBP', got {currency!r}")
    costs = Costs(currency, cst.number("conference_held", low=0), cst.number("assigned_not_held", low=0))
    cst.finish(provenance=provenance)
    return costs


def _identifier(text: str) -> bool:
    return isinstance(text, str) and text.replace("_", "a").isalnum() and text.isascii()


def _date(section: _Section, key: str, *, required=True) -> _dt.date | None:
    value = section.get(key, required=required)
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    section.problems.append(f"{section.where(key)}: must be a date (YYYY-MM-DD), got {value!r}")
    return None


def _protocol(data: dict, problems: list[str], base_dir: Path | None) -> Protocol | None:
    table = data.get("protocol")
    if not isinstance(table, Mapping):
        problems.append('protocol: missing section [protocol] (path = "protocols/NAME.toml" or inline tables)')
        return None
    try:
        if "path" in table:
            extra = [k for k in table if k != "path"]
            if extra:
                problems.append(f"protocol: give a path or inline tables, not both (found {extra})")
                return None
            path = Path(table["path"])
            if not path.is_absolute() and base_dir is not None:
                path = (base_dir / path).resolve()
                data["protocol"] = {**table, "path": str(path)}  # the scenario's data records where it was
            protocol = Protocol.from_toml(path)
        else:
            protocol = Protocol.from_dict(table)
    except ProtocolError as exc:
        problems.extend(f"protocol: {p}" for p in (exc.problems if exc.source is None else [str(exc)]))
        return None
    if len(protocol.arms) != 2:
        problems.append(
            f"protocol: the generator simulates two-arm trials (control, conference); got arms {list(protocol.arms)}"
        )
        return None
    return protocol


def _strata(data, problems, protocol, sites, offence_mix) -> dict[str, StratumSource]:
    table = data.get("strata", {})
    if not isinstance(table, Mapping):
        problems.append("strata: must be a table of [strata.NAME] tables")
        return {}
    if protocol is None:
        return {}
    out = {}
    for name in table:
        if name not in protocol.strata:
            problems.append(
                f"strata.{name}: the protocol has no stratum {name!r} (strata: {', '.join(protocol.strata) or 'none'})"
            )
    for name, levels in protocol.strata.items():
        where = f"strata.{name}"
        entry = table.get(name)
        if not isinstance(entry, Mapping):
            problems.append(
                f"{where}: missing: say how the stratum is derived (source = {' | '.join(STRATUM_SOURCES)})"
            )
            continue
        extra = [k for k in entry if k not in ("source", "breaks", "map", "shares")]
        if extra:
            problems.append(f"{where}: unknown keys {extra} (expected: source, breaks, map, shares)")
        src = entry.get("source")
        if src not in STRATUM_SOURCES:
            problems.append(f"{where}.source: must be one of {', '.join(STRATUM_SOURCES)}, got {src!r}")
            continue
        if src == "age":
            breaks = entry.get("breaks")
            if (
                not isinstance(breaks, list)
                or len(breaks) != len(levels) - 1
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in breaks)
                or any(b2 <= b1 for b1, b2 in zip(breaks, breaks[1:]))
            ):
                problems.append(
                    f"{where}.breaks: must be {len(levels) - 1} increasing ages splitting {list(levels)}, got {breaks!r}"
                )
                continue
            out[name] = StratumSource("age", breaks=tuple(float(b) for b in breaks))
        elif src == "shares":
            section = _Section({"s": entry}, "s", [])
            shares = section.shares("shares", levels=levels)
            problems.extend(p.replace("s.shares", f"{where}.shares") for p in section.problems)
            if shares is not None:
                out[name] = StratumSource("shares", shares=shares)
        else:
            values = {"site": list(sites or {}), "offence_type": list(offence_mix or {}), "sex": list(SEXES)}[src]
            mapping = entry.get("map", {v: v for v in values})
            if not isinstance(mapping, Mapping):
                problems.append(f"{where}.map: must be a table of value = level")
                continue
            missing = [v for v in values if v not in mapping]
            bad = {v: lvl for v, lvl in mapping.items() if lvl not in levels}
            unknown = [v for v in mapping if v not in values]
            if missing:
                problems.append(f"{where}: {src} values {missing} have no level (map them to one of {list(levels)})")
            if bad:
                problems.append(f"{where}: {bad} are not levels of stratum {name!r} ({', '.join(levels)})")
            if unknown:
                problems.append(f"{where}.map: {unknown} are not {src} values ({', '.join(values)})")
            if not (missing or bad or unknown):
                out[name] = StratumSource(src, map={str(k): str(v) for k, v in mapping.items()})
    return out
