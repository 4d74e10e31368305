"""Benchmark of the follow-up builder, :func:`rjtrial.followup.build`, at national scale.

Generates (seeded numpy Generator) 1,000,000 participants, 10,000,000 offence records
and 1,000,000 custody spells, and times one call of ``build`` on them with the
parameters of a JRC-style analysis: two-year window, offence dates, extraction date
with a 183-day conviction lag, two-year prior window, deaths as censoring.

The data, by construction:

* participants: integer ids 0..n-1, assigned uniformly over 2015-01-01..2017-12-31,
  arm ``rj``/``control`` (categorical), 1% with a ``died_on`` date in the 1,000 days
  after assignment;
* offences: person ids drawn from 0..1.1n-1, so about 9% belong to people who are not
  participants (ignored, counted in a FollowupWarning); offence dates uniform over the
  1,100 days either side of the person's assignment; 90% convicted after an
  exponential delay (mean 120 days); six offence types (categorical);
* custody: person ids drawn from 0..1.05n-1; starts uniform over 400 days before to
  900 days after assignment; lengths 1 + geometric (mean 60 days), so a person's
  spells sometimes overlap and are merged.

Each repeat runs in a fresh Python process (``--worker``), which generates the data,
resets its peak-RSS counter (``/proc/self/clear_refs``), calls ``build`` once and
reports the wall time of that call and memory read from ``/proc/self/status``:
``VmRSS`` before the call (the inputs), ``VmHWM`` after it (peak during the call), and
the process's overall peak (``ru_maxrss``). tracemalloc is not used: at this scale it
slows numpy and pandas several-fold. Medians over ``--repeats`` (default 3) are reported.

Usage::

    .venv/bin/python benchmarks/bench_followup.py            # full scale, a few minutes
    .venv/bin/python benchmarks/bench_followup.py --quick    # 1/100 scale, seconds

A full run writes ``benchmarks/results/followup.json``; ``--quick`` writes
``benchmarks/results/followup-quick.json`` and leaves the full results alone.
``--string-ids`` names people by text (``"R-0000001"``, as the registry does) instead of
integers, and writes ``followup-string-ids[-quick].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"

FULL = {"participants": 1_000_000, "offences": 10_000_000, "custody": 1_000_000}
PARAMETERS = {
    "window_days": 730,
    "date_basis": "offence",
    "extraction_date": "2019-06-01",
    "conviction_lag_days": 183,
    "prior_window_days": 730,
}
OFFENCE_TYPES = ["theft", "burglary", "violence", "criminal_damage", "drugs", "public_order"]


def generate(n_participants: int, n_offences: int, n_custody: int, seed: int, *, string_ids: bool = False):
    """The three input tables, reproducibly from ``seed`` (see the module docstring).

    With ``string_ids`` the person ids are text like the registry's (``"R-0000001"``).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    first_day = np.datetime64("2015-01-01", "D").astype(np.int64)
    assigned = first_day + rng.integers(0, 3 * 365, n_participants)
    died = np.where(
        rng.random(n_participants) < 0.01, assigned + rng.integers(0, 1000, n_participants), np.iinfo(np.int64).min
    )
    participants = pd.DataFrame(
        {
            "id": np.arange(n_participants, dtype=np.int64),
            "arm": pd.Categorical.from_codes(rng.integers(0, 2, n_participants), categories=["control", "rj"]),
            "randomised_on": _dates(assigned),
            "died_on": _dates(died),
        }
    )
    # people outside the trial are dated from the middle of the assignment period
    origin = np.concatenate([assigned, np.full(n_participants // 10, first_day + 547)])

    who = rng.integers(0, int(n_participants * 1.1), n_offences)
    committed = origin[who] + rng.integers(-1100, 1100, n_offences)
    delay = np.ceil(rng.exponential(120.0, n_offences)).astype(np.int64)
    convicted = np.where(rng.random(n_offences) < 0.9, committed + delay, np.iinfo(np.int64).min)
    offences = pd.DataFrame(
        {
            "id": who,
            "offence_date": _dates(committed),
            "conviction_date": _dates(convicted),
            "offence_type": pd.Categorical.from_codes(
                rng.integers(0, len(OFFENCE_TYPES), n_offences), categories=OFFENCE_TYPES
            ),
        }
    )
    del who, committed, delay, convicted

    holder = rng.integers(0, int(n_participants * 1.05), n_custody)
    start = np.concatenate([assigned, np.full(n_participants // 20, first_day + 547)])[holder] + rng.integers(
        -400, 900, n_custody
    )
    length = rng.geometric(1 / 60, n_custody)
    custody = pd.DataFrame({"id": holder, "start": _dates(start), "end": _dates(start + length - 1)})
    if string_ids:  # the same people, named by text (data generation, not the builder, loops here)
        labels = np.array([f"R-{i:07d}" for i in range(int(n_participants * 1.1) + 1)], dtype=object)
        for frame in (participants, offences, custody):
            frame["id"] = labels[frame["id"].to_numpy()]
    return participants, offences, custody


def _dates(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[ns]")


def _status(field: str) -> int:
    """A /proc/self/status memory field, in bytes."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024


def worker(scale: float, seed: int, string_ids: bool = False) -> dict:
    """One repeat, in this (fresh) process: generate, reset the peak, build, measure."""
    from rjtrial import followup

    sizes = {k: int(v * scale) for k, v in FULL.items()}
    t0 = time.perf_counter()
    participants, offences, custody = generate(
        sizes["participants"], sizes["offences"], sizes["custody"], seed, string_ids=string_ids
    )
    generate_s = time.perf_counter() - t0
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    rss_before = _status("VmRSS")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", followup.FollowupWarning)
        t0 = time.perf_counter()
        table = followup.build(participants, offences, custody=custody, **PARAMETERS)
        build_s = time.perf_counter() - t0
    peak_during = _status("VmHWM")
    return {
        "sizes": sizes,
        "string_ids": string_ids,
        "generate_seconds": generate_s,
        "build_seconds": build_s,
        "rss_before_build_bytes": rss_before,
        "peak_rss_during_build_bytes": peak_during,
        "build_extra_peak_bytes": peak_during - rss_before,
        "process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "warnings": [str(w.message) for w in caught],
        "check": {
            "rows": int(len(table)),
            "events": int(table["event"].sum()),
            "reoffences": int(table["reoffences"].sum()),
            "prior_offences": int(table["prior_offences"].sum()),
            "mean_time_at_risk": float(table["time_at_risk"].mean()),
            "mean_days_in_custody": float(table["days_in_custody"].mean()),
            "end_reason": {k: int(v) for k, v in table["end_reason"].value_counts().items()},
            "records_ignored": table.attrs["records_ignored"],
        },
    }


def _versions() -> dict:
    import pandas as pd

    import rjtrial

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "rjtrial": rjtrial.__version__,
        "git_commit": commit,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/100 scale; writes followup-quick.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--string-ids",
        action="store_true",
        help='text ids ("R-0000001") instead of integers; writes followup-string-ids.json',
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scale = args.scale if args.scale is not None else (0.01 if args.quick else 1.0)
    if args.worker:
        print(json.dumps(worker(scale, args.seed, args.string_ids)))
        return 0

    runs = []
    for repeat in range(args.repeats):
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--scale",
            str(scale),
            "--seed",
            str(args.seed),
        ] + (["--string-ids"] if args.string_ids else [])
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        run = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"repeat {repeat + 1}: build {run['build_seconds']:.2f} s, peak RSS during build "
            f"{run['peak_rss_during_build_bytes'] / 2**20:,.0f} MiB (inputs {run['rss_before_build_bytes'] / 2**20:,.0f} MiB), "
            f"generation {run['generate_seconds']:.1f} s",
            flush=True,
        )
    median = {
        key: statistics.median(r[key] for r in runs)
        for key in (
            "build_seconds",
            "generate_seconds",
            "rss_before_build_bytes",
            "peak_rss_during_build_bytes",
            "build_extra_peak_bytes",
            "process_peak_rss_bytes",
        )
    }
    result = {
        "benchmark": "rjtrial.followup.build",
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scale": scale,
        "sizes": runs[0]["sizes"],
        "seed": args.seed,
        "string_ids": args.string_ids,
        "parameters": PARAMETERS,
        "repeats": args.repeats,
        "median": median,
        "runs": runs,
        "versions": _versions(),
        "notes": "Each repeat is a fresh process; wall time of one build() call (perf_counter); memory from "
        "/proc/self/status (VmRSS before the call, VmHWM reset before the call and read after it) and ru_maxrss "
        "for the whole process including data generation. Shared 2-core machine: expect noise.",
    }
    name = "followup" + ("-string-ids" if args.string_ids else "") + ("-quick" if args.quick else "")
    output = args.output or RESULTS / f"{name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"median of {args.repeats}: build {median['build_seconds']:.2f} s; peak RSS during build "
        f"{median['peak_rss_during_build_bytes'] / 2**20:,.0f} MiB, of which {median['build_extra_peak_bytes'] / 2**20:,.0f} MiB "
        f"above the inputs; process peak {median['process_peak_rss_bytes'] / 2**20:,.0f} MiB -> {output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
