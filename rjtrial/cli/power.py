"""``rjtrial power SCENARIO`` and ``rjtrial sample-size SCENARIO``: designing a trial by simulation.

::

    rjtrial power synthetic/jrc-multisite.toml --n 200,400,800,1600 --hazard-ratio 0.7,0.8,0.9 \\
        --reps 10000 --plot power.png --csv power.csv
    rjtrial power synthetic/jrc-multisite.toml --n 800 --analysis rate_ratio --json
    rjtrial power SCENARIO --scheduler tcp://10.0.0.5:8786     # on a Dask cluster
    rjtrial sample-size synthetic/jrc-multisite.toml --power 0.8 --hazard-ratio 0.8

``power`` prints one row per effect and size: the simulated power with its Monte Carlo
standard error and interval, the events and the mean estimate, and (for cox/logrank)
Schoenfeld's approximation with the intention-to-treat and the naive hazard ratio;
``--plot`` draws the power curves (Monte Carlo bands, Schoenfeld dashed), ``--csv`` writes
the grid. ``sample-size`` finds the smallest trial reaching a power by bisection over the
size with common random numbers, with its Monte Carlo uncertainty, beside Schoenfeld's
answers. A progress bar with the time left goes to standard error when it is a terminal (or
with ``--progress``); the last line says where the time went. The statistics are in
:mod:`rjtrial.simulate.power` and :mod:`rjtrial.simulate.sample_size`; nothing heavy is
imported until a command runs.
"""

from __future__ import annotations

import json
import sys

ANALYSES = ("cox", "logrank", "rate_ratio")  # rjtrial.simulate.power.ANALYSES (a test keeps them equal)


def _common(p) -> None:
    """Options shared by ``power`` and ``sample-size``."""
    p.add_argument("scenario", metavar="SCENARIO", help="scenario TOML file, e.g. synthetic/jrc-multisite.toml")
    p.add_argument(
        "--analysis",
        default="cox",
        choices=ANALYSES,
        help="cox (Efron, Wald; default), logrank, or rate_ratio (negative binomial)",
    )
    p.add_argument("--alpha", default=0.05, type=float, help="two-sided significance level (default 0.05)")
    p.add_argument("--seed", default=1, type=int, help="seed of the simulation (default 1; printed with the result)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        default=None,
        type=int,
        help="threads of the local pool (default: one per CPU; 1 runs on one thread)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler address (e.g. tcp://host:8786): run there instead of the local pool",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        dest="overrides",
        help="replace a scenario value (TOML syntax), e.g. --set treatment.conference_held=0.9 (repeat)",
    )
    p.add_argument(
        "--no-schoenfeld", action="store_true", help="skip the Monte Carlo truth and Schoenfeld's approximation"
    )
    p.add_argument(
        "--truth-population",
        type=int,
        default=2_000_000,
        help="simulated people for the truth behind Schoenfeld's columns (default 2,000,000)",
    )
    p.add_argument(
        "--truth-cache",
        default=None,
        help="folder caching truths per scenario (default: $XDG_CACHE_HOME/rjtrial/truth; 'none' to disable)",
    )
    progress = p.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show the progress bar even when standard error is not a terminal",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_commands(subparsers) -> None:
    """Add the ``power`` and ``sample-size`` commands to the ``rjtrial`` argparse ``subparsers``."""
    text = "power of a scenario's trial by simulation, over sizes and effects, beside Schoenfeld's approximation"
    p = subparsers.add_parser("power", help=text, description=text)
    p.set_defaults(func=cmd_power)
    _common(p)
    p.add_argument(
        "--n",
        default="200,400,800",
        metavar="N[,N...]",
        help="numbers randomised, comma-separated (default 200,400,800)",
    )
    p.add_argument(
        "--hazard-ratio",
        default=None,
        metavar="HR[,HR...]",
        help="effects of a conference among those who had one (reoffending.hazard_ratio_treated), "
        "comma-separated (default: the scenario's)",
    )
    p.add_argument("--reps", default=2000, type=int, help="simulated trials per size and effect (default 2000)")
    p.add_argument("--null", action="store_true", help="no treatment effect (type I error instead of power)")
    p.add_argument("--plot", default=None, metavar="FILE", help="draw the power curves to FILE (.png, .pdf, .svg)")
    p.add_argument("--csv", default=None, metavar="FILE", help="write the grid as CSV to FILE")

    text = "the smallest trial reaching a power, by simulation (bisection with common random numbers)"
    p = subparsers.add_parser("sample-size", help=text, description=text)
    p.set_defaults(func=cmd_sample_size)
    _common(p)
    p.add_argument("--power", default=0.8, type=float, help="target power (default 0.8)")
    p.add_argument(
        "--hazard-ratio",
        default=None,
        type=float,
        metavar="HR",
        help="effect of a conference among those who had one (default: the scenario's)",
    )
    p.add_argument("--reps", default=2000, type=int, help="simulated trials per size evaluated (default 2000)")
    p.add_argument(
        "--resolution",
        default=0.01,
        type=float,
        help="stop when the bracket is within this share of n (default 0.01; 0: one participant)",
    )
    p.add_argument("--n-max", default=100_000, type=int, help="the largest trial considered (default 100,000)")


