"""Fuzzing every table loader and the follow-up/analysis path with careless and hostile cells.

One cell of a valid table is replaced by a value that is wrong for its column (a stray
``2`` or ``maybe`` in an indicator, a blank, text in a number, a fraction or a negative
count, an impossible or far-future date, a typo in an arm, a repeated id, a value too
extreme to compute with). Whatever the cell and the value, the loader must answer with one
:class:`~rjtrial.errors.DataError` naming the table, that row and that column (the CLI: one
line ``rjtrial: error: table T, row R, column 'C': ...``, exit 2, nothing written) — never
a result computed on a silently different reading of the table.

Loaders and paths covered: ``rjtrial followup`` (participants, offences and custody CSV
files) and :func:`rjtrial.followup.build` on DataFrames; ``rjtrial analyse`` (follow-up
CSV) and :func:`rjtrial.primary.primary_results`; the report's data loading
(:func:`rjtrial.report.data.read_table`, ``check_followup``, ``check_victims``, the costs
file :func:`~rjtrial.report.data.read_costs`) and :func:`rjtrial.costs.benefit_cost`;
:func:`rjtrial.meta.two_stage`; the meta CLI's studies table reader (``_read`` and
``effects_from_table``, estimates or counts) and ``rjtrial meta``; :func:`rjtrial.meta.pool`
on an effects frame.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rjtrial import followup
from rjtrial.cli import main
from rjtrial.errors import DataError, RjtrialError

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# ------------------------------------------------------------ wrong values, by kind of column
# Each list holds only values that are wrong for every row of such a column (a value that
# could be right, e.g. another valid date, is not a careless input this test can judge).
BLANKS = ["", None, float("nan"), "   "]
INDICATOR = [2, -1, 0.5, "maybe", "yes", "no", "2", "y", float("inf"), 1e308, *BLANKS]
COUNT = [-1, -0.5, 0.5, 2.5, "three", "1,5", float("inf"), 1e300, *BLANKS]
TIME = [-1, -0.5, "soon", "12 days", float("inf"), 1e308, *BLANKS]  # 1e308: longer than the exposure
EXPOSURE = [-1, -0.5, "soon", float("inf"), *BLANKS]
ARM = ["contrl", "Control ", *BLANKS[:3]]
ID = [None, float("nan")]  # a repeated id is drawn separately
DATE = ["2020-13-01", "31/02/2020", "yesterday", "2999-01-01", "2090-06-01", *BLANKS]  # required, never late
OPTIONAL_DATE = ["2020-13-01", "soon", "2999-01-01", "2090-06-01"]  # blank means "none"
LATE_ALLOWED_DATE = ["2020-13-01", "31/02/2020", "yesterday", *BLANKS]  # custody end: may be after extraction


def _cell(value) -> str:
    """How a value is written into a CSV cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = str(value)
    return f'"{text}"' if "," in text else text


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    lines = [",".join(frame.columns)]
    lines += [",".join(_cell(v) for v in row) for row in frame.itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n")


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _assert_named(error: DataError, table, row, column) -> None:
    assert (error.table, error.row, error.column) == (table, row, column), str(error)
    assert "\n" not in str(error)
    assert "nan" not in str(error).split(": ", 1)[0]


def _assert_cli_named(code: int, out: str, err: str, table, row, column) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"rjtrial: error: table {table}, row {row}, column {column!r}: "), lines[0]
    assert "Traceback" not in err


# ------------------------------------------------------------------------------ records
PARTICIPANTS = pd.DataFrame(
    {
        "id": [f"P{i:02d}" for i in range(1, 13)],
        "arm": ["control", "conference"] * 6,
        "randomised_on": [f"2020-{m:02d}-{d:02d}" for m, d in zip([1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6], [3, 17] * 6)],
        "died_on": [""] * 11 + ["2021-08-01"],
    }
)
OFFENCES = pd.DataFrame(
    {
        "id": ["P01", "P01", "P02", "P03", "P05", "P05", "P06", "P08", "P09", "P10", "P11", "P12"],
        "offence_date": [
            "2019-05-01",
            "2020-06-01",
            "2020-09-14",
            "2021-01-02",
            "2020-04-04",
            "2021-03-03",
            "2020-05-05",
            "2021-07-07",
            "2018-08-08",
            "2020-12-12",
            "2020-08-01",
            "2021-02-02",
        ],
        "conviction_date": [
            "2019-07-01",
            "2020-09-01",
            "",
            "2021-04-02",
            "2020-06-04",
            "",
            "2020-07-05",
            "2021-09-07",
            "2018-10-08",
            "",
            "2020-10-01",
            "",
        ],
    }
)
CUSTODY = pd.DataFrame(
    {
        "id": ["P01", "P04", "P07", "P10"],
        "start": ["2020-02-01", "2020-06-01", "2020-09-09", "2021-01-01"],
        "end": ["2020-02-20", "2020-07-15", "2020-10-01", "2021-02-01"],
    }
)
RECORD_COLUMNS = {
    "participants": {"id": ID, "randomised_on": DATE, "died_on": OPTIONAL_DATE},
    "offences": {"id": ID, "offence_date": DATE, "conviction_date": OPTIONAL_DATE},
    "custody": {"id": ID, "start": DATE, "end": LATE_ALLOWED_DATE},
}
RECORDS = {"participants": PARTICIPANTS, "offences": OFFENCES, "custody": CUSTODY}


