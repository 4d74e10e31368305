"""The command line (rjtrial/cli/): every command, --json, RJTRIAL_KEY, errors and exit codes.

Exit codes (cli.py): 0 success, 1 verification failed, 2 bad input or usage,
3 enrolment refused. Most tests call ``rjtrial.cli.main`` in-process; a few run the
installed ``rjtrial`` console script in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import sqlite3
import stat
import subprocess
import sys

import pandas as pd
import pytest
from registry_fixtures import protocol_toml, rjtrial_script, rows

from rjtrial.cli import main
from rjtrial.registry import Registry
from rjtrial.registry.reports import participants_csv

STRATA = [
    ("north", "property"),
    ("south", "violence"),
    ("north", "violence"),
    ("south", "property"),
    ("north", "property"),
    ("north", "property"),
    ("south", "violence"),
    ("north", "violence"),
]


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch):
    monkeypatch.delenv("RJTRIAL_KEY", raising=False)
    monkeypatch.delenv("RJTRIAL_DEBUG", raising=False)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, pattern: str = "") -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rjtrial")
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture
def files(tmp_path):
    """Paths of a protocol file, a database and a key file (the last two not yet created)."""
    protocol = tmp_path / "protocol.toml"
    protocol.write_text(protocol_toml(capacity=30))
    return {"protocol": protocol, "db": tmp_path / "trial.db", "key": tmp_path / "trial.key", "tmp": tmp_path}


@pytest.fixture
def trial(files, capsys):
    code, _, _ = run(capsys, "init", files["protocol"], "--db", files["db"], "--key", files["key"], "--by", "lead")
    assert code == 0
    return files


def enrol_args(f, referral, site="north", offence="property", admitted="yes", risk="suitable", *extra):
    return [
        "enrol",
        "--db",
        f["db"],
        "--key",
        f["key"],
        "--referral",
        referral,
        "--stratum",
        f"site={site}",
        "--stratum",
        f"offence={offence}",
        "--answer",
        f"admitted={admitted}",
        "--answer",
        f"risk={risk}",
        *extra,
    ]


# ----------------------------------------------------------------------------- init
def test_init_prints_the_commitment_and_writes_an_owner_only_key(files, capsys):
    code, out, err = run(capsys, "init", files["protocol"], "--db", files["db"], "--key", files["key"])
    assert code == 0, err
    commitment = out.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{64}", commitment)
    assert "initialised trial 'test-trial'" in out
    assert stat.S_IMODE(files["key"].stat().st_mode) == 0o600
    with Registry.open(files["db"]) as reg:
        assert reg.commitment == commitment


def test_init_json(files, capsys):
    code, out, _ = run(capsys, "init", files["protocol"], "--db", files["db"], "--key", files["key"], "--json")
    assert code == 0
    data = json.loads(out)
    assert data["trial_id"] == "test-trial"
    assert data["method"] == "stratified_blocks" and data["sequences"] == 4 and data["capacity"] == 30
    assert re.fullmatch(r"[0-9a-f]{64}", data["commitment"])
    assert data["key"] == str(files["key"])


def test_init_takes_the_key_path_from_rjtrial_key(files, capsys, monkeypatch):
    monkeypatch.setenv("RJTRIAL_KEY", str(files["key"]))
    code, _, err = run(capsys, "init", files["protocol"], "--db", files["db"])
    assert code == 0, err
    assert files["key"].exists()


# ------------------------------------------------------------------------ enrolment
def test_enrol_randomised_ineligible_refused_exit_codes(trial, capsys):
    code, out, err = run(capsys, *enrol_args(trial, "R-1"))
    assert code == 0 and err == ""
    assert re.match(r"randomised R-1: (control|conference) \(sequence number 1, receipt RJ-[0-9A-F-]{14}\)", out)

    code, out, err = run(capsys, *enrol_args(trial, "R-2", admitted="no"))
    assert code == 0  # a screened-out referral was recorded: success
    assert out.startswith("screened out R-2: ineligible (admitted=no)")

    code, out, err = run(capsys, *enrol_args(trial, "R-1"))
    assert code == 3 and out == ""
    assert_one_line_error(err, r"refused R-1: .*already enrolled")


@pytest.mark.parametrize(
    "referral, args, status, code",
    [
        ("R-1", {}, "randomised", 0),
        ("R-1", {"risk": "not_done"}, "ineligible", 0),
        ("R-1", {"site": "east"}, "refused", 3),
    ],
    ids=["randomised", "ineligible", "refused"],
)
def test_enrol_json(trial, capsys, referral, args, status, code):
    got, out, err = run(capsys, *enrol_args(trial, referral, **args), "--json")
    assert got == code
    data = json.loads(out)
    assert data["status"] == status and data["referral_id"] == referral
    assert set(data) == {
        "status",
        "referral_id",
        "arm",
        "sequence_number",
        "receipt",
        "reasons",
        "randomised_on",
        "strata",
    }
    assert (data["arm"] is not None) is (status == "randomised")


@pytest.mark.parametrize("terminal", [True, False], ids=["from_a_terminal", "from_a_script"])
@pytest.mark.parametrize("key_from", ["option", "environment"])
def test_enrol_with_the_key_from_a_terminal_warns_that_it_is_the_statisticians_tool(trial, terminal, key_from):
    import pty

    argv = [str(a) for a in enrol_args(trial, "R-1")]
    env = {k: v for k, v in os.environ.items() if k != "RJTRIAL_KEY"}
    if key_from == "environment":
        del argv[3:5]  # --key KEY
        env["RJTRIAL_KEY"] = str(trial["key"])
    leader, follower = pty.openpty() if terminal else (None, None)
    try:
        done = subprocess.run(
            [rjtrial_script(), *argv],
            stdin=follower if terminal else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    finally:
        if terminal:
            os.close(leader), os.close(follower)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("randomised R-1:")  # the key still works (scripts, the statistician)
    if terminal:
        (line,) = done.stderr.splitlines()
        assert line.startswith("rjtrial enrol: warning:")
        assert "statistician's tool" in line and "coordinators enrol through the service (rjtrial serve)" in line
    else:
        assert done.stderr == ""


def test_enrol_at_and_by_are_recorded(trial, capsys):
    code, _, _ = run(
        capsys,
        *enrol_args(
            trial,
            "R-1",
            "north",
            "property",
            "yes",
            "suitable",
            "--at",
            "2025-06-01T10:00:00+01:00",
            "--by",
            "coordinator",
        ),
    )
    assert code == 0
    (row,) = rows(trial["db"], "SELECT at, by FROM rj_referrals")
    assert (row["at"], row["by"]) == ("2025-06-01T09:00:00.000000+00:00", "coordinator")


def test_rjtrial_key_environment_variable_replaces_key(trial, capsys, monkeypatch):
    monkeypatch.setenv("RJTRIAL_KEY", str(trial["key"]))
    argv = [a for a in enrol_args(trial, "R-1") if a not in ("--key", trial["key"])]
    assert "--key" not in argv
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    code, out, err = run(capsys, "event", "--db", trial["db"], "--referral", "R-1", "--kind", "note")
    assert code == 0, err
    code, out, _ = run(capsys, "verify", "--db", trial["db"], "--json")
    assert code == 0 and json.loads(out)["key_checked"] is True


def test_enrol_without_any_key_is_a_usage_error(trial, capsys):
    argv = [a for a in enrol_args(trial, "R-1") if a not in ("--key", trial["key"])]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert_one_line_error(err, r"needs the trial's key file: --key KEYFILE or RJTRIAL_KEY")


# --------------------------------------------------------------------------- events
def test_event_is_recorded_and_shows_in_export(trial, capsys):
    run(capsys, *enrol_args(trial, "R-1"))
    code, out, _ = run(
        capsys,
        "event",
        "--db",
        trial["db"],
        "--key",
        trial["key"],
        "--referral",
        "R-1",
        "--kind",
        "treatment_received",
        "--detail",
        "venue=court",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data == {"referral_id": "R-1", "kind": "treatment_received", "audit_seq": 3}
    (event,) = rows(trial["db"], "SELECT * FROM rj_events")
    assert json.loads(event["detail"]) == {"venue": "court"}
    code, out, _ = run(capsys, "export", "--db", trial["db"])
    frame = pd.read_csv(io.StringIO(out))
    assert frame.loc[0, "treatment_received"] == True  # noqa: E712


def test_event_text_output(trial, capsys):
    run(capsys, *enrol_args(trial, "R-1"))
    code, out, _ = run(
        capsys, "event", "--db", trial["db"], "--key", trial["key"], "--referral", "R-1", "--kind", "withdrawal"
    )
    assert code == 0 and out.strip() == "recorded withdrawal for R-1 (audit entry 3)"


# ---------------------------------------------------------------------------- verify
def test_verify_intact_tampered_and_commitment(trial, capsys):
    run(capsys, *enrol_args(trial, "R-1"))
    code, out, _ = run(capsys, "verify", "--db", trial["db"])
    assert code == 0 and out.startswith("verification INTACT")
    code, out, _ = run(capsys, "verify", "--db", trial["db"], "--key", trial["key"], "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True and data["key_checked"] is True and data["randomised"] == 1
    commitment = data["commitment"]
    assert run(capsys, "verify", "--db", trial["db"], "--commitment", commitment)[0] == 0
    assert run(capsys, "verify", "--db", trial["db"], "--commitment", "0" * 64)[0] == 1
    with sqlite3.connect(trial["db"]) as conn:
        conn.execute("UPDATE rj_referrals SET arm = CASE arm WHEN 'control' THEN 'conference' ELSE 'control' END")
    conn.close()
    code, out, _ = run(capsys, "verify", "--db", trial["db"], "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and "R-1" in data["problems"][0]
    code, out, _ = run(capsys, "verify", "--db", trial["db"])
    assert code == 1 and "verification FAILED" in out and "problem: referral 'R-1'" in out


# ---------------------------------------------------------------------------- export
def _enrol_stream(f, capsys):
    arms = {}
    for i, (site, offence) in enumerate(STRATA):
        risk = "unsuitable" if i == 3 else "suitable"
        code, out, _ = run(
            capsys,
            *enrol_args(
                f, f"R-{i:02d}", site, offence, "yes", risk, "--at", f"2025-04-{i + 1:02d}T12:00:00Z", "--json"
            ),
        )
        assert code == 0
        data = json.loads(out)
        if data["status"] == "randomised":
            arms[data["referral_id"]] = (data["arm"], data["sequence_number"], data["receipt"])
    return arms


def test_cli_export_agrees_with_the_api(trial, capsys):
    arms = _enrol_stream(trial, capsys)
    code, cli_csv, err = run(capsys, "export", "--db", trial["db"])
    assert code == 0 and err == ""
    with Registry.open(trial["db"]) as reg:
        api_csv = participants_csv(reg.export())
    assert cli_csv == api_csv
    frame = pd.read_csv(io.StringIO(cli_csv))
    assert list(frame.columns) == [
        "id",
        "arm",
        "sequence_number",
        "randomised_at",
        "randomised_on",
        "site",
        "offence",
        "treatment_received",
        "conference_held",
        "withdrawn",
        "receipt",
    ]
    assert {r.id: (r.arm, r.sequence_number, r.receipt) for r in frame.itertuples()} == arms
    assert (
        frame.loc[0, "randomised_at"] == "2025-04-01T12:00:00.000000Z" and frame.loc[0, "randomised_on"] == "2025-04-01"
    )


def test_export_to_a_file_is_written_and_logged(trial, capsys):
    _enrol_stream(trial, capsys)
    target = trial["tmp"] / "participants.csv"
    code, out, err = run(capsys, "export", "--db", trial["db"], "-o", target, "--by", "analyst")
    assert code == 0 and out == ""
    assert err.strip() == f"wrote 7 participants to {target}"
    assert len(pd.read_csv(target)) == 7
    (entry,) = rows(trial["db"], "SELECT * FROM rj_audit WHERE action = 'export'")
    assert entry["actor"] == "analyst" and json.loads(entry["payload"])["rows"] == 7
    assert entry["mac"] == ""  # exported without the key: logged unsigned
    assert run(capsys, "verify", "--db", trial["db"], "--key", trial["key"])[0] == 0
    assert sorted(p.name for p in trial["tmp"].iterdir() if p.name.startswith(".")) == []  # no temporary left


# --------------------------------------------------------------------------- consort
def test_consort_text_and_json(trial, capsys):
    arms = _enrol_stream(trial, capsys)
    run(capsys, *enrol_args(trial, "X-1", "east"))  # refused
    code, out, _ = run(capsys, "consort", "--db", trial["db"], "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["referred"], data["screened_out"], data["randomised"], data["refusals"]) == (8, 1, 7, 1)
    assert data["screened_out_by_reason"] == {"risk=unsuitable": 1}
    assert sum(data["randomised_by_arm"].values()) == 7
    assert data["randomised_by_arm"]["control"] == sum(a == "control" for a, _, _ in arms.values())
    code, out, _ = run(capsys, "consort", "--db", trial["db"])
    assert code == 0 and out.startswith("CONSORT flow: test-trial")


# ---------------------------------------------------------------------------- unseal
def test_unseal_json_then_enrolment_is_refused(trial, capsys):
    arms = _enrol_stream(trial, capsys)
    code, out, _ = run(capsys, "unseal", "--db", trial["db"], "--key", trial["key"], "--json", "--yes")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True and data["commitment_ok"] is True and data["regenerated"] is True
    assert set(data["sequences"]) == {
        f"site={s}|offence={o}" for s in ("north", "south") for o in ("property", "violence")
    }
    for rid, (arm, _, _) in arms.items():
        (row,) = rows(trial["db"], "SELECT sequence_key, slot FROM rj_referrals WHERE referral_id = ?", (rid,))
        assert data["sequences"][row["sequence_key"]][row["slot"]] == arm
    code, _, err = run(capsys, *enrol_args(trial, "LATE-1"))
    assert code == 3
    assert_one_line_error(err, "closed")


def test_unseal_text(trial, capsys):
    code, out, _ = run(capsys, "unseal", "--db", trial["db"], "--key", trial["key"], "--yes")
    assert code == 0
    assert out.startswith("unsealed: commitment matches; regenerated from the seed: yes")


class _Terminal:
    """A stand-in for a person at a terminal typing ``answer``."""

    def __init__(self, answer: str):
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer + "\n"


def _still_open(trial, capsys) -> bool:
    code, _, _ = run(capsys, *enrol_args(trial, "AFTER-1"))
    return code == 0


def test_unseal_without_a_terminal_or_yes_refuses_and_changes_nothing(trial, capsys):
    # the README block people copy ends with unseal: copied into a script it must not close the trial
    code, _, err = run(capsys, "unseal", "--db", trial["db"], "--key", trial["key"])
    assert code == 2
    assert_one_line_error(err, "cannot be undone")
    assert _still_open(trial, capsys)


def test_unseal_at_a_terminal_asks_for_the_trial_id(trial, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", _Terminal("not-the-id"))
    code, _, err = run(capsys, "unseal", "--db", trial["db"], "--key", trial["key"])
    assert code == 2 and "not confirmed" in err and "Type the trial id (test-trial)" in err
    assert _still_open(trial, capsys)
    monkeypatch.setattr("sys.stdin", _Terminal("test-trial"))
    code, out, _ = run(capsys, "unseal", "--db", trial["db"], "--key", trial["key"])
    assert code == 0 and out.startswith("unsealed:")
    assert not _still_open(trial, capsys)


# ---------------------------------------------------------------------------- errors
def _error_cases():
    def enrol_with(f, *extra):
        return ["enrol", "--db", f["db"], "--key", f["key"], "--referral", "R-1", *extra]

    def bad_protocol(f):
        bad = f["tmp"] / "bad.toml"
        bad.write_text(protocol_toml().replace('method = "stratified_blocks"', 'method = "blocs"'))
        return ["init", bad, "--db", f["tmp"] / "new.db", "--key", f["tmp"] / "new.key"]

    def not_toml(f):
        bad = f["tmp"] / "bad.toml"
        bad.write_text("[trial\nid = ")
        return ["init", bad, "--db", f["tmp"] / "new.db", "--key", f["tmp"] / "new.key"]

    def other_key(f):
        other = f["tmp"] / "other.toml"
        other.write_text(protocol_toml())
        assert main(["init", str(other), "--db", str(f["tmp"] / "o.db"), "--key", str(f["tmp"] / "o.key")]) == 0
        return enrol_with(
            {**f, "key": f["tmp"] / "o.key"},
            "--stratum",
            "site=north",
            "--stratum",
            "offence=property",
            "--answer",
            "admitted=yes",
            "--answer",
            "risk=suitable",
        )

    def demo_into_foreign_folder(f):
        folder = f["tmp"] / "mine"
        folder.mkdir()
        (folder / "thesis.tex").write_text("precious")
        return ["demo", "-o", folder, "--quiet"]

    return {
        "missing_db": (lambda f: ["verify", "--db", f["tmp"] / "nothing.db"], r"no registry at .*nothing\.db"),
        "missing_key_file": (
            lambda f: enrol_with({**f, "key": f["tmp"] / "gone.key"}, "--stratum", "site=north"),
            r"key file .*gone\.key not found",
        ),
        "another_trials_key": (other_key, r"does not open trial"),
        "bad_protocol": (bad_protocol, r"randomisation\.method: unknown method 'blocs'"),
        "protocol_not_toml": (not_toml, r"not valid TOML"),
        "protocol_missing": (
            lambda f: ["init", f["tmp"] / "none.toml", "--db", f["db"], "--key", f["key"]],
            r"file not found",
        ),
        "stratum_without_equals": (
            lambda f: enrol_with(f, "--stratum", "site"),
            r"--stratum 'site': expected NAME=VALUE",
        ),
        "stratum_without_value": (lambda f: enrol_with(f, "--stratum", "site="), r"expected NAME=VALUE"),
        "stratum_twice": (
            lambda f: enrol_with(f, "--stratum", "site=north", "--stratum", "site=south"),
            r"'site' given twice",
        ),
        "unreadable_time": (
            lambda f: enrol_with(
                f,
                "--stratum",
                "site=north",
                "--stratum",
                "offence=property",
                "--answer",
                "admitted=yes",
                "--answer",
                "risk=suitable",
                "--at",
                "tuesday",
            ),
            r"ISO-8601",
        ),
        "unknown_command": (lambda f: ["frobnicate"], r"invalid choice: 'frobnicate'"),
        "missing_required_option": (lambda f: ["enrol", "--db", f["db"]], r"required"),
        "unknown_event_kind": (
            lambda f: ["event", "--db", f["db"], "--key", f["key"], "--referral", "R-1", "--kind", "party"],
            r"invalid choice",
        ),
        "event_for_unknown_referral": (
            lambda f: ["event", "--db", f["db"], "--key", f["key"], "--referral", "R-404", "--kind", "note"],
            r"R-404.*not enrolled",
        ),
        "export_into_missing_folder": (
            lambda f: ["export", "--db", f["db"], "-o", f["tmp"] / "no" / "p.csv"],
            r"does not exist",
        ),
        "init_over_existing_trial": (
            lambda f: ["init", f["protocol"], "--db", f["db"], "--key", f["tmp"] / "k2"],
            r"already holds a trial",
        ),
        "init_over_existing_key": (
            lambda f: ["init", f["protocol"], "--db", f["tmp"] / "d2.db", "--key", f["key"]],
            r"already exists",
        ),
        "demo_into_foreign_folder": (demo_into_foreign_folder, r"not an rjtrial demo folder"),
    }


ERRORS = _error_cases()


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_errors_are_one_line_without_traceback_and_exit_2(trial, capsys, case):
    make_argv, pattern = ERRORS[case]
    argv = make_argv(trial)
    capsys.readouterr()
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert_one_line_error(err, pattern)
    assert err.startswith("rjtrial: error: ")


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, err = run(capsys)
    assert code == 2 and "usage: rjtrial" in out and "Traceback" not in err


def test_building_the_parser_imports_no_heavy_library():
    """Every command pays for what building the parser imports: the registry, pandas, scipy
    and numba load only when a command that needs them runs (``rjtrial power`` needs no
    registry; ``verify --help`` reads its epilog from the registry when shown)."""
    code = (
        "import sys; from rjtrial.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('sqlalchemy', 'pandas', 'scipy', 'numba', 'rjtrial.registry') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_verify_help_shows_the_levels_of_checking(capsys):
    from rjtrial.registry.verify import LEVELS_HELP

    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    out = capsys.readouterr().out
    assert LEVELS_HELP.splitlines()[0].strip() in out and "--receipts" in out


def test_errors_leave_the_registry_intact(trial, capsys):
    for case in ("stratum_without_equals", "unreadable_time", "event_for_unknown_referral", "missing_key_file"):
        run(capsys, *ERRORS[case][0](trial))
    assert rows(trial["db"], "SELECT COUNT(*) FROM rj_audit")[0][0] == 1
    assert run(capsys, "verify", "--db", trial["db"], "--key", trial["key"])[0] == 0


# --------------------------------------------------------------- the console script
def test_console_script_end_to_end(files):
    env = {k: v for k, v in os.environ.items() if k not in ("RJTRIAL_KEY", "RJTRIAL_DEBUG")}
    env["RJTRIAL_KEY"] = str(files["key"])
    q = {name: shlex.quote(str(path)) for name, path in files.items()}
    script = (
        f"set -e; R={shlex.quote(rjtrial_script())}; "
        f"$R init {q['protocol']} --db {q['db']} --json > {q['tmp']}/init.json; "
        f"$R enrol --db {q['db']} --referral R-1 --stratum site=north --stratum offence=violence "
        f"--answer admitted=yes --answer risk=suitable --json > {q['tmp']}/enrol.json; "
        f"$R verify --db {q['db']} --json"
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True and json.loads(done.stdout)["key_checked"] is True
    assert json.loads((files["tmp"] / "init.json").read_text())["trial_id"] == "test-trial"
    assert json.loads((files["tmp"] / "enrol.json").read_text())["status"] == "randomised"
    # a refusal and an error, from the real process: exit codes and one line on stderr
    refused = subprocess.run(
        [
            rjtrial_script(),
            "enrol",
            "--db",
            str(files["db"]),
            "--referral",
            "R-1",
            "--stratum",
            "site=north",
            "--stratum",
            "offence=violence",
            "--answer",
            "admitted=yes",
            "--answer",
            "risk=suitable",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode == 3 and refused.stdout == ""
    assert_one_line_error(refused.stderr, "already enrolled")
    missing = subprocess.run(
        [rjtrial_script(), "consort", "--db", str(files["tmp"] / "none.db")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert missing.returncode == 2 and missing.stdout == ""
    assert_one_line_error(missing.stderr, r"^rjtrial: error: no registry at")


def test_version_has_one_home(capsys):
    """``rjtrial --version``, the code's ``__version__`` and the installed distribution's
    metadata (built from ``rjtrial/_version.py`` by pyproject's dynamic version) agree."""
    from importlib.metadata import version

    from rjtrial._version import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"rjtrial {__version__}"
    assert version("rjtrial") == __version__
