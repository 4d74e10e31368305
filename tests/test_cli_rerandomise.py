"""``rjtrial rerandomise`` (rjtrial/cli/rerandomise.py): agrees with the Python API;
bad input is one line on standard error and exit code 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rjtrial.cli import main
from rjtrial.rerandomisation import rerandomise
from rjtrial.simulate import simulate_trial


def _from_registry(db):
    """The protocol and participants a command reads from the registry (statistics never open it)."""
    from rjtrial.registry import Registry

    with Registry.open(db) as registry:
        return registry.protocol, registry.participants()


@pytest.fixture(scope="module")
def trial_files(tmp_path_factory):
    """A small registry trial and its follow-up CSV (written as `rjtrial followup` writes it)."""
    folder = tmp_path_factory.mktemp("cli")
    trial = simulate_trial(
        "synthetic/jrc-london-burglary.toml",
        rng=4,
        registry=folder,
        truth=False,
        overrides={"referrals.randomised": 80},
    )
    path = folder / "followup.csv"
    trial.followup().to_csv(path, index=False, date_format="%Y-%m-%d")
    return folder / "trial.db", path


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("statistic", ["logrank", "rate", "prevalence", "mean:reoffences"])
def test_json_agrees_with_the_api(trial_files, capsys, statistic):
    db, csv = trial_files
    code, out, err = run(
        [
            "rerandomise",
            "--db",
            str(db),
            "--followup",
            str(csv),
            "--statistic",
            statistic,
            "--reps",
            "300",
            "--seed",
            "6",
            "--json",
        ],
        capsys,
    )
    assert code == 0 and err == ""
    data = json.loads(out)
    expected = rerandomise(
        *_from_registry(db), pd.read_csv(csv, dtype={"id": str}), statistic=statistic, reps=300, rng=6
    ).to_dict()
    assert data == json.loads(json.dumps(expected))
    assert set(data) >= {"observed", "p_value", "mc_std_error", "asymptotic_p_value", "reps", "seed", "design"}
    assert data["design"]["method"] == "stratified_blocks" and data["design"]["strata"] == ["site", "offence"]


def test_text_output_names_every_figure(trial_files, capsys):
    db, csv = trial_files
    code, out, _ = run(["rerandomise", "--db", str(db), "--followup", str(csv), "--reps", "200", "--seed", "1"], capsys)
    result = rerandomise(*_from_registry(db), pd.read_csv(csv, dtype={"id": str}), reps=200, rng=1)
    assert code == 0
    assert out.strip() == result.format()
    for words in ("observed", "p-value", "Monte Carlo SE", "asymptotic p", "stratified_blocks", "site, offence"):
        assert words in out


def test_without_a_seed_the_printed_seed_repeats_the_run(trial_files, capsys):
    db, csv = trial_files
    code, out, _ = run(["rerandomise", "--db", str(db), "--followup", str(csv), "--reps", "100", "--json"], capsys)
    first = json.loads(out)
    code, out, _ = run(
        ["rerandomise", "--db", str(db), "--followup", str(csv), "--reps", "100", "--json", "--seed", first["seed"]],
        capsys,
    )
    assert code == 0 and json.loads(out) == first


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--statistic", "hazard"], "--statistic"),
        (["--statistic", "mean:"], "--statistic"),
        (["--statistic", "mean:nothere"], "no column 'nothere'"),
        (["--reps", "0"], "reps must be"),
        (["--seed", "-4"], "--seed must be"),
        (["--workers", "0"], "workers must be"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(trial_files, capsys, extra, words):
    db, csv = trial_files
    code, out, err = run(["rerandomise", "--db", str(db), "--followup", str(csv), *extra], capsys)
    assert code == 2 and out == ""
    assert err.startswith("rjtrial: error:") and err.count("\n") == 1 and words in err
    assert "Traceback" not in err


def test_a_mismatched_followup_is_one_line_naming_row_column_and_id(trial_files, capsys, tmp_path):
    db, csv = trial_files
    table = pd.read_csv(csv, dtype={"id": str})
    table.loc[16, "id"] = "R-999999"
    bad = tmp_path / "bad.csv"
    table.to_csv(bad, index=False)
    code, _, err = run(["rerandomise", "--db", str(db), "--followup", str(bad), "--reps", "10", "--seed", "1"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert (
        "row 17" in err
        and "'id'" in err
        and "R-999999 is not a randomised participant of trial jrc-london-burglary" in err
    )


@pytest.mark.parametrize("which", ["db", "followup"])
def test_missing_files_are_one_line_and_exit_2(trial_files, capsys, tmp_path, which):
    db, csv = trial_files
    paths = {"db": str(db), "followup": str(csv), which: str(tmp_path / "absent")}
    code, _, err = run(["rerandomise", "--db", paths["db"], "--followup", paths["followup"], "--seed", "1"], capsys)
    assert code == 2 and err.startswith("rjtrial: error:") and err.count("\n") == 1
    assert "absent" in err