@st.composite
def careless_records(draw):
    """(table name, tables, 1-based row, column) with one wrong cell in one table."""
    name = draw(st.sampled_from(sorted(RECORD_COLUMNS)))
    tables = {k: v.copy() for k, v in RECORDS.items()}
    frame = tables[name]
    column = draw(st.sampled_from(sorted(RECORD_COLUMNS[name])))
    position = draw(st.integers(0, len(frame) - 1))
    if name == "participants" and column == "id" and position > 0 and draw(st.booleans()):
        value = frame.loc[draw(st.integers(0, position - 1)), "id"]  # a repeated participant id
    else:
        value = draw(st.sampled_from(RECORD_COLUMNS[name][column]))
    if name == "participants" and column == "died_on" and value == "2090-06-01":
        value = "2099-06-01"
    frame.loc[position, column] = value
    return name, tables, position + 1, column


@FUZZ
@given(careless_records())
def test_followup_cli_names_every_careless_cell(case):
    name, tables, row, column = case
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for table, frame in tables.items():
            _write_csv(frame, folder / f"{table}.csv")
        out = folder / "followup.csv"
        code, stdout, err = _run_cli(
            [
                "followup",
                "--participants",
                str(folder / "participants.csv"),
                "--offences",
                str(folder / "offences.csv"),
                "--custody",
                str(folder / "custody.csv"),
                "-o",
                str(out),
            ]
        )
        _assert_cli_named(code, stdout, err, name, row, column)
        assert sorted(p.name for p in folder.iterdir()) == ["custody.csv", "offences.csv", "participants.csv"]


@FUZZ
@given(careless_records(), st.one_of(st.none(), st.sampled_from([5, True, 20200101.5, b"2020-01-01", object()])))
def test_followup_build_names_wrong_typed_cells(case, typed):
    # DataFrames from Python: the same cells, or a date of a wrong type altogether
    name, tables, row, column = case
    if typed is not None and column != "id":
        tables[name].loc[row - 1, column] = typed
    frames = {k: v.replace({"": None}) for k, v in tables.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError) as caught:
            followup.build(frames["participants"], frames["offences"], custody=frames["custody"])
    _assert_named(caught.value, name, row, column)


