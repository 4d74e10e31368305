"""Every script in analysis/ runs and prints its numbers beside the published ones.

Scripts run as they are, except those listed in ``SMOKE_ARGS``: long simulations run with a
small configuration (their full runs take minutes) and write their output to a temporary
directory, never into analysis/results/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "analysis").glob("*.py"))

# Arguments for a quick smoke run of the long scripts ({tmp} is the test's temporary directory).
SMOKE_ARGS = {
    "recovery_study.py": [
        "--replicates",
        "2",
        "--randomised",
        "200",
        "--truth-population",
        "20000",
        "--workers",
        "1",
        "--output",
        "{tmp}/recovery_study.json",
    ],
    "power_curve.py": [
        "--n",
        "60,120",
        "--hazard-ratio",
        "0.6,0.9",
        "--reps",
        "20",
        "--truth-population",
        "20000",
        "--workers",
        "1",
        "--output-dir",
        "{tmp}",
    ],
}

# Lines each script must print (our value, rounded, beside the published / R value).
EXPECTED = {
    "bcg_meta_analysis.py": [
        ("estimate", "-0.7145"),  # R metafor: coef(rma(yi, vi, data = <dat.bcg log RR>)) = -0.7145
        ("tau2", "0.3132"),  # res$tau2
        ("i2", "92.22"),  # res$I2
        ("trimfill_k0", "1"),  # trimfill(res)$k0
    ],
    "assink2016_three_level.py": [
        ("estimate", "0.4268"),  # R metafor: coef(rma.mv(yi, vi, random = ~ 1 | study/esid, data = dat.assink2016))
        ("sigma2_level3", "0.1879"),  # res$sigma2[1]
        ("sigma2_level2", "0.112"),  # res$sigma2[2]
        ("cr2_df", "15.45"),  # clubSandwich: coef_test(res, vcov = "CR2")$df_Satt
        ("robu_estimate", "0.3586"),  # robumeta: robu(yi ~ 1, ..., modelweights = "CORR", rho = 0.8)$reg_table$b.r
    ],
}


def test_there_are_scripts():
    assert SCRIPTS, "analysis/ holds no scripts"


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_script_runs_and_agrees(script, tmp_path):
    extra = [arg.replace("{tmp}", str(tmp_path)) for arg in SMOKE_ARGS.get(script.name, [])]
    done = subprocess.run(
        [sys.executable, str(script), *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"MPLBACKEND": "Agg", "PATH": "", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    for name, published in EXPECTED.get(script.name, []):
        row = next(line for line in lines if line.split() and line.split()[0] == name)
        assert row.split()[2] == published and row.split()[-1] == "yes", row
    if script.name in EXPECTED:
        assert "NO" not in [line.split()[-1] for line in lines if line.split()]
