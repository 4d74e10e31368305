"""Protocol loading, validation, round-trips and enrolment checks (rjtrial/protocol.py)."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rjtrial.errors import ProtocolError
from rjtrial.protocol import METHODS, Protocol

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "synthetic" / "protocols").glob("*.toml"))


def base() -> dict:
    """A valid stratified-blocks protocol; each test case below breaks one thing."""
    return {
        "trial": {"id": "t-1", "name": "Test", "arms": ["control", "conference"], "ratio": [1, 1]},
        "randomisation": {"method": "stratified_blocks", "block_sizes": [2, 4]},
        "strata": {"site": ["a", "b"], "offence": ["property", "violence"]},
        "eligibility": [
            {"id": "admitted", "question": "Admitted?", "eligible_if": "yes"},
            {"id": "risk", "question": "Risk?", "answers": ["low", "high", "unknown"], "eligible_if": ["low"]},
        ],
    }


def problems_of(data) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        Protocol.from_dict(data)
    return info.value.problems


def test_base_protocol_is_valid():
    protocol = Protocol.from_dict(base())
    assert protocol.randomisation.stratify_by == ("site", "offence")
    assert protocol.randomisation.block_weights == (0.5, 0.5)


# ------------------------------------------------------------------- examples
def test_examples_are_present():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_protocol_loads(path):
    protocol = Protocol.from_toml(path)
    assert protocol.randomisation.method in METHODS
    assert len(protocol.arms) == len(protocol.ratio) >= 2
    assert protocol.eligibility, "every example screens referrals"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_protocol_round_trips_through_to_dict_and_json(path):
    protocol = Protocol.from_toml(path)
    assert Protocol.from_dict(protocol.to_dict()) == protocol
    # the registry stores the protocol as JSON and reloads it
    assert Protocol.from_dict(json.loads(json.dumps(protocol.to_dict()))) == protocol


# ---------------------------------------------------------- validation problems
def _set(path, value):
    def mutate(data):
        *parents, last = path
        target = data
        for key in parents:
            target = target[key]
        target[last] = value

    return mutate


def _delete(path):
    def mutate(data):
        *parents, last = path
        target = data
        for key in parents:
            target = target[key]
        del target[last]

    return mutate


def _append_question(question):
    return lambda data: data["eligibility"].append(question)


# (mutation, the key the single problem must start with, a phrase it must contain)
SINGLE_PROBLEMS = {
    "unknown method": (_set(("randomisation", "method"), "blocs"), "randomisation.method", "unknown method 'blocs'"),
    "missing method": (_delete(("randomisation", "method")), "randomisation.method", "missing"),
    "ratio and arms lengths differ": (
        lambda d: (_set(("trial", "ratio"), [1, 1, 1])(d), _set(("randomisation", "block_sizes"), [3, 6])(d)),
        "trial.ratio",
        "has 3 entries but trial.arms has 2",
    ),
    "ratio not in lowest terms": (
        lambda d: (_set(("trial", "ratio"), [2, 2])(d), _set(("randomisation", "block_sizes"), [4, 8])(d)),
        "trial.ratio",
        "lowest terms",
    ),
    "one arm": (
        lambda d: (_set(("trial", "arms"), ["control"])(d), _set(("trial", "ratio"), [1])(d)),
        "trial.arms",
        "at least two arms",
    ),
    "bad trial id": (_set(("trial", "id"), "has space"), "trial.id", "letters, digits"),
    "missing trial name": (_delete(("trial", "name")), "trial.name", "missing"),
    "empty strata level list": (_set(("strata", "site"), []), "strata.site", "must not be empty"),
    "duplicate strata levels": (_set(("strata", "site"), ["a", "b", "a"]), "strata.site", "duplicate entries 'a'"),
    "level with separator": (_set(("strata", "site"), ["a", "b|c"]), "strata.site", "may not contain"),
    "duplicate question ids": (
        _append_question({"id": "admitted", "question": "Again?", "eligible_if": "yes"}),
        "eligibility[2] (admitted).id",
        "duplicate question id",
    ),
    "eligible_if not among answers": (
        _set(("eligibility", 1, "eligible_if"), ["low", "medium"]),
        "eligibility[1] (risk).eligible_if",
        "'medium' not among the answers",
    ),
    "every answer eligible": (
        _set(("eligibility", 0, "eligible_if"), ["yes", "no"]),
        "eligibility[0] (admitted).eligible_if",
        "screens nothing",
    ),
    "missing eligible_if": (
        _delete(("eligibility", 0, "eligible_if")),
        "eligibility[0] (admitted).eligible_if",
        "missing",
    ),
    "block sizes not multiples of the ratio sum": (
        lambda d: (_set(("trial", "ratio"), [1, 2])(d), _set(("randomisation", "block_sizes"), [3, 4, 6])(d)),
        "randomisation.block_sizes",
        "[4] not multiples of 3",
    ),
    "duplicate block sizes": (_set(("randomisation", "block_sizes"), [2, 2]), "randomisation.block_sizes", "duplicate"),
    "block weights of the wrong length": (
        _set(("randomisation", "block_weights"), [1.0]),
        "randomisation.block_weights",
        "2 positive finite numbers",
    ),
    "capacity out of range": (_set(("randomisation", "capacity"), 0), "randomisation.capacity", "from 1 to"),
    "stratify_by unknown stratum": (
        _set(("randomisation", "stratify_by"), ["site", "age"]),
        "randomisation.stratify_by",
        "['age'] not in [strata]",
    ),
    "unknown section": (_set(("extras",), {}), "extras", "unknown section"),
    "unknown trial key": (_set(("trial", "colour"), "blue"), "trial.colour", "unknown key"),
    "parameter of another method": (
        _set(("randomisation", "probability"), 0.7),
        "randomisation.probability",
        "not a parameter of method 'stratified_blocks'",
    ),
    "unknown question key": (_set(("eligibility", 0, "hint"), "x"), "eligibility[0].hint", "unknown key"),
}


@pytest.mark.parametrize("case", list(SINGLE_PROBLEMS), ids=list(SINGLE_PROBLEMS))
def test_each_validation_problem_is_reported_once_with_its_key(case):
    mutate, key, phrase = SINGLE_PROBLEMS[case]
    data = copy.deepcopy(base())
    mutate(data)
    problems = problems_of(data)
    assert len(problems) == 1, problems
    assert problems[0].startswith(key + ":") or problems[0].startswith(key + " "), problems[0]
    assert phrase in problems[0]


def test_missing_trial_section_is_reported_with_the_keys_it_lacks():
    data = base()
    del data["trial"]
    problems = problems_of(data)
    assert problems[0] == "trial: missing section [trial]"
    assert {"trial.id: missing", "trial.name: missing", "trial.arms: missing"} <= set(problems)


def test_unknown_method_names_the_allowed_methods():
    data = base()
    data["randomisation"]["method"] = "urn"
    (problem,) = problems_of(data)
    for method in METHODS:
        assert method in problem


MINIMISATION_PROBLEMS = {
    "unknown factor": ({"factors": ["site", "age"]}, "randomisation.factors"),
    "weight for a non-factor": ({"weights": {"age": 1}}, "randomisation.weights"),
    "negative weight": ({"weights": {"site": -1}}, "randomisation.weights"),
    "weights as a list": ({"weights": [1, 2]}, "randomisation.weights"),
    "probability above one": ({"probability": 1.5}, "randomisation.probability"),
    "probability below 1/K": ({"probability": 0.4}, "randomisation.probability"),
    "unknown imbalance measure": ({"imbalance": "gini"}, "randomisation.imbalance"),
}


@pytest.mark.parametrize("case", list(MINIMISATION_PROBLEMS), ids=list(MINIMISATION_PROBLEMS))
def test_minimisation_parameter_problems_name_their_key(case):
    extra, key = MINIMISATION_PROBLEMS[case]
    data = base()
    data["randomisation"] = {"method": "minimisation", **extra}
    (problem,) = problems_of(data)
    assert problem.startswith(key + ":")


def test_biased_coin_with_three_arms_is_refused():
    data = base()
    data["trial"].update(arms=["a", "b", "c"], ratio=[1, 1, 1])
    data["randomisation"] = {"method": "biased_coin"}
    (problem,) = problems_of(data)
    assert "two arms" in problem


def test_several_problems_are_all_reported_at_once():
    data = base()
    data["randomisation"]["method"] = "blocs"
    data["trial"]["ratio"] = [1, 2, 3]
    data["strata"]["site"] = []
    data["eligibility"][0]["eligible_if"] = "maybe"
    data["extras"] = 1
    with pytest.raises(ProtocolError) as info:
        Protocol.from_dict(data)
    keys = sorted(problem.split(":")[0] for problem in info.value.problems)
    assert keys == sorted(
        ["randomisation.method", "trial.ratio", "strata.site", "eligibility[0] (admitted).eligible_if", "extras"]
    )
    assert "5 problems" in str(info.value)


def test_bad_toml_is_a_protocol_error():
    with pytest.raises(ProtocolError) as info:
        Protocol.from_toml_string("[trial\nid = ", source="broken.toml")
    assert info.value.problems[0].startswith("not valid TOML")
    assert str(info.value).startswith("broken.toml: ")


def test_missing_file_is_a_protocol_error(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ProtocolError) as info:
        Protocol.from_toml(path)
    assert info.value.problems == [f"file not found: {path}"]


def test_file_problems_name_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[trial]\nid = "x"\nname = "X"\narms = ["a", "b"]\n[randomisation]\nmethod = "nope"\n')
    with pytest.raises(ProtocolError) as info:
        Protocol.from_toml(path)
    assert info.value.source == str(path)
    assert info.value.problems[0].startswith("randomisation.method:")


def test_protocol_error_is_a_value_error():
    with pytest.raises(ValueError):
        Protocol.from_dict({})


# ------------------------------------------------------------------- round-trips
@settings(max_examples=200, deadline=None)
@given(weights=st.lists(st.one_of(st.integers(1, 50), st.floats(1e-3, 1e3)), min_size=3, max_size=3))
def test_block_weights_round_trip_exactly(weights):
    data = base()
    data["randomisation"].update(block_sizes=[2, 4, 6], block_weights=weights)
    protocol = Protocol.from_dict(data)
    assert sum(protocol.randomisation.block_weights) == pytest.approx(1.0, abs=1e-12)
    assert Protocol.from_dict(protocol.to_dict()) == protocol


@pytest.mark.parametrize(
    "randomisation",
    [
        {"method": "simple", "capacity": 7},
        {"method": "blocks", "block_sizes": [2, 6], "block_weights": [3, 1]},
        {"method": "stratified_blocks", "block_sizes": [4], "stratify_by": ["offence"]},
        {"method": "minimisation", "weights": {"site": 2.5}, "probability": 0.9, "imbalance": "variance"},
        {"method": "minimisation", "factors": ["offence"], "probability": 1.0},
        {"method": "biased_coin", "probability": 0.75},
    ],
    ids=lambda r: r["method"],
)
def test_to_dict_round_trips_every_method(randomisation):
    data = base()
    data["randomisation"] = randomisation
    protocol = Protocol.from_dict(data)
    assert Protocol.from_dict(protocol.to_dict()) == protocol
    assert Protocol.from_dict(json.loads(json.dumps(protocol.to_dict()))) == protocol


def test_defaults_are_filled_in():
    data = base()
    del data["trial"]["ratio"]
    data["randomisation"] = {"method": "minimisation"}
    protocol = Protocol.from_dict(data)
    assert protocol.ratio == (1, 1)
    assert protocol.randomisation.factors == ("site", "offence")
    assert protocol.randomisation.weights == (1.0, 1.0)
    assert protocol.randomisation.probability == 0.8
    assert protocol.randomisation.capacity == 1000
    assert protocol.eligibility[0].answers == ("yes", "no")


# ---------------------------------------------------------------- enrolment checks
CHECK_STRATA = {
    "complete": ({"site": "a", "offence": "violence"}, []),
    "missing factor": ({"site": "a"}, ["missing stratum 'offence'"]),
    "unknown level": ({"site": "z", "offence": "violence"}, ["unknown level 'z' for stratum 'site'"]),
    "unknown factor": (
        {"site": "a", "offence": "violence", "age": "young"},
        ["unknown stratum 'age'"],
    ),
}


@pytest.mark.parametrize("case", list(CHECK_STRATA), ids=list(CHECK_STRATA))
def test_check_strata(case):
    strata, expected = CHECK_STRATA[case]
    problems = Protocol.from_dict(base()).check_strata(strata)
    assert len(problems) == len(expected)
    for problem, phrase in zip(problems, expected):
        assert problem.startswith(phrase)


CHECK_ANSWERS = {
    "eligible": ({"admitted": "yes", "risk": "low"}, 0, []),
    "ineligible": ({"admitted": "no", "risk": "high"}, 0, ["admitted=no", "risk=high"]),
    "missing answer": ({"admitted": "yes"}, 1, []),
    "answer not allowed": ({"admitted": "perhaps", "risk": "low"}, 1, []),
    "unknown question": ({"admitted": "yes", "risk": "low", "age": "30"}, 1, []),
}


@pytest.mark.parametrize("case", list(CHECK_ANSWERS), ids=list(CHECK_ANSWERS))
def test_check_answers_splits_problems_from_ineligibility(case):
    answers, n_problems, reasons = CHECK_ANSWERS[case]
    problems, got = Protocol.from_dict(base()).check_answers(answers)
    assert len(problems) == n_problems, problems
    assert got == reasons


# ----------------------------------------------------------------- sequence keys
def test_sequence_keys_of_stratified_design_in_file_order():
    protocol = Protocol.from_dict(base())
    assert protocol.sequence_keys() == [
        "site=a|offence=property",
        "site=a|offence=violence",
        "site=b|offence=property",
        "site=b|offence=violence",
    ]


def test_sequence_keys_follow_stratify_by_only():
    data = base()
    data["randomisation"]["stratify_by"] = ["offence"]
    protocol = Protocol.from_dict(data)
    assert protocol.sequence_keys() == ["offence=property", "offence=violence"]
    assert protocol.sequence_key({"site": "b", "offence": "violence"}) == "offence=violence"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_referral_maps_to_one_sealed_sequence(path):
    protocol = Protocol.from_toml(path)
    keys = protocol.sequence_keys()
    assert len(keys) == len(set(keys))
    names = list(protocol.strata)
    combos = [dict(zip(names, levels)) for levels in itertools.product(*protocol.strata.values())]
    used = {protocol.sequence_key(strata) for strata in combos}
    assert used == set(keys)  # every sequence is reachable and nothing else is
    if protocol.randomisation.method == "stratified_blocks":
        n_cells = 1
        for name in protocol.randomisation.stratify_by:
            n_cells *= len(protocol.strata[name])
        assert len(keys) == n_cells
    else:
        assert keys == ["all"]


# ------------------------------------------------------------- bounds on careless input
HARDENING = {
    # case: (key path, value, key named, text the message must hold)
    "block size of two billion": (
        ("randomisation", "block_sizes"),
        [2, 2_000_000_000],
        "randomisation.block_sizes",
        "larger than 1000, the largest block size allowed",
    ),
    "block size of twenty million": (
        ("randomisation", "block_sizes"),
        [20_000_000],
        "randomisation.block_sizes",
        "larger than 1000",
    ),
    "arm name with a newline": (("trial", "arms"), ["control", "conf\nerence"], "trial.arms", "no spaces, line breaks"),
    "arm name with markup": (("trial", "arms"), ["control", "<b>conference</b>"], "trial.arms", "or markup"),
    "arm name of 65 characters": (("trial", "arms"), ["control", "c" * 65], "trial.arms", "1-64 letters"),
    "arm name with a space": (("trial", "arms"), ["control", "restorative justice"], "trial.arms", "1-64"),
    "trial id ending in a newline": (("trial", "id"), "t-1\n", "trial.id", "must be 1-100 letters"),
    "block weight infinite": (
        ("randomisation", "block_weights"),
        [1.0, float("inf")],
        "randomisation.block_weights",
        "positive finite numbers",
    ),
}


@pytest.mark.parametrize("case", list(HARDENING), ids=list(HARDENING))
def test_careless_values_are_refused_with_the_limit_stated(case):
    (section, key), value, named, text = HARDENING[case]
    data = base()
    data[section][key] = value
    (problem,) = problems_of(data)
    assert problem.startswith(named + ":") and text in problem, problem


def test_an_arm_name_of_64_characters_is_accepted():
    data = base()
    data["trial"]["arms"] = ["control", "c" * 64]
    assert Protocol.from_dict(data).arms[1] == "c" * 64


def test_a_stratum_name_ending_in_a_newline_is_refused():
    data = base()
    data["strata"] = {"site\n": ["a", "b"], "offence": ["property", "violence"]}
    data["randomisation"]["stratify_by"] = ["offence"]
    assert any(p.startswith("strata.site\n:") for p in problems_of(data))


@pytest.mark.parametrize(
    "weights, text",
    [
        ({"site": float("nan")}, "numbers from 0 to 1,000,000"),
        ({"site": float("inf")}, "numbers from 0 to 1,000,000"),
        ({"site": 1e9}, "numbers from 0 to 1,000,000"),
        ({"site": 0, "offence": 0}, "every factor's weight is 0"),
    ],
    ids=["nan", "inf", "above_the_limit", "all_zero"],
)
def test_minimisation_weights_must_be_finite_bounded_and_not_all_zero(weights, text):
    data = base()
    data["randomisation"] = {"method": "minimisation", "weights": weights}
    (problem,) = problems_of(data)
    assert problem.startswith("randomisation.weights:") and text in problem, problem


def test_toml_nan_and_inf_weights_are_refused_from_a_file():
    text = (
        '[trial]\nid = "t"\nname = "T"\narms = ["a", "b"]\n[randomisation]\nmethod = "minimisation"\n'
        'weights = { site = nan, offence = inf }\n[strata]\nsite = ["x", "y"]\noffence = ["p", "q"]\n'
    )
    with pytest.raises(
        ProtocolError, match=r"randomisation\.weights: weights of \['site', 'offence'\] must be numbers"
    ):
        Protocol.from_toml_string(text)


# ---------------------------------------------------------------- labels
LABELS = {"site": {"label": "Police force area", "levels": {"a": "Avon and Somerset"}}}
LABEL_PROBLEMS = {
    "not a stratum": ({"sight": {"label": "Site"}}, "labels.sight", "not a stratum"),
    "not a level": ({"site": {"levels": {"c": "C"}}}, "labels.site.levels.c", "not a level of site"),
    "unknown key": ({"site": {"lable": "Site"}}, "labels.site.lable", "unknown key"),
    "empty": ({"site": {"label": " "}}, "labels.site.label", "non-empty string"),
    "not text": ({"site": {"levels": {"a": 3}}}, "labels.site.levels.a", "non-empty string"),
    "two lines": ({"site": {"label": "Site\n<script>"}}, "labels.site.label", "on one line"),
    "too long": ({"site": {"label": "x" * 201}}, "labels.site.label", "at most 200 characters"),
    "not a table": ({"site": "Site"}, "labels.site", "must be a table"),
    "levels not a table": ({"site": {"levels": ["a"]}}, "labels.site.levels", "must be a table"),
}


@pytest.mark.parametrize("case", list(LABEL_PROBLEMS), ids=list(LABEL_PROBLEMS))
def test_careless_labels_are_refused_naming_the_key(case):
    labels, key, phrase = LABEL_PROBLEMS[case]
    problems = problems_of({**base(), "labels": labels})
    assert len(problems) == 1 and problems[0].startswith(key + ":") and phrase in problems[0], problems


def test_labels_give_words_for_ids_and_round_trip():
    protocol = Protocol.from_dict({**base(), "labels": LABELS})
    assert protocol.stratum_label("site") == "Police force area" and protocol.stratum_label("offence") == "offence"
    assert (protocol.level_label("site", "a"), protocol.level_label("site", "b")) == ("Avon and Somerset", "b")
    assert Protocol.from_dict(json.loads(json.dumps(protocol.to_dict()))) == protocol


def test_a_protocol_without_labels_reads_back_as_before():
    """Registries sealed before labels existed hold protocols without the key: unchanged."""
    assert "labels" not in Protocol.from_dict(base()).to_dict()


@pytest.mark.parametrize("method, probability", [("biased_coin", 2 / 3), ("minimisation", 0.8)])
def test_a_randomisation_built_in_python_gets_the_default_probability_of_a_file(method, probability):
    from rjtrial.protocol import Randomisation

    spec = Randomisation(method=method)
    assert spec.probability == probability == spec.favoured_probability
    assert Randomisation(method=method, probability=0.9).probability == 0.9


def test_a_method_without_a_favoured_arm_has_no_probability():
    from rjtrial.protocol import Randomisation

    assert Randomisation(method="simple").probability is None
    with pytest.raises(ValueError, match="'simple' has no probability"):
        Randomisation(method="simple").favoured_probability
