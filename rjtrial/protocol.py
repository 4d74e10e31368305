"""Trial protocols: arms, allocation ratio, strata, eligibility and randomisation.

A protocol is written in TOML (see ``synthetic/protocols/`` for examples modelled on
the Justice Research Consortium designs) and loaded with :meth:`Protocol.from_toml`.
Loading validates everything and reports *every* problem at once, each with the key
it concerns, in one :class:`~rjtrial.errors.ProtocolError`.

Format::

    [trial]
    id = "jrc-london-burglary"
    name = "JRC London: Crown Court burglary"
    arms = ["control", "conference"]      # the first arm is the control
    ratio = [1, 1]

    [randomisation]
    method = "stratified_blocks"          # simple | blocks | stratified_blocks | minimisation | biased_coin
    block_sizes = [2, 4, 6]

    [strata]                              # name = levels
    site = ["london", "northumbria"]
    offence = ["property", "violence"]

    [[eligibility]]
    id = "admitted"
    question = "Has the offender admitted responsibility for the offence?"
    eligible_if = "yes"                   # or a list of eligible answers
    answers = ["yes", "no"]               # optional; the default

    [labels]                              # optional: what people read instead of ids
    site = { label = "Police force area", levels = { london = "London (Metropolitan Police)" } }

Randomisation parameters by method (all optional unless marked):

=====================  =====================================================
``simple``             --
``blocks``             ``block_sizes`` (required), ``block_weights``
``stratified_blocks``  ``block_sizes`` (required), ``block_weights``, ``stratify_by``
``minimisation``       ``factors``, ``weights``, ``probability`` (0.8), ``imbalance``
                       (``"range"`` or ``"variance"``)
``biased_coin``        ``probability`` (2/3, Efron 1971)
all methods            ``capacity``: slots sealed per sequence (1000)
=====================  =====================================================
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from rjtrial.errors import ProtocolError

METHODS = ("simple", "blocks", "stratified_blocks", "minimisation", "biased_coin")
IMBALANCE_MEASURES = ("range", "variance")
DEFAULT_CAPACITY = 1000
#: Probability of the favoured arm when a protocol gives none (Pocock & Simon's 0.8; Efron's 2/3).
DEFAULT_PROBABILITY = {"minimisation": 0.8, "biased_coin": 2.0 / 3.0}
MAX_CAPACITY = 1_000_000
MAX_BLOCK_SIZE = 1000
MAX_ARM_NAME = 64
MAX_WEIGHT = 1_000_000

# Matched in full (re.fullmatch): a trailing newline is not part of a valid name.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_ARM_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_ARM_NAME - 1}}}")

# Which [randomisation] keys each method accepts (besides "method" and "capacity").
_METHOD_KEYS = {
    "simple": set(),
    "blocks": {"block_sizes", "block_weights"},
    "stratified_blocks": {"block_sizes", "block_weights", "stratify_by"},
    "minimisation": {"factors", "weights", "probability", "imbalance"},
    "biased_coin": {"probability"},
}
_TOP_KEYS = {"trial", "randomisation", "strata", "eligibility", "labels"}
_TRIAL_KEYS = {"id", "name", "arms", "ratio", "description", "registration"}
_QUESTION_KEYS = {"id", "question", "eligible_if", "answers"}
_LABEL_KEYS = {"label", "levels"}
MAX_LABEL = 200


@dataclass(frozen=True)
class EligibilityQuestion:
    """One screening question and the answers that make a referral eligible."""

    id: str
    question: str
    eligible_if: tuple[str, ...]
    answers: tuple[str, ...] = ("yes", "no")


@dataclass(frozen=True)
class Randomisation:
    """The randomisation method and its parameters, validated."""

    method: str
    capacity: int = DEFAULT_CAPACITY
    block_sizes: tuple[int, ...] = ()
    block_weights: tuple[float, ...] = ()
    stratify_by: tuple[str, ...] = ()
    factors: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    probability: float | None = None
    imbalance: str = "range"

    def __post_init__(self) -> None:
        if self.probability is None and self.method in DEFAULT_PROBABILITY:
            object.__setattr__(self, "probability", DEFAULT_PROBABILITY[self.method])

    @property
    def favoured_probability(self) -> float:
        """Probability of the arm that minimisation or the biased coin favours."""
        if self.probability is None:
            raise ValueError(f"randomisation method {self.method!r} has no probability")
        return self.probability

    @property
    def is_adaptive(self) -> bool:
        """True when an allocation depends on the covariates of earlier referrals."""
        return self.method == "minimisation"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "capacity": self.capacity}
        if self.method in ("blocks", "stratified_blocks"):
            out["block_sizes"] = list(self.block_sizes)
            out["block_weights"] = list(self.block_weights)
        if self.method == "stratified_blocks":
            out["stratify_by"] = list(self.stratify_by)
        if self.method == "minimisation":
            out["factors"] = list(self.factors)
            out["weights"] = dict(zip(self.factors, self.weights))
            out["imbalance"] = self.imbalance
        if self.method in ("minimisation", "biased_coin"):
            out["probability"] = self.probability
        return out


@dataclass(frozen=True)
class Protocol:
    """A validated trial protocol.

    Attributes
    ----------
    id, name : str
        Trial identifier (letters, digits, ``_ . -``) and its title.
    arms : tuple of str
        Arm names; the first is the control.
    ratio : tuple of int
        Allocation ratio, one positive integer per arm.
    randomisation : Randomisation
        Method and parameters.
    strata : dict of str to tuple of str
        Stratification (or minimisation) factors and their levels, in file order.
    eligibility : tuple of EligibilityQuestion
        Screening questions, asked before random assignment.
    labels : dict of str to dict
        Optional words for people (``[labels]``): per stratum, its ``label`` and its
        ``levels`` (level -> words). Read them with :meth:`stratum_label` and
        :meth:`level_label`, which fall back to the ids.
    """

    id: str
    name: str
    arms: tuple[str, ...]
    ratio: tuple[int, ...]
    randomisation: Randomisation
    strata: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    eligibility: tuple[EligibilityQuestion, ...] = ()
    description: str = ""
    registration: str = ""
    labels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def stratum_label(self, name: str) -> str:
        """The words for a stratum (its ``[labels]`` entry's ``label``), else its name."""
        return str(self.labels.get(name, {}).get("label") or name)

    def level_label(self, name: str, level: str) -> str:
        """The words for a level of a stratum (``[labels]``), else the level itself."""
        return str(self.labels.get(name, {}).get("levels", {}).get(level) or level)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_toml(cls, path: str | Path) -> "Protocol":
        """Load and validate a protocol file; raise ProtocolError listing every problem.

        Examples
        --------
        >>> p = Protocol.from_toml("synthetic/protocols/jrc-london-burglary.toml")
        >>> p.arms, p.randomisation.method, len(p.sequence_keys())
        (('control', 'conference'), 'stratified_blocks', 6)
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProtocolError([f"file not found: {path}"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProtocolError([f"cannot read {path}: {exc}"]) from None
        return cls.from_toml_string(text, source=str(path))

    @classmethod
    def from_toml_string(cls, text: str, *, source: str | None = None) -> "Protocol":
        """Parse and validate protocol TOML held in a string."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProtocolError([f"not valid TOML: {exc}"], source=source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> "Protocol":
        """Validate a protocol given as nested dicts (the parsed TOML)."""
        problems: list[str] = []
        protocol = _build(data, problems)
        if problems:
            raise ProtocolError(problems, source=source)
        assert protocol is not None  # built whenever there were no problems
        return protocol

    def to_dict(self) -> dict[str, Any]:
        """The protocol as plain data; ``Protocol.from_dict(p.to_dict()) == p``."""
        trial: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "arms": list(self.arms),
            "ratio": list(self.ratio),
        }
        if self.description:
            trial["description"] = self.description
        if self.registration:
            trial["registration"] = self.registration
        out: dict[str, Any] = {
            "trial": trial,
            "randomisation": self.randomisation.to_dict(),
            "strata": {name: list(levels) for name, levels in self.strata.items()},
            "eligibility": [
                {
                    "id": q.id,
                    "question": q.question,
                    "eligible_if": list(q.eligible_if),
                    "answers": list(q.answers),
                }
                for q in self.eligibility
            ],
        }
        if self.labels:  # absent when none, so that earlier protocols read back unchanged
            out["labels"] = {
                name: {k: dict(v) if isinstance(v, Mapping) else v for k, v in entry.items()}
                for name, entry in self.labels.items()
            }
        return out

    # ------------------------------------------------------------- enrolment checks
    def check_strata(self, strata: Mapping[str, Any]) -> list[str]:
        """Problems with a referral's strata: missing factors, unknown factors or levels."""
        problems = []
        for name, levels in self.strata.items():
            if name not in strata:
                problems.append(f"missing stratum {name!r} (levels: {', '.join(levels)})")
            elif strata[name] not in levels:
                problems.append(f"unknown level {strata[name]!r} for stratum {name!r} (levels: {', '.join(levels)})")
        for name in strata:
            if name not in self.strata:
                known = ", ".join(self.strata) or "none"
                problems.append(f"unknown stratum {name!r} (strata: {known})")
        return problems

    def check_answers(self, answers: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """Split a referral's answers into (problems, ineligibility reasons).

        Problems (a missing answer, an unknown question, an answer outside the
        question's allowed answers) make the enrolment refused; reasons (an allowed
        answer that is not an eligible one) make the referral ineligible.
        """
        problems, reasons = [], []
        for q in self.eligibility:
            if q.id not in answers:
                problems.append(f"missing answer to {q.id!r} ({q.question})")
                continue
            answer = answers[q.id]
            if answer not in q.answers:
                problems.append(f"answer {answer!r} to {q.id!r} is not one of: {', '.join(q.answers)}")
            elif answer not in q.eligible_if:
                reasons.append(f"{q.id}={answer}")
        known = {q.id for q in self.eligibility}
        for qid in answers:
            if qid not in known:
                problems.append(f"unknown question {qid!r} (questions: {', '.join(sorted(known)) or 'none'})")
        return problems, reasons

    def sequence_key(self, strata: Mapping[str, str]) -> str:
        """Name of the allocation sequence a referral with these strata draws from."""
        if self.randomisation.method == "stratified_blocks":
            return "|".join(f"{name}={strata[name]}" for name in self.randomisation.stratify_by)
        return "all"

    def sequence_keys(self) -> list[str]:
        """Every sequence sealed at initialisation, in a fixed order."""
        if self.randomisation.method != "stratified_blocks":
            return ["all"]
        keys = [""]
        for name in self.randomisation.stratify_by:
            keys = [
                f"{prefix}|{name}={level}" if prefix else f"{name}={level}"
                for prefix in keys
                for level in self.strata[name]
            ]
        return keys


# ---------------------------------------------------------------------- validation
def _build(data: Mapping[str, Any], problems: list[str]) -> Protocol | None:
    if not isinstance(data, Mapping):
        problems.append("the protocol must be a table")
        return None
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(f"{key}: unknown section (expected: {', '.join(sorted(_TOP_KEYS))})")

    trial = _table(data, "trial", problems, required=True)
    for key in trial:
        if key not in _TRIAL_KEYS:
            problems.append(f"trial.{key}: unknown key (expected: {', '.join(sorted(_TRIAL_KEYS))})")
    trial_id = _string(trial, "id", "trial.id", problems)
    if trial_id is not None and not _IDENTIFIER.fullmatch(trial_id):
        problems.append(
            f"trial.id: {trial_id!r} must be 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    name = _string(trial, "name", "trial.name", problems)
    description = _string(trial, "description", "trial.description", problems, required=False) or ""
    registration = _string(trial, "registration", "trial.registration", problems, required=False) or ""
    arms = _string_list(trial, "arms", "trial.arms", problems)
    if arms is not None:
        bad_arms = [a for a in arms if not _ARM_NAME.fullmatch(a)]
        if bad_arms:
            problems.append(
                f"trial.arms: {', '.join(repr(a[:80]) for a in bad_arms)}: an arm name must be 1-{MAX_ARM_NAME} letters, "
                "digits, '_', '.' or '-', starting with a letter or digit (no spaces, line breaks or markup)"
            )
            arms = None
    if arms is not None and len(arms) < 2:
        problems.append(f"trial.arms: a trial needs at least two arms, got {len(arms)}")
    ratio = _int_list(trial, "ratio", "trial.ratio", problems, required=False)
    if ratio is None and arms is not None and "ratio" not in trial:
        ratio = [1] * len(arms)
    if ratio is not None and arms is not None and len(ratio) != len(arms):
        problems.append(f"trial.ratio: has {len(ratio)} entries but trial.arms has {len(arms)}; give one ratio per arm")
    if ratio is not None and len(ratio) > 1 and math.gcd(*ratio) > 1:
        problems.append(f"trial.ratio: {ratio} is not in lowest terms (divide by {math.gcd(*ratio)})")

    strata = _strata(data, problems)
    eligibility = _eligibility(data, problems)
    randomisation = _randomisation(data, problems, strata, arms, ratio)
    labels = _labels(data, problems, strata)

    if problems or randomisation is None:
        return None
    return Protocol(
        id=trial_id,
        name=name,
        arms=tuple(arms),
        ratio=tuple(ratio),
        randomisation=randomisation,
        strata=strata,
        eligibility=eligibility,
        description=description,
        registration=registration,
        labels=labels,
    )


def _table(data: Mapping[str, Any], key: str, problems: list[str], *, required: bool) -> Mapping[str, Any]:
    if key not in data:
        if required:
            problems.append(f"{key}: missing section [{key}]")
        return {}
    value = data[key]
    if not isinstance(value, Mapping):
        problems.append(f"{key}: must be a table, got {type(value).__name__}")
        return {}
    return value


def _string(table, key, where, problems, *, required=True):
    if key not in table:
        if required:
            problems.append(f"{where}: missing")
        return None
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: must be a non-empty string, got {value!r}")
        return None
    return value


def _string_list(table, key, where, problems, *, required=True, allow_empty=False):
    if key not in table:
        if required:
            problems.append(f"{where}: missing")
        return None
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"{where}: must be a list of non-empty strings, got {value!r}")
        return None
    if not value and not allow_empty:
        problems.append(f"{where}: must not be empty")
        return None
    seen, duplicates = set(), []
    for v in value:
        if v in seen and v not in duplicates:
            duplicates.append(v)
        seen.add(v)
    if duplicates:
        problems.append(f"{where}: duplicate entries {', '.join(repr(d) for d in duplicates)}")
        return None
    return list(value)


def _int_list(table, key, where, problems, *, required=True):
    if key not in table:
        if required:
            problems.append(f"{where}: missing")
        return None
    value = table[key]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        problems.append(f"{where}: must be a non-empty list of positive integers, got {value!r}")
        return None
    return list(value)


def _strata(data, problems) -> dict[str, tuple[str, ...]]:
    table = _table(data, "strata", problems, required=False)
    strata: dict[str, tuple[str, ...]] = {}
    for name, levels in table.items():
        if not _IDENTIFIER.fullmatch(name):
            problems.append(f"strata.{name}: a stratum name must be letters, digits, '_', '.' or '-'")
            continue
        checked = _string_list(table, name, f"strata.{name}", problems)
        if checked is None:
            continue
        bad = [level for level in checked if "|" in level or "=" in level]
        if bad:
            problems.append(f"strata.{name}: levels may not contain '|' or '=': {bad!r}")
            continue
        strata[name] = tuple(checked)
    return strata


def _label_text(value, where, problems) -> str | None:
    """A label: 1-200 characters of text on one line (shown on the service's pages)."""
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: must be a non-empty string, got {value!r}")
        return None
    if len(value) > MAX_LABEL or any(ord(c) < 32 or ord(c) == 127 for c in value):
        problems.append(f"{where}: must be at most {MAX_LABEL} characters on one line (no control characters)")
        return None
    return value.strip()


def _labels(data, problems, strata) -> dict[str, dict[str, Any]]:
    """``[labels]``: per stratum ``{ label = "...", levels = { level = "..." } }``."""
    table = _table(data, "labels", problems, required=False)
    out: dict[str, dict[str, Any]] = {}
    for name, entry in table.items():
        where = f"labels.{name}"
        if name not in strata:
            problems.append(f"{where}: not a stratum (strata: {', '.join(strata) or 'none'})")
            continue
        if not isinstance(entry, Mapping):
            problems.append(f'{where}: must be a table {{ label = "...", levels = {{ LEVEL = "..." }} }}')
            continue
        for key in entry:
            if key not in _LABEL_KEYS:
                problems.append(f"{where}.{key}: unknown key (expected: {', '.join(sorted(_LABEL_KEYS))})")
        checked: dict[str, Any] = {}
        if "label" in entry:
            label = _label_text(entry["label"], f"{where}.label", problems)
            if label is not None:
                checked["label"] = label
        levels = entry.get("levels", {})
        if not isinstance(levels, Mapping):
            problems.append(f'{where}.levels: must be a table of LEVEL = "words"')
            levels = {}
        words = {}
        for level, text in levels.items():
            if level not in strata[name]:
                problems.append(f"{where}.levels.{level}: not a level of {name} ({', '.join(strata[name])})")
                continue
            label = _label_text(text, f"{where}.levels.{level}", problems)
            if label is not None:
                words[level] = label
        if words:
            checked["levels"] = words
        if checked:
            out[name] = checked
    return out


def _eligibility(data, problems) -> tuple[EligibilityQuestion, ...]:
    if "eligibility" not in data:
        return ()
    entries = data["eligibility"]
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        problems.append("eligibility: must be an array of tables ([[eligibility]])")
        return ()
    questions, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"eligibility[{i}]"
        for key in entry:
            if key not in _QUESTION_KEYS:
                problems.append(f"{where}.{key}: unknown key (expected: {', '.join(sorted(_QUESTION_KEYS))})")
        qid = _string(entry, "id", f"{where}.id", problems)
        if qid is not None:
            where = f"eligibility[{i}] ({qid})"
            if not _IDENTIFIER.fullmatch(qid):
                problems.append(f"{where}.id: must be letters, digits, '_', '.' or '-'")
            if qid in seen:
                problems.append(f"{where}.id: duplicate question id {qid!r}")
            seen.add(qid)
        question = _string(entry, "question", f"{where}.question", problems)
        answers = _string_list(entry, "answers", f"{where}.answers", problems, required=False)
        if answers is None and "answers" not in entry:
            answers = ["yes", "no"]
        eligible = entry.get("eligible_if")
        if isinstance(eligible, str):
            eligible = [eligible]
        if eligible is None:
            problems.append(f"{where}.eligible_if: missing (the answer that makes a referral eligible)")
        elif not isinstance(eligible, list) or not eligible or not all(isinstance(a, str) for a in eligible):
            problems.append(f"{where}.eligible_if: must be an answer or a list of answers, got {eligible!r}")
            eligible = None
        elif answers is not None:
            outside = [a for a in eligible if a not in answers]
            if outside:
                problems.append(
                    f"{where}.eligible_if: {', '.join(map(repr, outside))} not among the answers ({', '.join(answers)})"
                )
            elif len(set(eligible)) == len(answers):
                problems.append(f"{where}.eligible_if: every answer is eligible, so the question screens nothing")
        if None not in (qid, question, answers, eligible):
            questions.append(EligibilityQuestion(qid, question, tuple(eligible), tuple(answers)))
    return tuple(questions)


def _randomisation(data, problems, strata, arms, ratio) -> Randomisation | None:
    """The ``[randomisation]`` table checked: the method, its capacity, then its own parameters."""
    table = _table(data, "randomisation", problems, required=True)
    if not table:
        return None
    method = table.get("method")
    if method is None:
        problems.append(f"randomisation.method: missing (one of: {', '.join(METHODS)})")
        return None
    if method not in METHODS:
        problems.append(f"randomisation.method: unknown method {method!r} (one of: {', '.join(METHODS)})")
        return None
    allowed = _METHOD_KEYS[method] | {"method", "capacity"}
    for key in table:
        if key not in allowed:
            problems.append(
                f"randomisation.{key}: not a parameter of method {method!r} "
                f"(its parameters: {', '.join(sorted(allowed - {'method'}))})"
            )
    n_before = len(problems)
    capacity = table.get("capacity", DEFAULT_CAPACITY)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= MAX_CAPACITY:
        problems.append(f"randomisation.capacity: must be an integer from 1 to {MAX_CAPACITY}, got {capacity!r}")
    kwargs: dict[str, Any] = {"method": method, "capacity": capacity}
    if method in ("blocks", "stratified_blocks"):
        kwargs |= _block_parameters(table, ratio, problems)
    if method == "stratified_blocks":
        kwargs |= _stratification(table, strata, capacity, problems)
    if method == "minimisation":
        kwargs |= _minimisation_parameters(table, strata, problems)
    if method in ("minimisation", "biased_coin"):
        kwargs |= _favoured_probability(table, method, arms, problems)
    if len(problems) > n_before:
        return None
    return Randomisation(**kwargs)


def _block_parameters(table, ratio, problems) -> dict[str, Any]:
    """``block_sizes`` (distinct multiples of the ratio's sum, bounded) and ``block_weights``."""
    sizes = _int_list(table, "block_sizes", "randomisation.block_sizes", problems)
    if sizes is None:
        return {}
    if len(set(sizes)) != len(sizes):
        problems.append(f"randomisation.block_sizes: duplicate sizes in {sizes}")
    too_large = [b for b in sizes if b > MAX_BLOCK_SIZE]
    if too_large:
        problems.append(
            f"randomisation.block_sizes: {too_large} larger than {MAX_BLOCK_SIZE}, the largest block size allowed"
        )
        return {}
    if ratio is not None:
        unit = sum(ratio)
        bad = [s for s in sizes if s % unit]
        if bad:
            problems.append(f"randomisation.block_sizes: {bad} not multiples of {unit}, the sum of the ratio {ratio}")
    out: dict[str, Any] = {"block_sizes": tuple(sizes)}
    weights = table.get("block_weights")
    if weights is None:
        out["block_weights"] = tuple(1.0 / len(sizes) for _ in sizes)
    elif (
        not isinstance(weights, list)
        or len(weights) != len(sizes)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w < math.inf for w in weights)
    ):
        problems.append(
            f"randomisation.block_weights: must be {len(sizes)} positive finite numbers, one per block size, "
            f"got {weights!r}"
        )
    else:
        total = float(sum(weights))
        if abs(total - 1.0) > 1e-12:  # normalise once, so that to_dict() round-trips exactly
            weights = [float(w) / total for w in weights]
        out["block_weights"] = tuple(float(w) for w in weights)
    return out


