"""A group-sequential design for a trial analysed by the log-rank test: :func:`design` and its
result, :class:`SequentialDesign`.

The data monitoring committee of a trial that runs for two years looks at the accumulating
results a few times. Looking repeatedly at a fixed 5% level would find an "effect" far more
often than 5% of the time when there is none (three looks: about 11%); a group-sequential
design sets each look's boundary so that the whole trial keeps its level. The boundaries come
from an error-spending function (Lan & DeMets): by information fraction ``t`` (events so far
over the maximum), the design has spent ``alpha(t)`` of its level, so a look may come
earlier or later than planned and its boundary is recomputed at the fraction actually reached
(:func:`rjtrial.monitor.look`). An optional futility boundary spends the type II error
the same way (non-binding by default: the committee may continue past it without harming the
level).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special

from rjtrial._result import Result, jsonable
from rjtrial.errors import RjtrialError, RjtrialWarning
from rjtrial.monitor import _boundaries
from rjtrial.monitor.spending import spending_function

__all__ = ["ALTERNATIVES", "SequentialDesign", "design"]

ALTERNATIVES = ("two-sided", "less", "greater")
MAX_LOOKS = 20
#: Settings of a design, in the order :func:`design` takes them (what a design file must hold).
SETTINGS = (
    "looks",
    "spending",
    "alpha",
    "power",
    "hazard_ratio",
    "futility",
    "binding",
    "allocation",
    "information",
    "alternative",
)
_COLUMNS = [
    "look",
    "information_fraction",
    "events",
    "critical_value",
    "efficacy_hazard_ratio",
    "harm_hazard_ratio",
    "futility_bound",
    "futility_hazard_ratio",
    "nominal_p",
    "alpha_spent",
    "beta_spent",
    "power",
    "futility_stop",
]


@dataclass(frozen=True)
class SequentialDesign(Result):
    """A group-sequential design (from :func:`design`): boundaries, spending and events.

    The standardised log-rank statistic ``Z`` is oriented in the direction of the design's
    effect (``Z = -(O - E) / sqrt(V)`` of the conference arm when ``hazard_ratio < 1``: large
    values favour the conference arm), as rpact and Jennison & Turnbull write it.

    Attributes
    ----------
    looks, spending, alpha, power, hazard_ratio, futility, binding, allocation, alternative
        The settings (``spending`` and ``futility`` as :func:`~rjtrial.monitor.spending_function`
        names).
    information : tuple of float
        Planned information fractions (events at the look over the maximum); the last is 1.
    critical_values : tuple of float
        Efficacy boundary of each look on the ``Z`` scale (rpact ``criticalValues``); a
        two-sided design stops for harm at ``-critical_value``.
    futility_bounds : tuple of float or None
        Futility boundary of each look but the last (rpact ``futilityBounds``): stop (or, non
        binding, may stop) when ``Z <= bound``. One-sided designs only.
    alpha_spent, beta_spent : tuple of float
        Cumulative type I and type II error spent by each look (``beta_spent`` None without
        futility).
    drift : float
        ``E[Z]`` at the maximum information under the design's effect (rpact's ``shift`` is
        its square).
    inflation_factor : float
        Maximum events over the events of a single analysis with the same level and power.
    max_events : float
        Events needed at the last look (unrounded, as rpact reports it).
    power_by_look, futility_by_look : tuple of float
        Under the design's effect: cumulative probability of stopping for efficacy by each look
        (the last is ``power``), and probability of stopping for futility at each look.
    expected_events_null, expected_events_half, expected_events_alternative : float
        Expected events at the end of the trial with no effect, half the effect (on the log
        scale) and the design's effect, futility bounds obeyed (rpact ``expectedEventsH0``,
        ``expectedEventsH01``, ``expectedEventsH1``).
    notes : tuple of str
        What the computation had to say (a bound capped, a futility bound that reached the
        efficacy bound); also issued as :class:`~rjtrial.errors.RjtrialWarning`.
    """

    looks: int
    spending: str
    alpha: float
    power: float
    hazard_ratio: float
    futility: str | None
    binding: bool
    allocation: float
    alternative: str
    information: tuple
    critical_values: tuple
    futility_bounds: tuple | None
    alpha_spent: tuple
    beta_spent: tuple | None
    drift: float
    inflation_factor: float
    max_events: float
    power_by_look: tuple
    futility_by_look: tuple
    expected_events_null: float
    expected_events_half: float
    expected_events_alternative: float
    notes: tuple = ()

    # ------------------------------------------------------------------ derived
    @property
    def sides(self) -> int:
        """2 for a two-sided design, else 1."""
        return 2 if self.alternative == "two-sided" else 1

    @property
    def direction(self) -> float:
        """-1 when the design's effect lowers the hazard (``hazard_ratio < 1``), else +1: the sign
        of the log hazard ratio that counts as benefit."""
        return -1.0 if self.hazard_ratio < 1 else 1.0

    @property
    def events(self) -> tuple:
        """Planned cumulative events at each look (unrounded)."""
        return tuple(float(t * self.max_events) for t in self.information)

    @property
    def settings(self) -> dict:
        """The arguments of :func:`design` that made this design."""
        return {
            name: (list(getattr(self, name)) if name == "information" else getattr(self, name)) for name in SETTINGS
        }

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the settings (canonical JSON): the design an interim look belongs to."""
        text = json.dumps(jsonable(self.settings), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def hazard_ratio_at(self, z, events) -> np.ndarray:
        """The hazard ratio at which the oriented statistic equals ``z`` after ``events`` events:
        ``exp(direction z / sqrt(p (1 - p) events))`` (rpact's effect scale)."""
        z, events = np.asarray(z, dtype=float), np.asarray(events, dtype=float)
        information = events * self.allocation * (1.0 - self.allocation)
        with np.errstate(over="ignore"):
            return np.exp(self.direction * z / np.sqrt(information))

    # ------------------------------------------------------------------ tables
    def summary_frame(self) -> pd.DataFrame:
        """One row per look.

        Returns
        -------
        pandas.DataFrame
            ``look`` (1, 2, ...); ``information_fraction``; ``events`` (planned cumulative
            events, unrounded); ``critical_value`` (efficacy bound on the ``Z`` scale);
            ``efficacy_hazard_ratio`` (the hazard ratio at the bound: the estimate must be at
            least this far from 1 to stop); ``harm_hazard_ratio`` (two-sided designs: the
            bound on the other side, else NaN); ``futility_bound`` and
            ``futility_hazard_ratio`` (NaN where there is none); ``nominal_p`` (one-sided
            p-value at the bound, rpact ``stageLevels``); ``alpha_spent`` and ``beta_spent``
            (cumulative); ``power`` (cumulative probability of stopping for efficacy by the
            look under the design's effect); ``futility_stop`` (probability of stopping for
            futility at the look under the design's effect). ``attrs``: the settings,
            ``max_events``, ``inflation_factor``, ``drift``, ``notes``.
        """
        k = self.looks
        critical = np.asarray(self.critical_values)
        events = np.asarray(self.events)
        futility = np.full(k, np.nan)
        if self.futility_bounds is not None:
            futility[:-1] = self.futility_bounds
        frame = pd.DataFrame(
            {
                "look": np.arange(1, k + 1),
                "information_fraction": np.asarray(self.information),
                "events": events,
                "critical_value": critical,
                "efficacy_hazard_ratio": self.hazard_ratio_at(critical, events),
                "harm_hazard_ratio": self.hazard_ratio_at(-critical, events) if self.sides == 2 else np.nan,
                "futility_bound": futility,
                "futility_hazard_ratio": self.hazard_ratio_at(futility, events),
                "nominal_p": special.ndtr(-critical),
                "alpha_spent": np.asarray(self.alpha_spent),
                "beta_spent": np.asarray(self.beta_spent) if self.beta_spent is not None else np.nan,
                "power": np.asarray(self.power_by_look),
                "futility_stop": np.asarray(self.futility_by_look),
            },
            columns=_COLUMNS,
        )
        frame.attrs.update(
            self.settings,
            max_events=self.max_events,
            inflation_factor=self.inflation_factor,
            drift=self.drift,
            notes=self.notes,
        )
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``settings`` (what :meth:`from_dict` rebuilds the design from), the per-look
        table, the maximum and expected events, and the notes. ``rjtrial monitor design -o``
        writes this."""
        return {
            "kind": "rjtrial group-sequential design",
            "settings": jsonable(self.settings),
            "fingerprint": self.fingerprint,
            "max_events": jsonable(self.max_events),
            "inflation_factor": jsonable(self.inflation_factor),
            "drift": jsonable(self.drift),
            "expected_events": {
                "null": jsonable(self.expected_events_null),
                "half": jsonable(self.expected_events_half),
                "alternative": jsonable(self.expected_events_alternative),
            },
            "looks": jsonable(self.summary_frame()),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "design") -> "SequentialDesign":
        """The design a :meth:`to_dict` (or a design file) describes, recomputed from its
        ``settings``; if it also lists the looks' boundaries, they must be the recomputed ones
        (a file whose numbers were edited is refused, naming ``source``)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("settings"), Mapping):
            raise RjtrialError(f"{source}: not a design (no 'settings'); write one with `rjtrial monitor design -o`")
        settings = dict(data["settings"])
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise RjtrialError(f"{source}: unknown setting(s) {', '.join(unknown)}; a design has {', '.join(SETTINGS)}")
        try:
            result = design(**settings)
        except (TypeError, ValueError) as exc:
            raise RjtrialError(f"{source}: {exc}") from None
        stored = data.get("looks")
        if stored is not None:
            try:
                values = [float(row["critical_value"]) for row in stored]
            except (TypeError, KeyError, ValueError):
                raise RjtrialError(f"{source}: 'looks' must list each look's critical_value") from None
            if len(values) != result.looks or not np.allclose(values, result.critical_values, rtol=0, atol=1e-9):
                raise RjtrialError(f"{source}: its boundaries are not those of its settings (was the file edited?)")
        return result

    # ------------------------------------------------------------------ display
    def format(self, digits: int = 4) -> str:
        """The design as a person reads it: settings, one line per look, events and notes."""
        sided = {
            "two-sided": "two-sided",
            "less": "one-sided (hazard ratio below 1)",
            "greater": "one-sided (hazard ratio above 1)",
        }[self.alternative]
        futility = (
            "none" if self.futility is None else f"{self.futility} ({'binding' if self.binding else 'non-binding'})"
        )
        lines = [
            f"group-sequential design: {self.looks} looks, {self.spending} alpha spending, {sided} alpha "
            f"{self.alpha:g}, power {self.power:g} at hazard ratio {self.hazard_ratio:g}",
            f"futility: {futility}; allocation {self.allocation:g} to the conference arm",
        ]
        frame = self.summary_frame()
        header = f"{'look':>4} {'info':>6} {'events':>7} {'z bound':>8} {'HR bound':>9}"
        if self.sides == 2:
            header += f" {'harm HR':>8}"
        if self.futility is not None:
            header += f" {'fut. z':>7} {'fut. HR':>8}"
        header += f" {'alpha spent':>11} {'power':>7}"
        lines.append(header)
        for r in frame.itertuples(index=False):
            line = (
                f"{r.look:>4} {r.information_fraction:>6.3f} {math.ceil(r.events - 1e-9):>7} "
                f"{r.critical_value:>8.{digits}f} {r.efficacy_hazard_ratio:>9.{digits}f}"
            )
            if self.sides == 2:
                line += f" {r.harm_hazard_ratio:>8.{digits}f}"
            if self.futility is not None:
                fz = "" if np.isnan(r.futility_bound) else f"{r.futility_bound:.{digits}f}"
                fh = "" if np.isnan(r.futility_hazard_ratio) else f"{r.futility_hazard_ratio:.{digits}f}"
                line += f" {fz:>7} {fh:>8}"
            line += f" {r.alpha_spent:>11.{digits}g} {r.power:>7.{digits}f}"
            lines.append(line)
        lines.append(
            f"maximum events {self.max_events:.2f} (round up: {math.ceil(self.max_events - 1e-9)}), "
            f"inflation factor {self.inflation_factor:.{digits}f}; expected events "
            f"{self.expected_events_null:.1f} with no effect, {self.expected_events_alternative:.1f} "
            f"at the design's effect"
        )
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


