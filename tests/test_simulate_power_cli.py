"""``rjtrial power`` and ``rjtrial sample-size`` (rjtrial/cli/power.py): the table, --json,
the figure and CSV, progress and the time split, options, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from rjtrial.cli import main
from rjtrial.cli import power as power_cli
from rjtrial.simulate import power as P
from rjtrial.simulate.sample_size import sample_size

ROOT = Path(__file__).resolve().parents[1]
LONDON = str(ROOT / "synthetic" / "jrc-london-burglary.toml")
BASE = [LONDON, "--n", "40,90", "--reps", "12", "--seed", "4", "--workers", "1"]


@pytest.fixture()
def truth_options(tmp_path):
    return ["--truth-population", "20000", "--truth-cache", str(tmp_path)]


def _api(**options):
    kwargs = {"n": [40, 90], "reps": 12, "rng": 4, "workers": 1, **options}
    return P.power(LONDON, **kwargs)


def test_the_analyses_are_the_modules():
    assert power_cli.ANALYSES == P.ANALYSES


def test_json_is_the_api_result(capsys, truth_options, tmp_path):
    assert main(["power", *BASE, "--json", *truth_options]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # capsys is not a terminal: no progress bar
    data = json.loads(out)
    expected = _api(truth_population=20000, truth_cache_dir=tmp_path).to_dict()
    assert data["rows"] == expected["rows"]
    settings = data["settings"]
    assert (settings["analysis"], settings["alpha"], settings["seed"], settings["reps"], settings["n"]) == (
        "cox",
        0.05,
        "4",
        12,
        [40, 90],
    )
    assert settings["truths"] == expected["settings"]["truths"]


def test_table_output_ends_with_the_time_split(capsys, truth_options):
    assert main(["power", *BASE, *truth_options]) == 0
    out = capsys.readouterr().out
    frame = _api(schoenfeld=False).summary_frame()
    lines = out.splitlines()
    assert "Cox (Efron) Wald test" in lines[0] and "seed 4" in lines[0]
    assert "Schoenfeld ITT" in lines[1]
    for line, row in zip(lines[2:4], frame.itertuples()):
        fields = line.split()
        assert float(fields[0]) == 0.82 and int(fields[1]) == row.n
        assert float(fields[2]) == pytest.approx(row.power, abs=5e-4)
    assert "intention-to-treat hazard ratio of the Monte Carlo truth" in out
    last = lines[-1]
    assert last.startswith("24 trials in") and "generation" in last and "follow-up" in last and "fitting" in last


def test_the_grid_over_sizes_and_effects_with_its_figure_and_csv(capsys, truth_options, tmp_path):
    figure, grid = tmp_path / "power.png", tmp_path / "power.csv"
    assert (
        main(
            [
                "power",
                LONDON,
                "--n",
                "40,90,150",
                "--hazard-ratio",
                "0.6,0.9",
                "--reps",
                "10",
                "--seed",
                "2",
                "--workers",
                "1",
                "--plot",
                str(figure),
                "--csv",
                str(grid),
                *truth_options,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    written = pd.read_csv(grid)
    expected = P.power(
        LONDON,
        n=[40, 90, 150],
        hazard_ratio=[0.6, 0.9],
        reps=10,
        rng=2,
        workers=1,
        truth_population=20000,
        truth_cache_dir=tmp_path,
    ).summary_frame()
    pd.testing.assert_frame_equal(
        written, expected.reset_index(drop=True), check_dtype=False, check_like=False, check_exact=False, rtol=1e-12
    )
    assert written[["hazard_ratio", "n"]].values.tolist() == [
        [0.6, 40],
        [0.6, 90],
        [0.6, 150],
        [0.9, 40],
        [0.9, 90],
        [0.9, 150],
    ]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000
    assert f"wrote the figure to {figure}" in out and f"wrote the grid to {grid}" in out


@pytest.mark.parametrize("analysis", ["logrank", "rate_ratio"])
def test_analysis_and_alpha_options(capsys, analysis):
    assert main(["power", *BASE, "--analysis", analysis, "--alpha", "0.2", "--no-schoenfeld", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = _api(analysis=analysis, alpha=0.2, schoenfeld=False).to_dict()
    assert data["rows"] == expected["rows"] and data["settings"]["alpha"] == 0.2
    assert all(row["schoenfeld_power"] is None for row in data["rows"])


def test_seed_changes_the_result_and_null_option(capsys):
    assert main(["power", *BASE, "--no-schoenfeld", "--json", "--null", "--set", "treatment.conference_held=0.5"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["settings"]["hazard_ratio"] == [1.0]
    args = [a if a != "4" else "5" for a in BASE]
    assert main(["power", *args, "--no-schoenfeld", "--json", "--null", "--set", "treatment.conference_held=0.5"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["settings"]["seed"] == "5"
    assert [r["mean_estimate"] for r in first["rows"]] != [r["mean_estimate"] for r in second["rows"]]


def test_progress_bar_on_request_and_on_a_terminal_only(capsys, monkeypatch):
    assert main(["power", *BASE, "--no-schoenfeld", "--progress"]) == 0
    out, err = capsys.readouterr()
    assert "24/24" in err and "<00:00" in err and "24/24" not in out  # tqdm: done/total and the time left
    monkeypatch.setattr(power_cli, "_is_terminal", lambda stream: True)
    assert main(["power", *BASE, "--no-schoenfeld"]) == 0
    assert "24/24" in capsys.readouterr().err
    assert main(["power", *BASE, "--no-schoenfeld", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_workers_option_runs_a_pool_with_the_same_numbers(capsys):
    args = [a if a != "1" else "2" for a in BASE]  # --workers 2
    assert main(["power", *args, "--no-schoenfeld", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["backend"] == "thread pool" and data["settings"]["workers"] == 2
    assert data["rows"] == _api(schoenfeld=False).to_dict()["rows"]


def test_scheduler_option_runs_on_dask(capsys):
    import distributed  # a dependency: the test fails, never skips, without it

    with distributed.LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        assert main(["power", *BASE[:-2], "--scheduler", cluster.scheduler_address, "--no-schoenfeld", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["backend"] == "dask"
    assert data["rows"] == _api(schoenfeld=False).to_dict()["rows"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--n", "0"], "--n"),
        (["--n", "200,x"], "--n"),
        (["--reps", "0"], "--reps"),
        (["--alpha", "1.5"], "--alpha"),
        (["--alpha", "0"], "--alpha"),
        (["--workers", "0"], "--workers"),
        (["--analysis", "weibull"], "--analysis"),
        (["--seed", "-3"], "--seed"),
        (["--truth-population", "0"], "--truth-population"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
        (["--hazard-ratio", "0.8,x"], "--hazard-ratio"),
        (["--hazard-ratio", "0,0.8"], "--hazard-ratio"),
        (["--hazard-ratio", "0.8", "--null"], "--null"),
        (["--plot", "/no/such/folder/p.png"], "--plot"),
        (["--csv", "/no/such/folder/p.csv"], "--csv"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(capsys, options, message):
    assert main(["power", LONDON, *options]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("rjtrial: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_unknown_figure_format_is_one_line(capsys, tmp_path):
    assert main(["power", *BASE, "--no-schoenfeld", "--plot", str(tmp_path / "p.xyz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rjtrial: error: --plot") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.xyz").exists()


def test_missing_scenario_is_one_line(capsys, tmp_path):
    assert main(["power", str(tmp_path / "nope.toml"), "--reps", "2"]) == 2
    err = capsys.readouterr().err
    assert "nope.toml" in err and len(err.strip().splitlines()) == 1


def test_mc_standard_error_in_json_is_binomial(capsys):
    assert main(["power", *BASE, "--no-schoenfeld", "--json"]) == 0
    for row in json.loads(capsys.readouterr().out)["rows"]:
        assert row["mc_std_error"] == pytest.approx(math.sqrt(row["power"] * (1 - row["power"]) / row["reps"]))


# ----------------------------------------------------------------------------- sample-size
SEARCH = [
    LONDON,
    "--power",
    "0.5",
    "--hazard-ratio",
    "0.5",
    "--reps",
    "40",
    "--seed",
    "3",
    "--workers",
    "1",
    "--resolution",
    "0.1",
]


def test_sample_size_json_is_the_api_result(capsys, truth_options, tmp_path):
    assert main(["sample-size", *SEARCH, "--json", *truth_options]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = sample_size(
        LONDON,
        power=0.5,
        hazard_ratio=0.5,
        reps=40,
        rng=3,
        workers=1,
        resolution=0.1,
        truth_population=20000,
        truth_cache_dir=tmp_path,
    ).to_dict()
    for key in ("n", "power", "n_lower", "n_upper", "schoenfeld_n", "schoenfeld_n_naive", "evaluations"):
        assert data[key] == expected[key], key


def test_sample_size_text(capsys, truth_options):
    assert main(["sample-size", *SEARCH, *truth_options]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("sample size by simulation: jrc-london-burglary") and "power 0.5" in lines[0]
    assert lines[1].lstrip().startswith("n = ") and "Monte Carlo uncertainty of n" in lines[2]
    assert "Schoenfeld:" in out and "sizes simulated (power)" in out and "CPU seconds" in lines[-1]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--power", "1"], "--power"),
        (["--power", "0"], "--power"),
        (["--hazard-ratio", "0"], "--hazard-ratio"),
        (["--resolution", "1"], "--resolution"),
        (["--reps", "0"], "--reps"),
        (["--hazard-ratio", "1"], "hazard_ratio"),
        (["--n-max", "5"], "n_max"),
    ],
)
def test_sample_size_bad_input_is_one_line(capsys, options, message):
    assert main(["sample-size", LONDON, "--no-schoenfeld", *options]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("rjtrial: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_the_progress_bar_draws_its_100_percent_line_once(capsys, monkeypatch):
    """In a log (carriage returns not overwriting), the last batch's update and close() drew 100% twice."""
    import time

    from rjtrial.simulate._runner import Runner

    with Runner(workers=1, progress=True) as runner:
        runner.expect(20)
        for _ in range(2):
            time.sleep(0.15)  # beyond tqdm's minimum interval: every update may draw
            runner._advance(10)
    err = capsys.readouterr().err
    assert err.count("20/20") == 1 and "10/20" in err