def _stratification(table, strata, capacity, problems) -> dict[str, Any]:
    """``stratify_by`` (default: every stratum), bounded in sealed slots."""
    by = _string_list(table, "stratify_by", "randomisation.stratify_by", problems, required=False)
    if by is None and "stratify_by" not in table:
        by = list(strata)
    if by is None:
        return {}
    unknown = [b for b in by if b not in strata]
    if unknown:
        problems.append(f"randomisation.stratify_by: {unknown} not in [strata] ({', '.join(strata) or 'none'})")
    if not by:
        problems.append("randomisation: stratified_blocks needs at least one stratum in [strata]")
    n_sequences = math.prod(len(strata.get(b, ())) for b in by)
    if isinstance(capacity, int) and n_sequences * capacity > 5_000_000:
        problems.append(
            f"randomisation.capacity: {n_sequences} strata x {capacity} slots is more than 5,000,000 sealed slots"
        )
    return {"stratify_by": tuple(by)}


def _minimisation_parameters(table, strata, problems) -> dict[str, Any]:
    """``factors`` (default: every stratum), their ``weights`` and the ``imbalance`` measure."""
    out: dict[str, Any] = {}
    factors = _string_list(table, "factors", "randomisation.factors", problems, required=False)
    if factors is None and "factors" not in table:
        factors = list(strata)
    if factors is not None:
        unknown = [f for f in factors if f not in strata]
        if unknown:
            problems.append(f"randomisation.factors: {unknown} not in [strata] ({', '.join(strata) or 'none'})")
        if not factors:
            problems.append("randomisation: minimisation needs at least one factor in [strata]")
        out["factors"] = tuple(factors)
        out |= _factor_weights(table.get("weights"), factors, problems)
    imbalance = table.get("imbalance", "range")
    if imbalance not in IMBALANCE_MEASURES:
        problems.append(
            f"randomisation.imbalance: unknown measure {imbalance!r} (one of: {', '.join(IMBALANCE_MEASURES)})"
        )
    out["imbalance"] = imbalance
    return out


