"""Generate the follow-up tables of the two-stage IPD meta-analysis validation (tests/test_meta_ipd.py).

Run from the repository root::

    .venv/bin/python tests/reference/meta_ipd.py
    Rscript tests/reference/meta_ipd.R      # reads meta_ipd.csv, writes meta_ipd.json

It simulates four synthetic trials (``rjtrial.simulate.simulate_trial(..., truth=False)``,
seeds below), builds each follow-up table with the scenario's analysis plan
(``SimulatedTrial.followup()``) and writes ``meta_ipd.csv`` next to this file, one row per
participant:

``trial``
    the trial's name (scenario file and seed);
``id``, ``arm``
    participant and assigned arm (``conference`` against ``control`` or ``court``);
``time_at_risk``, ``event``
    street days to the first reoffence or censoring, and 1 if it is a reoffence;
``reoffences``, ``exposure_days``
    reoffences counted in follow-up and street days observed (all positive here);
``age``, ``prior_offences``
    covariates for the adjusted analyses.

The CSV is committed, so the tests do not depend on the simulator staying as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from rjtrial.simulate import simulate_trial

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TRIALS = {  # name -> (scenario, seed)
    "london-burglary-1": ("jrc-london-burglary", 20261122),
    "canberra-violence": ("canberra-youth-violence", 20261123),
    "magistrates-property": ("magistrates-property", 20261124),
    "london-burglary-2": ("jrc-london-burglary", 20261125),
}
COLUMNS = ["trial", "id", "arm", "time_at_risk", "event", "reoffences", "exposure_days", "age", "prior_offences"]


def followup_tables() -> pd.DataFrame:
    frames = []
    for name, (scenario, seed) in TRIALS.items():
        table = simulate_trial(ROOT / "synthetic" / f"{scenario}.toml", rng=seed, truth=False).followup()
        table = table.assign(trial=name, event=table["event"].astype(int))
        frames.append(table[COLUMNS])
    data = pd.concat(frames, ignore_index=True)
    if not (data["exposure_days"] > 0).all():
        raise SystemExit("a participant has no street time: choose other seeds")
    return data


def main() -> None:
    target = HERE / "meta_ipd.csv"
    temporary = target.with_suffix(".csv.tmp")
    followup_tables().to_csv(temporary, index=False)
    os.replace(temporary, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