# ----------------------------------------------------------------------------- checks
def _fraction(name: str, value, *, upper: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number strictly between 0 and {upper:g}, got {value!r}")
    value = float(value)
    if not 0.0 < value < upper:
        raise ValueError(f"{name} must lie strictly between 0 and {upper:g}, got {value!r}")
    return value


def _information(looks: int, information) -> tuple:
    if information is None:
        return tuple(float(k) / looks for k in range(1, looks + 1))
    try:
        values = [float(v) for v in information]
    except (TypeError, ValueError):
        raise ValueError(f"information must be {looks} increasing fractions ending at 1, got {information!r}") from None
    if len(values) != looks:
        raise ValueError(f"information must give one fraction per look ({looks}), got {len(values)}")
    if not all(math.isfinite(v) and 0 < v <= 1 for v in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"information must be increasing fractions in (0, 1], got {values}")
    if values[-1] != 1.0:
        raise ValueError(f"information must end at 1 (the last look is at the maximum), got {values[-1]:g}")
    return tuple(values)


def check_settings(
    looks, spending, alpha, power, hazard_ratio, futility, binding, allocation, information, alternative
) -> dict:
    """The settings of :func:`design`, validated (``ValueError`` naming the argument)."""
    if isinstance(looks, bool) or not isinstance(looks, (int, np.integer)) or not 1 <= looks <= MAX_LOOKS:
        raise ValueError(f"looks must be a whole number from 1 to {MAX_LOOKS}, got {looks!r}")
    looks = int(looks)
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}; got {alternative!r}")
    sides = 2 if alternative == "two-sided" else 1
    alpha = _fraction("alpha", alpha, upper=1.0 if sides == 2 else 0.5)
    power = _fraction("power", power)
    if not power > alpha / sides:
        raise ValueError(f"power ({power:g}) must exceed the one-sided level ({alpha / sides:g})")
    if (
        isinstance(hazard_ratio, bool)
        or not isinstance(hazard_ratio, (int, float, np.integer, np.floating))
        or not 0 < float(hazard_ratio) < math.inf
        or float(hazard_ratio) == 1
    ):
        raise ValueError(
            f"hazard_ratio must be a positive number other than 1 (the effect to detect), got {hazard_ratio!r}"
        )
    hazard_ratio = float(hazard_ratio)
    if alternative == "less" and hazard_ratio > 1 or alternative == "greater" and hazard_ratio < 1:
        raise ValueError(
            f"alternative={alternative!r} tests a hazard ratio {'below' if alternative == 'less' else 'above'} "
            f"1, but hazard_ratio is {hazard_ratio:g}"
        )
    if not isinstance(binding, (bool, np.bool_)):
        raise ValueError(f"binding must be True or False, got {binding!r}")
    if binding and futility is None:
        raise ValueError("binding=True needs a futility spending function (futility=...)")
    if futility is not None and sides == 2:
        raise ValueError(
            "a futility boundary needs a one-sided design: alternative='less' (a hazard ratio below 1), "
            "usually with alpha=0.025; two-sided beta spending is not settled (rpact marks its own "
            "experimental)"
        )
    allocation = _fraction("allocation", allocation)
    return {
        "looks": looks,
        "spending": spending_function(spending, option="spending"),
        "alpha": alpha,
        "power": power,
        "hazard_ratio": hazard_ratio,
        "futility": None if futility is None else spending_function(futility, option="futility"),
        "binding": bool(binding),
        "allocation": allocation,
        "information": _information(looks, information),
        "alternative": alternative,
    }


