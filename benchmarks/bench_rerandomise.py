"""10,000 re-randomisations of a finished 2,000-person trial with the log-rank statistic
(``rjtrial.rerandomisation.rerandomise``), for the minimisation and the stratified-blocks
scenarios: wall and CPU seconds of three repeats after one warm-up (numba compiles).

    .venv/bin/python benchmarks/bench_rerandomise.py

The issue's target is under 1 s of wall time on two cores; the figures are in benchmarks/README.md.
"""

import os
import statistics
import time

from rjtrial import followup
from rjtrial.rerandomisation import rerandomise
from rjtrial.simulate import simulate_trial


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f}")
    for scenario in ["synthetic/jrc-multisite.toml", "synthetic/jrc-london-burglary.toml"]:
        trial = simulate_trial(scenario, rng=3, truth=False, overrides={"referrals.randomised": 2000})
        people = trial.participants
        table = followup.build(
            people,
            trial.offences,
            custody=trial.custody,
            extraction_date=trial.scenario.extraction.date,
            allow_future_extraction=True,
        )
        protocol = trial.scenario.protocol
        rerandomise(protocol, people, table, reps=200, rng=1)  # warm-up: numba compiles
        wall, cpu = [], []
        for repeat in range(3):
            started, started_cpu = time.perf_counter(), time.process_time()
            rerandomise(protocol, people, table, reps=10_000, rng=repeat)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        print(
            f"{protocol.randomisation.method:>17} n={len(people)}: wall median {statistics.median(wall):.2f} s "
            f"of {[round(w, 2) for w in wall]}, CPU {[round(c, 2) for c in cpu]}"
        )


if __name__ == "__main__":
    main()
