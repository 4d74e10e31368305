"""``rjtrial simulate``: write a synthetic trial's tables, its registry and its truth.

Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

#: Files the command writes (and may replace on a re-run into the same folder).
OUTPUTS = ("referrals", "participants", "offences", "custody", "victims", "costs", "latent")
MARKER = "truth.json"


def add_commands(subparsers) -> None:
    """Add the ``simulate`` command to an argparse ``subparsers`` object."""
    text = "simulate a trial from a scenario: tables, registry and truth.json"
    p = subparsers.add_parser("simulate", help=text, description=text)
    p.set_defaults(func=cmd_simulate)
    p.add_argument("scenario", help="scenario TOML file, e.g. synthetic/jrc-london-burglary.toml")
    p.add_argument("--seed", type=int, required=True, help="seed of the trial's randomness")
    p.add_argument(
        "-o", "--output", required=True, help="output folder (created; a previous simulation there is replaced)"
    )
    p.add_argument("--null", action="store_true", help="no treatment effect (reoffending.hazard_ratio_treated = 1)")
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        dest="overrides",
        help="replace a scenario value (TOML syntax), e.g. --set referrals.randomised=500 (repeat)",
    )
    p.add_argument(
        "--no-registry",
        action="store_true",
        help="allocate in memory, by the protocol's law from the seed, instead of enrolling through a registry",
    )
    p.add_argument(
        "--no-truth", action="store_true", help="skip the Monte Carlo truth (truth.json keeps the parameters)"
    )
    p.add_argument(
        "--truth-population", type=int, default=2_000_000, help="simulated people for the truth (default 2,000,000)"
    )
    p.add_argument(
        "--truth-cache",
        default=None,
        help="folder caching truths per scenario (default: $XDG_CACHE_HOME/rjtrial/truth; 'none' to disable)",
    )
    p.add_argument("--format", choices=["csv", "parquet"], default="csv", help="table format (parquet needs pyarrow)")
    p.add_argument("--latent", action="store_true", help="also write latent.csv (frailty, treated: not in real data)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def parse_overrides(items) -> dict:
    """``["a.b=1.0", "c.d=text"]`` -> ``{"a.b": 1.0, "c.d": "text"}`` (values read as TOML, else text)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    from rjtrial.simulate.scenario import ScenarioError

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ScenarioError([f"--set {item!r}: expected SECTION.KEY=VALUE"])
        try:
            out[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = value
    return out


def _cache_dir(option: str | None) -> Path | None:
    if option is not None:
        return None if option.lower() == "none" else Path(option)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rjtrial" / "truth"


def _prepare(folder: Path) -> None:
    """Create the folder, or clear a previous simulation from it; refuse anything else."""
    from rjtrial.errors import RjtrialError

    if folder.exists() and not folder.is_dir():
        raise RjtrialError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise RjtrialError(f"{folder} is not empty and holds no simulation ({MARKER}); choose another with -o")
        names = [f"{n}.{ext}" for n in OUTPUTS for ext in ("csv", "parquet")]
        for name in names + [MARKER, "consort.json", "trial.db", "trial.db-wal", "trial.db-shm", "trial.key"]:
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)


def cmd_simulate(args) -> int:
    """Run ``rjtrial simulate``; returns the exit code (0)."""
    from rjtrial.registry import Registry
    from rjtrial.simulate.generator import simulate_trial
    from rjtrial.simulate.scenario import load_scenario

    if args.format == "parquet":
        try:
            import pyarrow  # noqa: F401  (only to check it is installed)
        except ImportError:
            raise ValueError("--format parquet needs pyarrow (pip install pyarrow); use the default csv") from None
    scenario = load_scenario(args.scenario, overrides=parse_overrides(args.overrides))
    if args.null:
        scenario = scenario.with_null()
    folder = Path(args.output)
    _prepare(folder)
    trial = simulate_trial(
        scenario,
        rng=args.seed,
        registry=None if args.no_registry else folder,
        truth=not args.no_truth,
        truth_population=args.truth_population,
        truth_cache_dir=_cache_dir(args.truth_cache),
    )
    written = trial.write(folder, format=args.format, latent=args.latent)
    if not args.no_registry:
        with Registry.open(folder / "trial.db") as reg:
            consort = reg.consort()
        (folder / "consort.json").write_text(json.dumps(consort.to_dict(), indent=2) + "\n", encoding="utf-8")
        written += [folder / "consort.json", folder / "trial.db", folder / "trial.key"]
    realised = trial.truth["realised"]
    itt = trial.truth["itt"]
    data = {
        "scenario": scenario.id,
        "seed": args.seed,
        "output": str(folder),
        "files": [str(p) for p in written],
        "randomised_by_arm": realised["randomised_by_arm"],
        "conferences_held": realised["conferences_held"],
        "hazard_ratio_treated": trial.truth["hazard_ratio_treated"],
        "itt": None if itt is None else {k: itt[k] for k in ("hazard_ratio", "rate_ratio", "rmst_difference_days")},
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    arms = ", ".join(f"{n} {a}" for a, n in realised["randomised_by_arm"].items())
    lines = [
        f"simulated {scenario.name}: {realised['referrals']} referrals, {realised['randomised']} randomised ({arms}), "
        f"{realised['conferences_held']} conferences held",
        f"  {'registry ' + str(folder / 'trial.db') if not args.no_registry else 'allocated in memory'}; "
        f"records extracted {realised['extraction_date']}: {realised['offences']} offences, "
        f"{realised['custody_spells']} custody spells, {realised['victims']} victims",
        f"  truth: hazard ratio among the treated {trial.truth['hazard_ratio_treated']:g}",
    ]
    if itt is not None:
        lines.append(
            f"         intention to treat: hazard ratio {itt['hazard_ratio']:.4f}, rate ratio {itt['rate_ratio']:.4f}, "
            f"RMST difference {itt['rmst_difference_days']:.2f} days (Monte Carlo, {itt['population']:,} people)"
        )
    lines.append(f"wrote {len(written)} files to {folder}")
    print("\n".join(lines))
    return 0