# ----------------------------------------------------------------------------- the design
def increments(cumulative: np.ndarray) -> np.ndarray:
    """Per-look amounts from cumulative ones."""
    return np.diff(np.concatenate([[0.0], np.asarray(cumulative, dtype=float)]))


def _solve_drift(objective, start: float) -> float:
    """The root of an increasing ``objective`` (power minus its target), bracketed from ``start``."""
    low, high = 0.5 * start, 1.5 * start
    while objective(low) > 0:
        low *= 0.5
    while objective(high) < 0:
        high *= 1.5
        if high > 100 * start:
            raise ValueError("no drift reaches the power asked for (the futility bounds stop too often)")
    return float(optimize.brentq(objective, low, high, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200))


def design(
    looks: int = 3,
    *,
    spending: str = "obrien-fleming",
    alpha: float = 0.05,
    power: float = 0.8,
    hazard_ratio: float = 0.8,
    futility: str | None = None,
    binding: bool = False,
    allocation: float = 0.5,
    information: Sequence[float] | None = None,
    alternative: str = "two-sided",
) -> SequentialDesign:
    """A group-sequential design for a log-rank (or Cox) comparison of two arms.

    Parameters
    ----------
    looks : int
        Number of analyses, the last one final (1 to 20; 1 is a single analysis).
    spending : str
        Alpha-spending function: ``"obrien-fleming"``, ``"pocock"``, ``"hsd:GAMMA"``
        (Hwang–Shih–DeCani, e.g. ``"hsd:-4"``) or ``"kim-demets:RHO"``
        (:func:`~rjtrial.monitor.spending_function`).
    alpha : float
        Significance level of the whole trial: two-sided for ``alternative="two-sided"``
        (symmetric boundaries, each side spending half), else one-sided.
    power : float
        Power at ``hazard_ratio`` (in the direction of the effect).
    hazard_ratio : float
        The effect to detect: the hazard of reoffending in the conference arm over the control
        arm's (below 1: fewer reoffences).
    futility : str, optional
        Beta-spending function for a futility boundary (same names as ``spending``); None for
        none.
    binding : bool
        Whether the futility boundary binds (the efficacy boundaries then count on stopping at
        it, and are lower); by default it does not, so continuing past it keeps the level.
    allocation : float
        Share of participants randomised to the conference arm (0.5 for 1:1).
    information : sequence of float, optional
        Information fractions of the looks (events at the look over the maximum), increasing,
        the last 1; default equally spaced.
    alternative : {"two-sided", "less", "greater"}
        Two-sided (stop for benefit or harm), or one-sided in the direction of
        ``hazard_ratio`` (``"less"`` for a hazard ratio below 1).

    Returns
    -------
    SequentialDesign
        Boundaries on the ``Z`` and hazard-ratio scales, alpha and beta spent, information
        fractions, maximum and expected events, inflation factor (see its
        ``summary_frame()`` for the per-look columns).

    Notes
    -----
    The boundaries solve Lan & DeMets' equations by recursive numerical integration of the
    joint normal law of the sequential statistics (Armitage, McPherson & Rowe 1969;
    Jennison & Turnbull 2000, ch. 19; :mod:`rjtrial.monitor._integration`): look by look,
    the efficacy bound spends the alpha due there under no effect, and the futility bound
    the beta due there under the design's effect. The drift ``eta`` (``E[Z]`` at the maximum
    information under the effect) is then solved so that the power is reached (with
    futility, so that the type II error spent at the last look closes the total). The
    maximum number of events is Schoenfeld's ``eta^2 / (p (1 - p) log(HR)^2)``. Agrees with R
    rpact 3.3.4 (``getDesignGroupSequential``, ``getDesignCharacteristics``,
    ``getSampleSizeSurvival``, tolerance 1e-10) to 1e-9 on boundaries and probabilities and
    1e-8 relative on events, over 12 designs (``tests/validation/test_rpact_group_sequential.py``).

    References
    ----------
    Lan, K. K. G., & DeMets, D. L. (1983). Discrete sequential boundaries for clinical trials.
    *Biometrika*, 70(3), 659–663. https://doi.org/10.1093/biomet/70.3.659

    Armitage, P., McPherson, C. K., & Rowe, B. C. (1969). Repeated significance tests on
    accumulating data. *JRSS A*, 132(2), 235–244. https://doi.org/10.2307/2343787

    Jennison, C., & Turnbull, B. W. (2000). *Group Sequential Methods with Applications to
    Clinical Trials*. Chapman & Hall/CRC. https://doi.org/10.1201/9781584888581

    Hwang, I. K., Shih, W. J., & DeCani, J. S. (1990). Group sequential designs using a family
    of type I error probability spending functions. *Statistics in Medicine*, 9(12),
    1439–1445. https://doi.org/10.1002/sim.4780091207

    Examples
    --------
    >>> d = design(3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.8)
    >>> [round(c, 4) for c in d.critical_values]
    [3.7103, 2.5114, 1.993]
    >>> round(d.max_events, 1), round(d.inflation_factor, 4)
    (638.6, 1.0128)
    """
    s = check_settings(
        looks, spending, alpha, power, hazard_ratio, futility, binding, allocation, information, alternative
    )
    sides = 2 if s["alternative"] == "two-sided" else 1
    t = np.asarray(s["information"])
    alpha_spent = s["spending"].cumulative(t, s["alpha"], sides=sides)
    alpha_due = increments(alpha_spent)
    beta = 1.0 - s["power"]
    beta_spent = None if s["futility"] is None else s["futility"].cumulative(t, beta)
    beta_due = None if beta_spent is None else increments(beta_spent)[:-1]
    fixed = special.ndtri(1.0 - s["alpha"] / sides) + special.ndtri(s["power"])
    binding_walk = s["binding"] and beta_due is not None
    efficacy = None if binding_walk else _boundaries.walk(t, alpha_due, sides=sides)
    critical = None if efficacy is None else efficacy.critical

    def run(eta: float) -> _boundaries.Walk:
        return _boundaries.walk(
            t, alpha_due, sides=sides, drift=eta, beta=beta_due, binding=s["binding"], critical=critical
        )

    drift = _solve_drift(lambda eta: run(eta).power - s["power"], fixed)
    final = run(drift)
    notes = list(dict.fromkeys((efficacy.notes if efficacy is not None else []) + final.notes))
    shape = (final.critical, final.futility)

    def expected(eta: float) -> float:
        w = _boundaries.walk(t, alpha_due, sides=sides, drift=eta, critical=shape[0], futility=shape[1])
        stopped = w.upper[:-1] + w.lower[:-1] + w.stop_futility[:-1]
        return float((stopped * t[:-1]).sum() + (1.0 - stopped.sum()) * t[-1])

    log_hr = math.log(s["hazard_ratio"])
    max_events = drift**2 / (s["allocation"] * (1.0 - s["allocation"]) * log_hr**2)
    for note in notes:
        warnings.warn(note, RjtrialWarning, stacklevel=2)
    return SequentialDesign(
        looks=s["looks"],
        spending=s["spending"].name,
        alpha=s["alpha"],
        power=s["power"],
        hazard_ratio=s["hazard_ratio"],
        futility=None if s["futility"] is None else s["futility"].name,
        binding=s["binding"],
        allocation=s["allocation"],
        alternative=s["alternative"],
        information=tuple(float(v) for v in t),
        critical_values=tuple(float(c) for c in final.critical),
        futility_bounds=None if beta_due is None else tuple(float(b) for b in final.futility[:-1]),
        alpha_spent=tuple(float(a) for a in alpha_spent),
        beta_spent=None if beta_spent is None else tuple(float(b) for b in beta_spent),
        drift=drift,
        inflation_factor=float(drift**2 / fixed**2),
        max_events=float(max_events),
        power_by_look=tuple(float(p) for p in np.cumsum(final.upper)),
        futility_by_look=tuple(float(p) for p in final.stop_futility),
        expected_events_null=expected(0.0) * max_events,
        expected_events_half=expected(drift / 2.0) * max_events,
        expected_events_alternative=expected(drift) * max_events,
        notes=tuple(notes),
    )