# --------------------------------------------------------------------------- follow-up table
def _followup_table(n: int = 60, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = np.array(["control", "conference"] * (n // 2))
    time = rng.integers(20, 700, n)
    event = rng.random(n) < 0.5
    time = np.where(event, time, 730)
    return pd.DataFrame(
        {
            "id": [f"F{i:03d}" for i in range(n)],
            "arm": arm,
            "time_at_risk": time,
            "event": event,
            "reoffences": np.where(event, 1 + rng.poisson(1.0, n), 0),
            "exposure_days": 730,
        }
    )


FOLLOWUP = _followup_table()
FOLLOWUP_COLUMNS = {
    "event": INDICATOR,
    "time_at_risk": TIME,
    "reoffences": COUNT,
    "exposure_days": EXPOSURE,
    "arm": ARM,
    "id": ID,
}


@st.composite
def careless_followup(draw, base=FOLLOWUP, columns=FOLLOWUP_COLUMNS, unique_ids=True):
    column = draw(st.sampled_from(sorted(columns)))
    position = draw(st.integers(0, len(base) - 1))
    frame = base.astype({column: object})
    if column == "id" and unique_ids and position > 0 and draw(st.booleans()):
        value = frame.loc[draw(st.integers(0, position - 1)), "id"]
    else:
        value = draw(st.sampled_from(columns[column]))
    frame.loc[position, column] = value
    return frame, position, column


@FUZZ
@given(careless_followup())
def test_analyse_cli_names_every_careless_cell(case):
    frame, position, column = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "followup.csv"
        _write_csv(frame, path)
        code, out, err = _run_cli(["analyse", str(path), "--json"])
    assert out == ""
    _assert_cli_named(code, out, err, "followup", position + 1, column)


@FUZZ
@given(careless_followup())
def test_primary_results_names_every_careless_cell(case):
    from rjtrial.primary import primary_results

    frame, position, column = case
    with pytest.raises(DataError) as caught:
        primary_results(frame)
    _assert_named(caught.value, "followup", position, column)


# ------------------------------------------------------------------------------ the report
@pytest.fixture(scope="module")
def registry_trial(tmp_path_factory):
    from test_report import simulated_trial_folder

    from rjtrial.registry import Registry
    from rjtrial.registry.reports import participants_frame

    folder = simulated_trial_folder(tmp_path_factory.getbasetemp())
    with Registry.open(folder / "trial.db") as registry:
        participants = participants_frame(registry)
        trial_id = registry.protocol.id
    followup_table = pd.read_csv(folder / "followup.csv", dtype={"id": str})
    victims = pd.read_csv(folder / "victims.csv", dtype={"id": str})
    return participants, trial_id, followup_table, victims


REPORT_FOLLOWUP = {
    "event": INDICATOR,
    "time_at_risk": TIME,
    "reoffences": COUNT,
    "exposure_days": EXPOSURE,
    "arm": ["contrl", "", None],
    "id": ID,
}
ANSWER = [2, -1, 0.5, "maybe", "yes", "2", float("inf")]  # a blank answer is "not asked": left out
SCORE = [-1, 89, 1e308, "high", float("inf")]
VICTIMS = {"satisfied": ANSWER, "would_recommend": ANSWER, "ies_r_baseline": SCORE, "ies_r_followup": SCORE, "id": ID}


@FUZZ
@given(data=st.data())
def test_report_loading_names_every_careless_cell(registry_trial, data):
    from rjtrial.report import data as inputs

    participants, trial_id, followup_table, victims = registry_trial
    which = data.draw(st.sampled_from(["followup", "victims"]))
    base, columns = (followup_table, REPORT_FOLLOWUP) if which == "followup" else (victims, VICTIMS)
    frame, position, column = data.draw(careless_followup(base, columns, unique_ids=which == "followup"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{which}.csv"
        _write_csv(frame, path)
        table = inputs.read_table(path, table=which)
        with pytest.raises(DataError) as caught:
            if which == "followup":
                inputs.check_followup(table, participants, trial_id)
            else:
                inputs.check_victims(table, participants, trial_id)
    _assert_named(caught.value, path.name, position + 1, column)


COSTS = {
    "currency": "GBP",
    "source": "assumption",
    "n_bootstrap": 200,
    "cost_per_offence": {"reoffences": 5000.0, "prior_offences": 1000.0},
    "programme_cost": {"per_participant": 600.0},
}
COST_VALUES = ["5000", -1, True, float("nan"), float("inf"), [1], {"a": 1}, None]


@FUZZ
@given(
    st.sampled_from(
        [
            ("cost_per_offence", "reoffences"),
            ("cost_per_offence", "prior_offences"),
            ("programme_cost", "per_participant"),
            (None, "n_bootstrap"),
        ]
    ),
    st.sampled_from(COST_VALUES),
)
def test_costs_file_names_every_careless_value(key, value):
    from rjtrial.report.data import read_costs

    section, name = key
    settings_ = {k: (dict(v) if isinstance(v, dict) else v) for k, v in COSTS.items()}
    if section is None:
        settings_[name] = 2.5 if isinstance(value, float) else value  # a fraction of a bootstrap
    else:
        settings_[section][name] = value
    with pytest.raises(RjtrialError) as caught:
        read_costs(settings_)
    assert (f"{section}.{name}" if section else name) in str(caught.value)
    assert "\n" not in str(caught.value)


@FUZZ
@given(
    careless_followup(
        FOLLOWUP.assign(prior_offences=FOLLOWUP["reoffences"] + 1), {"reoffences": COUNT, "prior_offences": COUNT}
    )
)
def test_benefit_cost_names_every_careless_count(case):
    from rjtrial.costs import benefit_cost

    frame, position, column = case
    with pytest.raises(DataError) as caught:
        benefit_cost(
            frame,
            offence_counts=["reoffences", "prior_offences"],
            costs={"reoffences": 5000.0, "prior_offences": 1000.0},
            group="arm",
            control="control",
            programme_cost_total=1e4,
            n_bootstrap=10,
            rng=1,
        )
    _assert_named(caught.value, "data", position, column)


# ------------------------------------------------------------------------------ meta-analysis
@FUZZ
@given(careless_followup())
def test_two_stage_names_every_careless_cell(case):
    from rjtrial.meta import two_stage

    frame, position, column = case
    measure = "log_rate_ratio" if column in ("reoffences", "exposure_days") else "log_hazard_ratio"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError) as caught:
            two_stage({"clean": FOLLOWUP, "careless": frame}, measure=measure, treatment="conference")
    _assert_named(caught.value, "careless", position, column)


ESTIMATES = pd.DataFrame(
    {
        "study": ["A", "B", "C", "D", "E"],
        "estimate": [-0.2, 0.1, -0.35, 0.05, -0.1],
        "variance": [0.04, 0.09, 0.02, 0.06, 0.05],
        "std_error": np.sqrt([0.04, 0.09, 0.02, 0.06, 0.05]).round(6),
    }
)
COUNTS = pd.DataFrame(
    {
        "study": ["A", "B", "C", "D", "E"],
        "events_treatment": [4, 6, 3, 10, 7],
        "n_treatment": [120, 300, 230, 410, 150],
        "events_control": [11, 29, 11, 12, 9],
        "n_control": [139, 303, 220, 400, 160],
    }
)
POSITIVE = [0, -1, "x", float("inf"), 1e-308, 1e308, *BLANKS[:3]]
STUDY_COLUMNS = {
    "estimate": ["x", float("inf"), 1e308, -1e308, "1,5", *BLANKS[:3]],
    "variance": POSITIVE,
    "std_error": [-0.2, 0.9, *POSITIVE],
}  # 0.9: disagrees with the variance
COUNT_COLUMNS = {
    "events_treatment": [-1, 2.5, "two", 1e9, float("inf"), *BLANKS[:3]],
    "n_treatment": [0, -5, 10.5, "x", *BLANKS[:3]],
    "events_control": [-1, 0.5, "seven", *BLANKS[:3]],
    "n_control": [0, 99.5, "many", *BLANKS[:3]],
}


@st.composite
def careless_studies(draw):
    counts = draw(st.booleans())
    base, columns = (COUNTS, COUNT_COLUMNS) if counts else (ESTIMATES, STUDY_COLUMNS)
    position = draw(st.integers(0, len(base) - 1))
    frame = base.astype(object)
    if draw(st.integers(0, 5)) == 0:  # a repeated or missing study label
        column = "study"
        value = None if position == 0 else frame.loc[draw(st.integers(0, position - 1)), "study"]
    else:
        column = draw(st.sampled_from(sorted(columns)))
        value = draw(st.sampled_from(columns[column]))
    frame.loc[position, column] = value
    return frame, position, column, "log_risk_ratio" if counts else "cohens_d"


@FUZZ
@given(careless_studies())
def test_meta_table_reader_names_every_careless_cell(case):
    from rjtrial.cli.meta import _read
    from rjtrial.meta import effects_from_table

    frame, position, column, measure = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "studies.csv"
        _write_csv(frame, path)
        with pytest.raises(DataError) as caught:
            effects_from_table(_read(str(path)), measure=measure, source=str(path))
        _assert_named(caught.value, str(path), position + 1, column)
        code, out, err = _run_cli(["meta", str(path), "--measure", measure, "--json"])
        _assert_cli_named(code, out, err, str(path), position + 1, column)


@FUZZ
@given(st.integers(0, len(ESTIMATES) - 1), st.sampled_from(["estimate", "variance"]), st.data())
def test_pool_names_every_careless_estimate(position, column, data):
    from rjtrial.meta import pool

    # pool() takes an effects frame (a blank pair is a study "not estimable", left out with a warning)
    value = data.draw(
        st.sampled_from(
            [v for v in STUDY_COLUMNS[column] if v not in BLANKS[:2] and not (isinstance(v, float) and math.isnan(v))]
        )
    )
    effects = ESTIMATES.set_index("study")[["estimate", "variance"]].astype(object)
    effects.iloc[position, effects.columns.get_loc(column)] = value
    with pytest.raises(DataError) as caught:
        pool(effects)
    _assert_named(caught.value, "effects", ESTIMATES.loc[position, "study"], column)