def _numbers(text: str, option: str, convert, example: str) -> list:
    values = []
    for item in str(text).split(","):
        item = item.strip().replace("_", "")
        try:
            values.append(convert(item))
        except ValueError:
            raise ValueError(f"{option}: {item!r} is not a number (expected e.g. {option} {example})") from None
    return values


def parse_sizes(text: str) -> list[int]:
    """``"200,400,800"`` -> ``[200, 400, 800]``; raise ValueError naming ``--n``."""
    sizes = _numbers(text, "--n", int, "200,400,800")
    for value in sizes:
        if value < 2:
            raise ValueError(f"--n: every sample size must be at least 2, got {value}")
    return sizes


def parse_effects(text: str | None) -> list[float] | None:
    """``"0.7,0.8"`` -> ``[0.7, 0.8]`` (None stays None); raise ValueError naming ``--hazard-ratio``."""
    if text is None:
        return None
    effects = _numbers(text, "--hazard-ratio", float, "0.7,0.8,0.9")
    for value in effects:
        if not value > 0:
            raise ValueError(f"--hazard-ratio: every hazard ratio must be positive, got {value:g}")
    return effects


def _check(args) -> None:
    if args.reps < 1:
        raise ValueError(f"--reps must be at least 1, got {args.reps}")
    if not 0.0 < args.alpha < 1.0:
        raise ValueError(f"--alpha must lie strictly between 0 and 1, got {args.alpha}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative whole number, got {args.seed}")
    if args.truth_population < 1:
        raise ValueError(f"--truth-population must be at least 1, got {args.truth_population}")


def _scenario(args):
    from rjtrial.cli.simulate import parse_overrides
    from rjtrial.simulate.scenario import load_scenario

    return load_scenario(args.scenario, overrides=parse_overrides(args.overrides))


def _options(args) -> dict:
    from rjtrial.cli.simulate import _cache_dir

    show = args.progress if args.progress is not None else _is_terminal(sys.stderr)
    return {
        "reps": args.reps,
        "analysis": args.analysis,
        "alpha": args.alpha,
        "rng": args.seed,
        "workers": args.workers,
        "scheduler": args.scheduler,
        "progress": show,
        "schoenfeld": not args.no_schoenfeld,
        "truth_population": args.truth_population,
        "truth_cache_dir": _cache_dir(args.truth_cache),
    }


def cmd_power(args) -> int:
    """Run ``rjtrial power``; returns the exit code (0)."""
    from rjtrial._malloc import reuse_freed_memory
    from rjtrial.simulate.power import power

    reuse_freed_memory()  # batches of replicate trials: reuse their freed arrays (rjtrial._malloc)

    sizes = parse_sizes(args.n)
    effects = parse_effects(args.hazard_ratio)
    _check(args)
    if args.null and effects is not None:
        raise ValueError("--null and --hazard-ratio cannot be given together (--null is --hazard-ratio 1)")
    for name in ("plot", "csv"):
        _check_writable(getattr(args, name), f"--{name}")
    scenario = _scenario(args)
    if args.null:
        scenario = scenario.with_null()
    result = power(scenario, n=sizes, hazard_ratio=effects, **_options(args))
    if args.plot:
        _save_figure(result, args.plot)
    if args.csv:
        result.to_csv(args.csv)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.format())
        for label, path in (("figure", args.plot), ("grid", args.csv)):
            if path:
                print(f"wrote the {label} to {path}")
    return 0


def cmd_sample_size(args) -> int:
    """Run ``rjtrial sample-size``; returns the exit code (0)."""
    from rjtrial._malloc import reuse_freed_memory
    from rjtrial.simulate.sample_size import sample_size

    reuse_freed_memory()

    _check(args)
    if not 0.0 < args.power < 1.0:
        raise ValueError(f"--power must lie strictly between 0 and 1, got {args.power}")
    if args.hazard_ratio is not None and not args.hazard_ratio > 0:
        raise ValueError(f"--hazard-ratio must be positive, got {args.hazard_ratio:g}")
    if not 0.0 <= args.resolution < 1.0:
        raise ValueError(f"--resolution must lie in [0, 1), got {args.resolution}")
    result = sample_size(
        _scenario(args),
        power=args.power,
        hazard_ratio=args.hazard_ratio,
        resolution=args.resolution,
        n_max=args.n_max,
        **_options(args),
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.format())
    return 0


def _check_writable(path: str | None, option: str) -> None:
    """Refuse before simulating: a file in a folder that does not exist."""
    if path is None:
        return
    from pathlib import Path

    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise ValueError(f"{option}: cannot write {path}: folder {folder} does not exist")


def _save_figure(result, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = result.plot()
    try:
        ax.figure.savefig(path, dpi=150, bbox_inches="tight")
    except ValueError as exc:  # an unknown file type
        raise ValueError(f"--plot: {exc}") from None
    finally:
        plt.close(ax.figure)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
