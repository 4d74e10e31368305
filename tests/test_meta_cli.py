"""rjtrial.meta.cli: ``rjtrial meta STUDIES.csv`` (agrees with the Python API)."""

from __future__ import annotations

import argparse
import json

import pytest

from rjtrial import datasets, effects
from rjtrial.cli.meta import add_commands as add_parser
from rjtrial.errors import DataError, RjtrialError
from rjtrial.meta import egger, pool, trim_and_fill


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise RjtrialError(message)


def run(argv, capsys):
    parser = _Parser(prog="rjtrial")
    add_parser(parser.add_subparsers(dest="command", parser_class=_Parser))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


@pytest.fixture
def bcg_csv(tmp_path):
    b = datasets.load_bcg()
    table = b.assign(
        study=b.author + " " + b.year.astype(str),
        events_treatment=b.tpos,
        n_treatment=b.tpos + b.tneg,
        events_control=b.cpos,
        n_control=b.cpos + b.cneg,
    )
    path = tmp_path / "bcg.csv"
    table[["study", "events_treatment", "n_treatment", "events_control", "n_control", "alloc"]].to_csv(
        path, index=False
    )
    return path


def api_fit(**kwargs):
    b = datasets.load_bcg()
    es = effects.log_risk_ratio(
        b, events_treatment="tpos", n_treatment=b.tpos + b.tneg, events_control="cpos", n_control=b.cpos + b.cneg
    )
    return pool(es, **kwargs)