def _factor_weights(weights, factors, problems) -> dict[str, Any]:
    """Minimisation's factor weights: a table of factor = weight (default 1), not all 0."""
    if weights is None:
        return {"weights": tuple(1.0 for _ in factors)}
    if not isinstance(weights, Mapping):
        problems.append("randomisation.weights: must be a table of factor = weight, e.g. { site = 1, offence = 2 }")
        return {}
    unknown = [k for k in weights if k not in factors]
    bad = [
        k
        for k, w in weights.items()
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not 0 <= w <= MAX_WEIGHT
    ]
    if unknown:
        problems.append(f"randomisation.weights: {unknown} are not minimisation factors")
    if bad:
        problems.append(
            f"randomisation.weights: weights of {bad} must be numbers from 0 to {MAX_WEIGHT:,} "
            f"(got {', '.join(repr(weights[k]) for k in bad)})"
        )
    chosen = tuple(float(weights.get(f, 1.0)) for f in factors)
    if not unknown and not bad and factors and not any(chosen):
        problems.append(
            "randomisation.weights: every factor's weight is 0, so minimisation would balance nothing; "
            "give at least one factor a positive weight"
        )
    return {"weights": chosen}


def _favoured_probability(table, method, arms, problems) -> dict[str, Any]:
    """The probability of the favoured arm (minimisation 0.8, the biased coin 2/3 by default)."""
    p = table.get("probability", DEFAULT_PROBABILITY[method])
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 < p <= 1:
        problems.append(f"randomisation.probability: must be a number in (0, 1], got {p!r}")
    elif arms is not None and p < 1.0 / len(arms):
        problems.append(
            f"randomisation.probability: {p} is below 1/{len(arms)}, so it would favour the arms that are ahead"
        )
    if method == "biased_coin" and arms is not None and len(arms) != 2:
        problems.append("randomisation.method: biased_coin (Efron) is defined for two arms; use minimisation")
    return {"probability": float(p) if isinstance(p, (int, float)) else None}
