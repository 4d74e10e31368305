"""The report's inputs: read them, and check that they belong to the registry's trial.

Every check ends in one :class:`~rjtrial.errors.DataError` (or
:class:`~rjtrial.errors.RjtrialError`) whose message names the file, the row (counted from
1, the first row under the header) and the column, so that ``rjtrial report`` can print
it as one line.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

import numpy as np
import pandas as pd

from rjtrial._checks import followup_frame, indicator, is_missing, numeric
from rjtrial.errors import DataError, RjtrialError

__all__ = ["CostSettings", "Table", "check_followup", "check_victims", "read_costs", "read_table"]

#: Columns the follow-up table needs (those of :func:`rjtrial.followup.build`).
FOLLOWUP_REQUIRED = ("id", "arm", "time_at_risk", "event", "reoffences", "exposure_days")
VICTIMS_REQUIRED = ("id",)
#: Victims' yes/no answers: 0/1 or False/True; a blank is a victim not asked or not answering,
#: left out of that outcome (and only that one).
VICTIM_ANSWERS = ("satisfied", "would_recommend")
#: Impact of Event Scale-Revised totals (22 items scored 0-4); a blank is left out as above.
IES_R_SCORES = ("ies_r_baseline", "ies_r_followup")
IES_R_MAX = 88


@dataclass(frozen=True)
class Table:
    """A table and where it came from: ``name`` (the file's name, or ``"followup"`` for a
    DataFrame) names it in errors; ``sha256`` is the file's digest (None for a DataFrame)."""

    frame: pd.DataFrame
    name: str
    path: str | None = None
    sha256: str | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_table(source, *, table: str) -> Table:
    """A DataFrame as it is, or a CSV file read with ``id`` as text; rows labelled from 1.

    Raises
    ------
    RjtrialError
        The file is missing, or is not a readable CSV table.
    """
    if isinstance(source, pd.DataFrame):
        return Table(_numbered(source.copy()), table)
    if not isinstance(source, (str, Path)):
        raise TypeError(f"{table} must be a DataFrame or a path to a CSV file, got {type(source).__name__}")
    path = Path(source)
    label = {"followup": "follow-up"}.get(table, table)
    if not path.is_file():
        raise RjtrialError(f"{label} file {path} not found")
    try:
        frame = pd.read_csv(path, dtype={"id": str, "victim_id": str, "arm": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RjtrialError(f"{label} file {path} is not a readable CSV table: {str(exc).splitlines()[0]}") from None
    return Table(_numbered(frame), path.name, str(path), _sha256(path))


def _numbered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows labelled 1, 2, ... (the first row under the header is row 1), so that every check
    naming a row by its label names the row the user sees."""
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame


def _require_columns(table: Table, columns, hint: str) -> None:
    missing = [c for c in columns if c not in table.frame.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(map(repr, missing))}; {hint}", table=table.name)


def _first_bad(mask: np.ndarray) -> int | None:
    positions = np.flatnonzero(mask)
    return int(positions[0]) if positions.size else None


def _check_ids(table: Table, participants: pd.DataFrame, trial_id: str, *, unique: bool) -> None:
    """Each row's ``id`` is a randomised participant, its ``arm`` (if any) the registry's."""
    frame = table.frame
    ids = frame["id"]
    bad = _first_bad(ids.isna().to_numpy())
    if bad is not None:
        raise DataError("the participant id is missing", table=table.name, row=bad + 1, column="id")
    ids = ids.astype(str).str.strip()
    known = set(participants["id"])
    outside = ~ids.isin(known).to_numpy()
    bad = _first_bad(outside)
    if bad is not None:
        hint = ""
        if outside.all():
            hint = f" (none of its {len(ids)} ids is: is this another trial's table?)"
        raise DataError(
            f"{ids.iloc[bad]!r} is not a participant of trial {trial_id}{hint}",
            table=table.name,
            row=bad + 1,
            column="id",
        )
    if unique:
        bad = _first_bad(ids.duplicated().to_numpy())
        if bad is not None:
            raise DataError(f"participant {ids.iloc[bad]!r} appears twice", table=table.name, row=bad + 1, column="id")
    if "arm" in frame.columns:
        allocated = ids.map(participants.set_index("id")["arm"])
        given = frame["arm"].astype("string").str.strip()
        wrong = (given != allocated).fillna(True).to_numpy()
        bad = _first_bad(wrong)
        if bad is not None:
            raise DataError(
                f"arm {frame['arm'].iloc[bad]!r}, but the registry allocated {ids.iloc[bad]!r} to "
                f"{allocated.iloc[bad]!r}",
                table=table.name,
                row=bad + 1,
                column="arm",
            )


def check_followup(
    table: Table, participants: pd.DataFrame, trial_id: str, *, allow_missing: bool = False
) -> pd.DataFrame:
    """Check that a follow-up table is this trial's, and return it in the registry's order.

    Every row must be a randomised participant of the registry (``id``), allocated to the
    arm the row says (``arm``), at most once; every randomised participant must have a
    row (intention to treat analyses everyone randomised) unless ``allow_missing``.

    Returns
    -------
    DataFrame
        The follow-up rows with ``id`` as text, ordered by sequence number.
    """
    _require_columns(table, FOLLOWUP_REQUIRED, "is this a follow-up table from `rjtrial followup`?")
    _check_ids(table, participants, trial_id, unique=True)
    frame = table.frame.copy()
    frame["id"] = frame["id"].astype(str).str.strip()
    frame["arm"] = frame["arm"].astype(str).str.strip()
    missing = participants.loc[~participants["id"].isin(frame["id"]), "id"]
    if len(missing) and not allow_missing:
        raise DataError(
            f"{len(missing)} randomised participant(s) of trial {trial_id} have no row, first {missing.iloc[0]!r}; "
            "intention to treat needs every one (allow_missing=True / --allow-missing to report the others)",
            table=table.name,
            column="id",
        )
    frame = followup_frame(frame, table=table.name, columns=FOLLOWUP_REQUIRED[2:], arm=None, id_column=None)
    order = participants.reset_index(drop=True).reset_index().set_index("id")["index"]
    return (
        frame.assign(_order=frame["id"].map(order)).sort_values("_order").drop(columns="_order").reset_index(drop=True)
    )


def check_victims(table: Table, participants: pd.DataFrame, trial_id: str) -> pd.DataFrame:
    """Check that each victim's offender (``id``) is a participant, in the arm the row says, and
    the answers: ``satisfied``, ``would_recommend`` 0/1 or False/True, ``ies_r_baseline``,
    ``ies_r_followup`` numbers from 0 to 88; a blank answer leaves that victim out of that
    outcome only (not asked, or no answer)."""
    _require_columns(table, VICTIMS_REQUIRED, "a victims table has one row per victim and the offender's 'id'")
    _check_ids(table, participants, trial_id, unique=False)
    frame = table.frame.copy()
    frame["id"] = frame["id"].astype(str).str.strip()
    if "arm" in frame.columns:
        frame["arm"] = frame["arm"].astype(str).str.strip()
    else:
        frame["arm"] = frame["id"].map(participants.set_index("id")["arm"])
    for column in VICTIM_ANSWERS:
        if column in frame.columns:
            answered = ~frame[column].map(is_missing).to_numpy(dtype=bool)
            values = pd.array([pd.NA] * len(frame), dtype="boolean")
            values[answered] = indicator(frame.loc[answered], column, table=table.name, hint="")
            frame[column] = values
    for column in IES_R_SCORES:
        if column in frame.columns:
            answered = ~frame[column].map(is_missing).to_numpy(dtype=bool)
            scores = np.full(len(frame), np.nan)
            scores[answered] = numeric(frame.loc[answered], column, role="IES-R score", table=table.name)
            outside = (scores < 0) | (scores > IES_R_MAX)
            bad = _first_bad(outside)
            if bad is not None:
                raise DataError(
                    f"IES-R score {scores[bad]:g}: IES-R scores run from 0 to {IES_R_MAX}",
                    table=table.name,
                    row=frame.index[bad],
                    column=column,
                )
            frame[column] = scores
    return frame


# --------------------------------------------------------------------- blinding
def is_blinded(table: Table, arms, status) -> bool:
    """Is the follow-up blinded: are its ``arm`` values neutral codes (``A``, ``B``...), none an arm?

    Raises
    ------
    DataError
        The arms are codes but the registry made no blinded export (another trial's table?).
    """
    from rjtrial.registry.blinding import codes_for

    if "arm" not in table.frame.columns:
        return False
    given = set(table.frame["arm"].dropna().astype(str).str.strip())
    codes = set(status.codes) or set(codes_for(arms))
    if not given or not given <= codes or given & set(arms):
        return False
    if not status.active:
        raise DataError(
            f"its arms are blinding codes ({', '.join(sorted(given))}), but this registry has made no blinded export "
            "(rjtrial export --blinded): is this another trial's table?",
            table=table.name,
            column="arm",
        )
    return True


def blind_participants(participants: pd.DataFrame, table: Table, arm_codes: Mapping[str, str] | None) -> pd.DataFrame:
    """The registry's participants with codes for arms: from the sealed mapping when the key was given
    (a follow-up row with another code is then an error naming the row), else the follow-up's own codes.
    ``treatment_received`` is blanked (it shows the arm) and ``receipt`` left out."""
    out = participants.drop(columns=["receipt"], errors="ignore").copy()
    if arm_codes is not None:
        out["arm"] = out["arm"].map(dict(arm_codes))
    else:
        frame = table.frame.dropna(subset=["id"])
        given = frame.assign(id=frame["id"].astype(str).str.strip(), arm=frame["arm"].astype(str).str.strip())
        out["arm"] = out["id"].map(given.drop_duplicates("id").set_index("id")["arm"])
    out["treatment_received"] = pd.array([pd.NA] * len(out), dtype="boolean")
    return out


# ------------------------------------------------------------------------ costs
@dataclass(frozen=True)
class CostSettings:
    """What a ``--costs`` TOML file says; see :func:`read_costs` for the format."""

    currency: str
    cost_per_offence: Mapping[str, float]
    per_participant: float | None = None
    total: float | None = None
    per_conference_held: float | None = None
    per_assigned_not_held: float | None = None
    n_bootstrap: int = 2000
    source: str = ""
    assumptions: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    sha256: str | None = None


def _number(value: Any, where: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise RjtrialError(f"{where}: expected a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise RjtrialError(f"{where}: expected a {'positive' if positive else 'non-negative'} number, got {value!r}")
    return float(value)


def read_costs(source) -> CostSettings:
    """Read a costs TOML file (or an equivalent dict) for the benefit–cost section.

    Format::

        currency = "GBP"
        source = "where the unit costs come from (or: assumption)"
        n_bootstrap = 2000                       # optional

        [cost_per_offence]                       # follow-up count column = cost of one offence
        reoffences = 5000.0

        [programme_cost]                         # exactly one way of costing the programme:
        per_conference_held = 700.0              #   per conference held (registry's count) and
        per_assigned_not_held = 150.0            #   per assigned participant without one;
        # per_participant = 600.0                #   or per participant assigned to treatment;
        # total = 50000.0                        #   or the programme's total cost.

        [assumptions]                            # optional: key = why (shown in the report)
        reoffences = "assumption: illustrative"

    Raises
    ------
    RjtrialError
        Missing file, invalid TOML, or a value that is not what the format says.
    """
    path = sha = None
    if isinstance(source, Mapping):
        data, name = dict(source), "costs"
    else:
        file = Path(source)
        if not file.is_file():
            raise RjtrialError(f"costs file {file} not found")
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RjtrialError(f"costs file {file} is not valid TOML: {exc}") from None
        name, path, sha = file.name, str(file), _sha256(file)
    known = {"currency", "source", "n_bootstrap", "cost_per_offence", "programme_cost", "assumptions"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RjtrialError(f"{name}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    per_offence = data.get("cost_per_offence")
    if not isinstance(per_offence, Mapping) or not per_offence:
        raise RjtrialError(
            f"{name}: [cost_per_offence] must map follow-up count columns to a cost, e.g. reoffences = 5000"
        )
    costs = {str(k): _number(v, f"{name}: cost_per_offence.{k}") for k, v in per_offence.items()}
    programme = data.get("programme_cost")
    if not isinstance(programme, Mapping):
        raise RjtrialError(f"{name}: [programme_cost] is missing")
    ways = {"per_conference_held", "per_assigned_not_held", "per_participant", "total"}
    unknown = sorted(set(programme) - ways)
    if unknown:
        raise RjtrialError(f"{name}: programme_cost: unknown key(s) {unknown}; allowed: {sorted(ways)}")
    given = {k: _number(v, f"{name}: programme_cost.{k}", positive=False) for k, v in programme.items()}
    chosen = [k for k in ("per_participant", "total") if k in given]
    by_conference = any(k in given for k in ("per_conference_held", "per_assigned_not_held"))
    if len(chosen) + by_conference != 1:
        raise RjtrialError(
            f"{name}: programme_cost: give exactly one of per_conference_held (with per_assigned_not_held), "
            "per_participant, total"
        )
    n_bootstrap = data.get("n_bootstrap", 2000)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise RjtrialError(f"{name}: n_bootstrap must be a whole number >= 0, got {n_bootstrap!r}")
    assumptions = data.get("assumptions", {})
    if not isinstance(assumptions, Mapping):
        raise RjtrialError(f"{name}: [assumptions] must map keys to text")
    return CostSettings(
        currency=str(data.get("currency", "")),
        cost_per_offence=costs,
        per_participant=given.get("per_participant"),
        total=given.get("total"),
        per_conference_held=given.get("per_conference_held", 0.0 if by_conference else None),
        per_assigned_not_held=given.get("per_assigned_not_held", 0.0 if by_conference else None),
        n_bootstrap=n_bootstrap,
        source=str(data.get("source", "")),
        assumptions={str(k): str(v) for k, v in assumptions.items()},
        path=path,
        sha256=sha,
    )


def check_cost_columns(settings: CostSettings, followup: Table) -> None:
    """Every column the costs file prices is a numeric column of the follow-up table."""
    for column in settings.cost_per_offence:
        if column not in followup.frame.columns:
            raise DataError(
                f"the costs file prices column {column!r}, which the follow-up table lacks "
                f"(count columns: {[c for c in followup.frame.columns if c in ('reoffences', 'prior_offences')]})",
                table=followup.name,
            )
        if not pd.api.types.is_numeric_dtype(followup.frame[column]):
            raise DataError("the costs file prices it, but it is not a count", table=followup.name, column=column)
