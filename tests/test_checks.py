"""rjtrial._checks: the one strict reader of yes/no (indicator) columns, and numeric columns.

Each careless input a user's table can hold (a stray ``2``, ``maybe``, a blank, the text
``"False"``, a yes/no coding) is either read as what it says or refused naming the table,
the row and the column: never turned into True by pandas' truthiness.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rjtrial._checks import binary as _binary
from rjtrial._checks import indicator
from rjtrial._checks import numeric as _numeric
from rjtrial.errors import DataError

TRUTH = [True, False, True, True, False]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(TRUTH, id="bool"),
        pytest.param([1, 0, 1, 1, 0], id="int"),
        pytest.param([1.0, 0.0, 1.0, 1.0, 0.0], id="float"),
        pytest.param(pd.array(TRUTH, dtype="boolean"), id="nullable-boolean"),
        pytest.param(pd.array([1, 0, 1, 1, 0], dtype="Int64"), id="nullable-int"),
        pytest.param(["1", "0", "1", "1", "0"], id="text-01"),
        pytest.param(["True", "False", "True", "True", "False"], id="text-TrueFalse"),
        pytest.param(np.array(TRUTH, dtype=object), id="object-bools"),
        pytest.param(pd.Categorical(["True", "False", "True", "True", "False"]), id="categorical-text"),
        pytest.param(pd.array(["1", "0", "1", "1", "0"], dtype="string"), id="string-dtype"),
    ],
)
def test_the_accepted_codings_read_as_what_they_say(values):
    frame = pd.DataFrame({"event": values})
    assert indicator(frame, "event", table="followup").tolist() == TRUTH


@pytest.mark.parametrize(
    "values, bad_row, shown",
    [
        pytest.param([1, 0, 2, 1, 0], 2, "2", id="two"),
        pytest.param([1, 0, -1, 1, 0], 2, "-1", id="minus-one"),
        pytest.param([1, 0, 0.5, 1, 0], 2, "0.5", id="half"),
        pytest.param(["1", "0", "maybe", "1", "0"], 2, "'maybe'", id="maybe"),
        pytest.param(["yes", "no", "yes", "yes", "no"], 0, "'yes'", id="yes-no"),
        pytest.param(["True", "False", "false", "True", "False"], 2, "'false'", id="lower-case"),
        pytest.param(["True", "False", "True ", "True", "False"], 2, "'True '", id="trailing-space"),
        pytest.param(["1", "0", "True", "1", "0"], 2, "'True'", id="mixed-codings"),
        pytest.param([True, False, "False", True, False], 2, "'False'", id="bool-and-text"),
        pytest.param([1.0, 0.0, np.inf, 1.0, 0.0], 2, "inf", id="inf"),
        pytest.param([1.0, 0.0, 1e308, 1.0, 0.0], 2, "1e+308", id="huge"),
    ],
)
def test_anything_else_is_refused_naming_table_row_and_column(values, bad_row, shown):
    frame = pd.DataFrame({"event": values}, index=pd.RangeIndex(1, 6))  # rows as the CLI numbers them
    with pytest.raises(DataError, match=r"0 or 1 \(or False/True\)") as info:
        indicator(frame, "event", table="followup")
    error = info.value
    assert (error.table, error.row, error.column) == ("followup", bad_row + 1, "event")
    assert shown in str(error)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([1.0, 0.0, np.nan, 1.0, 0.0], id="nan"),
        pytest.param([True, False, None, True, False], id="none"),
        pytest.param(pd.array([True, False, pd.NA, True, False], dtype="boolean"), id="NA"),
        pytest.param(["1", "0", "", "1", "0"], id="empty-text"),
        pytest.param(["1", "0", "   ", "1", "0"], id="blank-text"),
    ],
)
def test_a_blank_is_an_error_not_a_reoffence(values):
    frame = pd.DataFrame({"event": values})
    with pytest.raises(DataError, match="missing") as info:
        indicator(frame, "event", table="followup")
    assert (info.value.row, info.value.column) == (2, "event")


def test_another_coding_only_when_stated():
    frame = pd.DataFrame({"satisfied": ["yes", "no", "yes", "yes", "no"]})
    with pytest.raises(DataError, match="coding="):
        indicator(frame, "satisfied", table="victims")
    read = indicator(frame, "satisfied", table="victims", coding={"yes": True, "no": False})
    assert read.tolist() == TRUTH
    # the stated coding replaces the defaults: 0/1 is not guessed beside it
    with pytest.raises(DataError, match=r"'yes' \(True\) or 'no' \(False\), found '1'") as info:
        indicator(pd.DataFrame({"s": ["yes", "1"]}), "s", table="victims", coding={"yes": True, "no": False})
    assert info.value.row == 1


@pytest.mark.parametrize("coding", [{"yes": 1}, {"yes": True}, "yes/no", {"yes": True, "no": "False"}])
def test_a_coding_must_map_to_both_booleans(coding):
    with pytest.raises(ValueError, match="coding"):
        indicator(pd.DataFrame({"s": ["yes"]}), "s", table="victims", coding=coding)


def test_binary_keeps_its_count_hint_and_reads_text_codes():
    frame = pd.DataFrame({"event": ["1", "0"], "reoffences": [3, 0]})
    assert _binary(frame, "event", role="outcome").tolist() == [True, False]
    with pytest.raises(DataError, match=r"> 0"):
        _binary(frame, "reoffences", role="outcome")


@pytest.mark.parametrize(
    "values, message, row",
    [
        pytest.param(["3", "x", "4"], "must be numeric, found 'x'", 1, id="csv-column-with-one-bad-cell"),
        pytest.param(["3", "5", "4"], "must be numeric, found '3'", 0, id="numbers-as-text"),
        pytest.param([3, "x", 4], "must be numeric, found 'x'", 1, id="one-bad-cell"),
        pytest.param([3.0, np.nan, 4.0], "missing", 1, id="blank"),
        pytest.param([3.0, np.inf, 4.0], "not finite", 1, id="inf"),
    ],
)
def test_numeric_columns_name_the_first_bad_row(values, message, row):
    frame = pd.DataFrame({"count": values})
    with pytest.raises(DataError, match=message) as info:
        _numeric(frame, "count", role="count")
    assert (info.value.row, info.value.column) == (row, "count")


def test_a_count_too_large_to_be_exact_is_refused():
    frame = pd.DataFrame({"count": [3.0, 1e308]})
    with pytest.raises(DataError, match="too large") as info:
        _numeric(frame, "count", role="count", integer=True)
    assert info.value.row == 1