@pytest.mark.parametrize("test", ["z", "knha"])
def test_json_agrees_with_the_api(bcg_csv, capsys, test):
    code, out = run(
        ["meta", str(bcg_csv), "--measure", "log_risk_ratio", "--method", "REML", "--test", test, "--json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    res = api_fit(method="REML", test=test)
    overall = data["pooled"][-1]
    assert overall["estimate"] == pytest.approx(res.estimate, abs=1e-12)
    assert overall["ci_lower"] == pytest.approx(res.ci_lower, abs=1e-12)
    assert data["heterogeneity"]["tau2"] == pytest.approx(res.tau2, abs=1e-12)
    assert data["diagnostics"]["egger"]["statistic"] == pytest.approx(egger(res).statistic, abs=1e-12)
    assert data["diagnostics"]["trim_and_fill"]["k0"] == trim_and_fill(res).k0
    assert len(data["studies"]) == 13


def test_text_output_and_plots(bcg_csv, capsys, tmp_path):
    forest, funnel = tmp_path / "f.png", tmp_path / "u.png"
    code, out = run(
        [
            "meta",
            str(bcg_csv),
            "--measure",
            "log_risk_ratio",
            "--subgroup",
            "alloc",
            "--forest",
            str(forest),
            "--funnel",
            str(funnel),
        ],
        capsys,
    )
    assert code == 0
    assert "Egger's regression test" in out and "Trim-and-fill: 1 study imputed on the right" in out
    assert forest.stat().st_size > 5000 and funnel.stat().st_size > 5000


def test_precomputed_effect_sizes(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("study,estimate,std_error\nA,-0.2,0.1\nB,-0.1,0.15\nC,0.05,0.2\nD,-0.3,0.12\n")
    code, out = run(["meta", str(path), "--measure", "cohens_d", "--method", "DL", "--json"], capsys)
    data = json.loads(out)
    assert data["measure"] == "cohens_d" and data["method"] == "DL"
    assert [s["study"] for s in data["studies"]] == ["A", "B", "C", "D"]


@pytest.mark.parametrize(
    "content,measure,message",
    [
        ("study,estimate,variance\nA,x,0.1\nB,0.1,0.2\n", "cohens_d", "row 1, column 'estimate'"),  # the file's row
        ("study,m\nA,1\n", "hedges_g", "needs columns mean_treatment"),
        ("study,estimate,variance\nA,0.1,-1\nB,0.2,0.1\n", "cohens_d", "variance must be positive"),
    ],
)
def test_bad_tables_are_one_line_data_errors(tmp_path, capsys, content, measure, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        run(["meta", str(path), "--measure", measure], capsys)
    assert "\n" not in str(info.value)


def test_missing_file_and_bad_method(tmp_path, capsys):
    with pytest.raises(RjtrialError, match="studies file .* not found"):
        run(["meta", str(tmp_path / "none.csv"), "--measure", "cohens_d"], capsys)
    with pytest.raises(RjtrialError, match="invalid choice"):
        run(["meta", "x.csv", "--measure", "cohens_d", "--method", "XX"], capsys)


def test_wired_into_rjtrial_cli(bcg_csv, capsys):
    from rjtrial import cli

    assert "meta" in cli.build_parser().format_help()
    assert cli.main(["meta", str(bcg_csv), "--measure", "log_risk_ratio", "--json"]) == 0


def test_the_parser_offers_every_method_and_test():
    # the parser's lists are spelled out (so `rjtrial --help` needs no scipy); they must stay the API's
    from rjtrial.cli import meta as cli
    from rjtrial.meta.bayesian import INTERVALS, TAU_PRIORS
    from rjtrial.meta.pooling import METHODS
    from rjtrial.meta.regression import TESTS
    from rjtrial.meta.table import MEASURE_COLUMNS, MEASURES

    assert cli.METHODS == METHODS and cli.TESTS == TESTS
    assert set(MEASURE_COLUMNS) <= set(cli.MEASURES)
    assert cli.MEASURES == MEASURES and set(effects.MEASURES) < set(cli.MEASURES)
    assert cli.TAU_PRIORS == TAU_PRIORS and cli.INTERVALS == INTERVALS


# ----------------------------------------------- careless and hostile tables: one clear error
@pytest.mark.parametrize(
    "content, measure, where, message",
    [
        pytest.param(
            "study,estimate,std_error\nA,0.1,0.1\nB,0.2,-0.3\nC,0.0,0.2\n",
            "cohens_d",
            (2, "std_error"),
            "positive",
            id="negative-std-error",
        ),
        pytest.param(
            "study,estimate,variance,std_error\nA,0.1,0.01,0.1\nB,0.2,0.04,0.3\nC,0.0,0.04,0.2\n",
            "cohens_d",
            (2, "std_error"),
            "disagree",
            id="variance-and-std-error-disagree",
        ),
        pytest.param(
            "study,estimate,variance\nA,0.1,0.01\nB,1e308,0.04\nC,0.0,0.04\n",
            "cohens_d",
            (2, "estimate"),
            "too large",
            id="estimate-1e308",
        ),
        pytest.param(
            "study,estimate,variance\nA,0.1,0.01\nB,0.2,1e-308\nC,0.0,0.04\n",
            "cohens_d",
            (2, "variance"),
            "too small",
            id="variance-1e-308",
        ),
        pytest.param(
            "study,estimate,variance\nA,0.1,0.01\nB,0.2,1e308\nC,0.0,0.04\n",
            "cohens_d",
            (2, "variance"),
            "too large",
            id="variance-1e308",
        ),
        pytest.param(
            "study,estimate,variance\nA,0.1,0.01\nB,,\nC,0.0,0.04\n",
            "cohens_d",
            (2, "estimate"),
            "missing",
            id="blank-row",
        ),
        pytest.param(
            "study,estimate,variance\nA,0.1,0.01\nB,0.2,0.04\nA,0.0,0.04\n",
            "cohens_d",
            (3, "study"),
            "appears twice",
            id="duplicate-study",
        ),
        pytest.param(
            "study,events_treatment,n_treatment,events_control,n_control\nA,3,50,5,50\nB,2.5,40,4,40\n",
            "log_risk_ratio",
            (2, "events_treatment"),
            "whole number",
            id="fractional-events",
        ),
        pytest.param(
            "study,events_treatment,n_treatment,events_control,n_control\nA,3,50,5,50\nB,2,40.5,4,40\n",
            "log_odds_ratio",
            (2, "n_treatment"),
            "whole number",
            id="fractional-n",
        ),
        pytest.param(
            "study,events_treatment,n_treatment,events_control,n_control\nA,3,50,5,50\nB,two,40,4,40\n",
            "log_risk_ratio",
            (2, "events_treatment"),
            "numeric",
            id="text-count",
        ),
        pytest.param(
            "study,events_treatment,person_time_treatment,events_control,person_time_control\n"
            "A,3,500,5,500\nB,1.5,400,4,400\n",
            "log_incidence_rate_ratio",
            (2, "events_treatment"),
            "whole number",
            id="fractional-rate-events",
        ),
    ],
)
def test_bad_study_tables_name_the_file_row_and_column(tmp_path, capsys, content, measure, where, message):
    path = tmp_path / "studies.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        run(["meta", str(path), "--measure", measure], capsys)
    assert (info.value.table, info.value.row, info.value.column) == (str(path), *where)
    from rjtrial import cli

    assert cli.main(["meta", str(path), "--measure", measure]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and "nan" not in captured.err


def test_std_error_and_variance_that_agree_to_rounding_are_accepted(tmp_path, capsys):
    path = tmp_path / "studies.csv"
    path.write_text("study,estimate,variance,std_error\nA,0.1,0.0151,0.123\nB,0.2,0.04,0.2\nC,0.0,0.09,0.3\n")
    code, out = run(["meta", str(path), "--measure", "cohens_d", "--json"], capsys)
    assert code == 0 and [s["variance"] for s in json.loads(out)["studies"]] == [0.0151, 0.04, 0.09]


# ------------------------------------------- a diagnostic that cannot be computed is said so
EQUAL = "study,estimate,variance\nA,0.1,0.04\nB,-0.2,0.04\nC,0.3,0.04\nD,0.05,0.04\n"


def test_equal_variances_still_give_the_pooled_estimate_and_say_egger_is_not_computable(tmp_path, capsys):
    # all studies the same size: Egger's regression has a constant predictor; `rjtrial meta` exited 2
    path = tmp_path / "equal.csv"
    path.write_text(EQUAL)
    code, out = run(["meta", str(path), "--measure", "other"], capsys)
    assert code == 0
    assert "Egger's regression test: not computable: all standard errors are equal" in out
    assert "Begg's rank correlation: not computable: all standard errors are equal" in out
    assert "estimate" in out.lower() and "0.0625" in out  # the pooled (equal-weight) mean is shown


def test_equal_variances_in_json(tmp_path, capsys):
    path = tmp_path / "equal.csv"
    path.write_text(EQUAL)
    code, out = run(["meta", str(path), "--measure", "other", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["pooled"][-1]["estimate"] == pytest.approx(0.0625, abs=1e-12)
    egger_out = data["diagnostics"]["egger"]
    assert egger_out == {"computable": False, "reason": "all standard errors are equal"}
    assert data["diagnostics"]["fail_safe_n"]["computable"] is True


@pytest.fixture
def assink_csv(tmp_path):
    path = tmp_path / "assink.csv"
    datasets.load_assink2016().to_csv(path, index=False)
    return path


def test_effect_id_fits_the_three_level_model(assink_csv, capsys):
    from rjtrial.meta import pool_multilevel

    code, out = run(["meta", str(assink_csv), "--measure", "cohens_d", "--effect-id", "esid", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    api = pool_multilevel(datasets.load_assink2016(), levels=["study", "esid"])
    assert data["model"]["estimate"] == pytest.approx(api.estimate, abs=1e-12)
    assert data["model"]["variance_components"][1]["sigma2"] == pytest.approx(api.sigma2[1], abs=1e-12)
    assert data["robust"] is None


def test_robust_with_effect_id_agrees_with_the_api(assink_csv, capsys):
    from rjtrial.meta import pool_multilevel, robust

    code, out = run(
        ["meta", str(assink_csv), "--measure", "cohens_d", "--effect-id", "esid", "--robust", "--test", "t", "--json"],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    api = robust(pool_multilevel(datasets.load_assink2016(), levels=["study", "esid"], test="t"))
    row = data["robust"]["summary"][0]
    assert row["std_error"] == pytest.approx(api.summary_frame().std_error[0], abs=1e-12)
    assert row["df"] == pytest.approx(api.df[0], abs=1e-10)


def test_robust_without_effect_id_clusters_pool_by_study(assink_csv, capsys):
    code, out = run(["meta", str(assink_csv), "--measure", "cohens_d", "--robust"], capsys)
    assert code == 0
    assert "Cluster-robust inference (CR2" in out and "17 clusters (study)" in out


def test_effect_id_text_output(assink_csv, capsys):
    code, out = run(["meta", str(assink_csv), "--measure", "cohens_d", "--effect-id", "esid", "--rho", "0.6"], capsys)
    assert code == 0
    assert "Multilevel random-effects" in out and "rho = 0.6" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--effect-id", "nope"], "no column 'nope'"),
        (["--effect-id", "esid", "--method", "DL"], "--method must be one of REML, ML"),
        (["--effect-id", "esid", "--test", "knha"], "--test must be one of z, t"),
        (["--rho", "0.5", "--robust"], "--rho needs --effect-id"),
        (["--effect-id", "esid", "--subgroup", "deltype"], "--subgroup cannot be combined"),
    ],
)
def test_dependent_effects_errors_are_one_line(assink_csv, capsys, argv, message):
    with pytest.raises(DataError, match=message):
        run(["meta", str(assink_csv), "--measure", "cohens_d", *argv], capsys)


# ----------------------------------------------- every measure of rjtrial.effects from summary columns
SUMMARY_TABLES = {
    "proportion": ("study,events,n\nA,4,20\nB,10,31\nC,1,12\nD,7,40\n", {}),
    "freeman_tukey_proportion": ("study,events,n\nA,4,20\nB,10,31\nC,0,12\nD,7,40\n", {}),
    "fisher_z": ("study,correlation,n\nA,0.31,40\nB,0.12,85\nC,0.45,23\n", {}),
    "log_ratio_of_means": (
        "study,mean_treatment,sd_treatment,n_treatment,mean_control,sd_control,n_control\n"
        "A,3.1,2.5,60,4.0,2.9,58\nB,2.2,1.9,41,2.9,2.4,40\nC,5.0,4.1,30,5.2,3.8,33\n",
        {},
    ),
    "standardised_mean_change_raw_score": (
        "study,mean_before,mean_after,n,sd_before,correlation\nA,10.2,8.1,30,4.0,0.6\nB,9.0,8.2,25,3.1,0.5\n"
        "C,12.5,9.9,44,5.2,0.7\n",
        {},
    ),
    "incidence_rate_difference": (
        "study,events_treatment,person_time_treatment,events_control,person_time_control\n"
        "A,9,413,19,398\nB,8,263,19,245\nC,0,237,6,241\n",
        {},
    ),
}


@pytest.mark.parametrize("measure", list(SUMMARY_TABLES))
def test_every_measure_is_computed_from_its_columns(tmp_path, capsys, measure):
    import io

    import pandas as pd

    content, options = SUMMARY_TABLES[measure]
    path = tmp_path / "studies.csv"
    path.write_text(content)
    code, out = run(["meta", str(path), "--measure", measure, "--method", "DL", "--json"], capsys)
    assert code == 0
    table = pd.read_csv(io.StringIO(content))
    inputs = {c: c for c in effects.MEASURES[measure].inputs}
    es = effects.effect_size(table, measure=measure, study="study", **inputs, **options)
    assert [row["estimate"] for row in json.loads(out)["studies"]] == pytest.approx(es["estimate"].tolist(), abs=1e-12)
    assert json.loads(out)["pooled"][-1]["estimate"] == pytest.approx(pool(es, method="DL").estimate, abs=1e-12)


def test_a_measure_without_its_columns_names_them(tmp_path, capsys):
    path = tmp_path / "studies.csv"
    path.write_text("study,events,total\nA,4,20\nB,10,31\n")
    with pytest.raises(DataError, match="--measure proportion needs columns events, n .*missing n"):
        run(["meta", str(path), "--measure", "proportion"], capsys)


# ----------------------------------------------- --bayes: few trials
def _crins(tmp_path):
    import pandas as pd

    table = pd.DataFrame(
        {
            "study": [
                "Spada (2006)",
                "Ganschow (2005)",
                "Gibelli (2004)",
                "Heffron (2003)",
                "Schuller (2005)",
                "Gras (2008)",
            ],
            "events_treatment": [4, 9, 16, 14, 3, 0],
            "n_treatment": [36, 54, 28, 61, 18, 50],
            "events_control": [11, 29, 19, 15, 8, 3],
            "n_control": [36, 54, 28, 20, 12, 34],
        }
    )
    path = tmp_path / "crins.csv"
    table.to_csv(path, index=False)
    return path, table


@pytest.mark.parametrize(
    "options, argv",
    [
        ({}, []),
        (
            {
                "tau_prior": "half-cauchy",
                "tau_scale": 1.0,
                "mu_prior": (0.0, 4.0),
                "interval": "shortest",
                "alpha": 0.1,
            },
            [
                "--tau-prior",
                "half-cauchy",
                "--tau-scale",
                "1",
                "--mu-prior",
                "0,4",
                "--interval",
                "shortest",
                "--alpha",
                "0.1",
            ],
        ),
    ],
)
def test_bayes_json_agrees_with_the_api(tmp_path, capsys, options, argv):
    from rjtrial.meta import bayes

    path, table = _crins(tmp_path)
    code, out = run(["meta", str(path), "--measure", "log_odds_ratio", "--bayes", "--json", *argv], capsys)
    assert code == 0
    data = json.loads(out)["bayes"]
    es = effects.log_odds_ratio(
        table,
        events_treatment="events_treatment",
        n_treatment="n_treatment",
        events_control="events_control",
        n_control="n_control",
        study="study",
    )
    res = bayes(es, **options)
    for name in ("estimate", "ci_lower", "ci_upper", "tau", "tau_ci_upper", "pi_lower", "pi_upper"):
        assert data[name] == pytest.approx(getattr(res, name), abs=1e-12), name
    assert data["interval"] == res.interval and data["alpha"] == res.alpha and data["k"] == 6
    assert [row["estimate"] for row in data["shrinkage"]] == pytest.approx(
        res.shrinkage["estimate"].tolist(), abs=1e-12
    )


def test_bayes_text_and_plots(tmp_path, capsys):
    path, _ = _crins(tmp_path)
    code, out = run(
        [
            "meta",
            str(path),
            "--measure",
            "log_odds_ratio",
            "--bayes",
            "--mu-prior",
            "0,4",
            "--forest",
            str(tmp_path / "f.png"),
            "--posterior",
            str(tmp_path / "p.png"),
        ],
        capsys,
    )
    assert code == 0
    assert "Bayesian random-effects meta-analysis" in out and "mu ~ normal(mean=0, sd=4)" in out
    assert "Gras (2008)" in out and "wrote posterior plot" in out
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "p.png").stat().st_size > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bayes", "--method", "DL"], "--bayes cannot be combined with --method"),
        (["--bayes", "--robust", "--test", "t"], "--bayes cannot be combined with --test, --robust"),
        (["--bayes", "--exponentiate"], "--bayes cannot be combined with --exponentiate"),
        (["--tau-scale", "1"], "--tau-scale needs --bayes"),
        (["--posterior", "p.png", "--interval", "shortest"], "--interval, --posterior need --bayes"),
        (["--bayes", "--mu-prior", "0"], "--mu-prior must be MEAN,SD"),
        (["--bayes", "--mu-prior", "0,-1"], "positive SD"),
        (["--bayes", "--tau-scale", "0"], "tau_scale must be a positive number"),
    ],
)
def test_bayes_option_errors_are_one_line(tmp_path, capsys, argv, message):
    from rjtrial import cli

    path, _ = _crins(tmp_path)
    assert cli.main(["meta", str(path), "--measure", "log_odds_ratio", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rjtrial: error: ") and message in err and err.count("\n") == 1


# ------------------------------------------------------------------ --exponentiate and the Egger label (issue 16)
@pytest.mark.parametrize("test", ["z", "knha"])
def test_exponentiate_gives_the_ratio_scale_of_the_api_fit(bcg_csv, capsys, test):
    import numpy as np

    code, out = run(
        ["meta", str(bcg_csv), "--measure", "log_risk_ratio", "--test", test, "--exponentiate", "--json"], capsys
    )
    res = api_fit(method="REML", test=test)
    row = json.loads(out)["exponentiated"][-1]
    assert code == 0
    for name in ("estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper"):
        assert row[name] == pytest.approx(np.exp(getattr(res, name)), rel=1e-12)
    code, text = run(["meta", str(bcg_csv), "--measure", "log_risk_ratio", "--test", test, "--exponentiate"], capsys)
    assert "Back-transformed (risk ratio):" in text and f"{np.exp(res.estimate):.4f}" in text


def test_without_exponentiate_the_json_has_no_ratio_scale(bcg_csv, capsys):
    _, out = run(["meta", str(bcg_csv), "--measure", "log_risk_ratio", "--json"], capsys)
    assert json.loads(out)["exponentiated"] is None


def test_exponentiate_refuses_a_measure_not_on_the_log_scale(bcg_csv, capsys):
    with pytest.raises(DataError, match="--exponentiate back-transforms a log-scale measure.*risk_difference"):
        run(["meta", str(bcg_csv), "--measure", "risk_difference", "--exponentiate"], capsys)


def test_exponentiate_with_effect_id_back_transforms_the_three_level_fit(assink_csv, capsys):
    import numpy as np

    _, out = run(
        ["meta", str(assink_csv), "--measure", "other", "--effect-id", "esid", "--exponentiate", "--json"], capsys
    )
    data = json.loads(out)
    assert data["exponentiated"][0]["estimate"] == pytest.approx(np.exp(data["model"]["estimate"]), rel=1e-12)


@pytest.mark.parametrize("test, label", [("z", "z = "), ("knha", "t(11) = ")])
def test_eggers_test_is_labelled_t_on_k_minus_2_df_under_knapp_hartung(bcg_csv, capsys, test, label):
    _, text = run(["meta", str(bcg_csv), "--measure", "log_risk_ratio", "--test", test], capsys)
    line = next(x for x in text.splitlines() if "Egger's regression test" in x)
    assert label in line
    assert egger(api_fit(method="REML", test=test)).df == (None if test == "z" else 11)


def test_meta_help_describes_the_studies_table(capsys):
    with pytest.raises(SystemExit):
        run(["meta", "--help"], capsys)
    out = capsys.readouterr().out
    assert "events_treatment, n_treatment, events_control, n_control" in out
    assert "synthetic/examples/studies.csv" in out
