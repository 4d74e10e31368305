"""Boundaries look by look: efficacy bounds from the alpha spent, futility bounds from the beta spent.

:func:`walk` goes through the looks in order. At look ``k`` it finds the efficacy bound
``c_k`` for which the probability, under no effect, of crossing it at look ``k`` having
continued so far equals the alpha to spend there; then (when a futility spending is given)
the futility bound ``b_k`` for which the probability, under the drift of the design's
effect, of falling below it at look ``k`` having continued so far equals the beta to spend
there; then conditions both paths on continuing. With a non-binding futility rule the
efficacy bounds ignore the futility bounds (the trial may continue past one); with a binding
rule they count on the trial stopping there. All statistics are oriented so that large
values favour the design's effect; a two-sided design has the lower boundary ``-c_k`` (harm)
and no futility boundary (two-sided beta spending is not settled: rpact marks its own
experimental).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np
from scipy import optimize

from rjtrial.monitor._integration import Recursion

#: Numbers per look: a sequence or a 1-d array.
Floats = Union[Sequence[float], np.ndarray]

#: The largest efficacy bound (rpact's ``C_UPPER_BOUNDS_DEFAULT``): an alpha to spend below
#: ``P(Z > 8) = 6e-16`` is spent as that.
UPPER_CAP = 8.0
_LOWEST = -20.0
_XTOL = 1e-14


@dataclass
class Walk:
    """Bounds and crossing probabilities of one pass through the looks.

    ``critical``: efficacy bounds; ``futility``: futility bounds (``-inf`` where there is
    none; at the last look of a design with futility, the efficacy bound); ``upper``,
    ``lower``, ``stop_futility``: per look, the probability under the walk's drift of
    stopping there by crossing the efficacy bound, the harm bound (two-sided) or the futility
    bound; ``notes``: what the walk had to do (a bound capped).
    """

    critical: np.ndarray
    futility: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    stop_futility: np.ndarray
    notes: list = field(default_factory=list)

    @property
    def power(self) -> float:
        """P(crossing an efficacy bound) under the walk's drift."""
        return float(self.upper.sum())

    @property
    def type2(self) -> float:
        """P(never crossing an efficacy bound): futility stops and the last look's acceptance."""
        return 1.0 - self.power - float(self.lower.sum())


def region(critical: float, futility: float, sides: int, *, with_futility: bool = True) -> list[tuple[float, float]]:
    """The continuation region of one look."""
    if sides == 2:
        return [(-critical, critical)]
    return [(futility if with_futility else -math.inf, critical)]


def _exit(path: Recursion, info: float, c: float, sides: int) -> float:
    return path.above(info, c) + (path.below(info, -c) if sides == 2 else 0.0)


def solve_critical(path: Recursion, info: float, alpha: float, sides: int, notes: list, look: int) -> float:
    """The efficacy bound spending ``alpha`` at this look (``path`` under no effect)."""
    if alpha <= _exit(path, info, UPPER_CAP, sides):
        notes.append(
            f"look {look + 1}: the alpha to spend ({alpha:.3g}) is below P(Z > {UPPER_CAP:g}); "
            f"the efficacy bound is capped at {UPPER_CAP:g}"
        )
        return UPPER_CAP
    lowest = 0.0 if sides == 2 else -UPPER_CAP
    if alpha >= _exit(path, info, lowest, sides):
        notes.append(
            f"look {look + 1}: the alpha to spend ({alpha:.3g}) is more than the probability of "
            f"reaching this look; the efficacy bound is set to {lowest:g}"
        )
        return lowest
    return float(
        optimize.brentq(
            lambda c: _exit(path, info, c, sides) - alpha,
            lowest,
            UPPER_CAP,
            xtol=_XTOL,
            rtol=4 * np.finfo(float).eps,
            maxiter=200,
        )
    )


def solve_futility(path: Recursion, info: float, beta: float, critical: float, notes: list, look: int) -> float:
    """The futility bound spending ``beta`` at this look (``path`` under the design's drift; one-sided)."""
    if beta <= 0:
        return -math.inf
    if path.below(info, critical) <= beta:
        notes.append(
            f"look {look + 1}: the futility bound reaches the efficacy bound (the beta to spend, "
            f"{beta:.3g}, needs all of the region below it); it is set equal to the efficacy bound"
        )
        return critical
    lowest = min(_LOWEST, critical - 1.0)
    return float(
        optimize.brentq(
            lambda b: path.below(info, b) - beta,
            lowest,
            critical,
            xtol=_XTOL,
            rtol=4 * np.finfo(float).eps,
            maxiter=200,
        )
    )


def walk(
    info: Floats,
    alpha: Floats,
    *,
    sides: int,
    drift: float = 0.0,
    beta: Floats | None = None,  # one-sided designs only
    binding: bool = False,
    critical: Floats | None = None,
    futility: Floats | None = None,
) -> Walk:
    """One pass through the looks at information ``info`` (any scale; only ratios and the
    drift's units matter).

    ``alpha``: the alpha to spend at each look (increments); ``beta``: the beta to spend at
    each look but the last (increments; None: no futility bounds). ``critical`` (efficacy
    bounds already known: a non-binding design's do not depend on the drift) and ``futility``
    (futility bounds already known, e.g. a look's earlier ones) are used as given where not
    NaN. ``drift`` is the effect under which crossing probabilities and futility bounds are
    computed.
    """
    info = [float(t) for t in info]
    looks = len(info)
    null = Recursion(0.0)
    path = Recursion(drift)
    out = Walk(
        critical=np.full(looks, math.nan),
        futility=np.full(looks, math.nan),
        upper=np.full(looks, math.nan),
        lower=np.full(looks, math.nan),
        stop_futility=np.full(looks, math.nan),
    )
    need_null = critical is None or any(math.isnan(c) for c in critical)
    for k, t in enumerate(info):
        last = k == looks - 1
        following = None if last else info[k + 1]
        c = math.nan if critical is None else float(critical[k])
        if math.isnan(c):
            c = solve_critical(null, t, float(alpha[k]), sides, out.notes, k)
        b = math.nan if futility is None else float(futility[k])
        if math.isnan(b):
            if beta is None:
                b = -math.inf
            elif last:
                b = c
            else:
                b = solve_futility(path, t, float(beta[k]), c, out.notes, k)
        out.critical[k], out.futility[k] = c, b
        out.upper[k] = path.above(t, c)
        out.lower[k] = path.below(t, -c) if sides == 2 else 0.0
        out.stop_futility[k] = 0.0 if last else path.below(t, b)
        if last:
            break
        path.advance(t, region(c, b, sides), next_info=following)
        if need_null:
            null.advance(t, region(c, b, sides, with_futility=binding), next_info=following)
    return out


def conditional_power(
    info: Sequence[float],
    critical: Sequence[float],
    futility: Sequence[float],
    *,
    sides: int,
    drift: float,
    start_info: float,
    start_z: float,
) -> np.ndarray:
    """P(crossing the efficacy bound at each later look, before stopping) from ``Z = start_z`` at
    ``start_info``, under ``drift``: cumulative, one entry per later look. Futility bounds of
    later looks count as stopping (as rpact's ``getConditionalPower`` does); the last look has none."""
    path = Recursion(drift, info=start_info, z=start_z)
    crossed = []
    for k, t in enumerate(info):
        c, b = float(critical[k]), float(futility[k])
        crossed.append(path.above(t, c))
        if k == len(info) - 1:
            break
        path.advance(t, region(c, b, sides), next_info=info[k + 1])
    return np.cumsum(crossed)
