"""The joint law of group-sequential statistics by recursive numerical integration.

The standardised statistics of a trial analysed at information levels ``t_1 < ... < t_K``
are ``Z_k = S_k / sqrt(t_k)``, where ``S`` is a Brownian motion with drift ``eta`` on the
information scale: ``S_k - S_{k-1} ~ N(eta (t_k - t_{k-1}), t_k - t_{k-1})``, independent
increments (Armitage, McPherson & Rowe 1969; Jennison & Turnbull 2000, ch. 19). A trial
that has not stopped by look ``k`` has ``Z_j`` in the continuation region of every look
``j <= k``; the sub-density of ``Z_k`` on that event is carried from look to look by

    f_k(x) = integral of f_{k-1}(z) sqrt(t_k / D) phi((x sqrt(t_k) - z sqrt(t_{k-1}) - eta D) / sqrt(D)) dz,

``D = t_k - t_{k-1}``, over the continuation region of look ``k - 1``. :class:`Recursion`
holds that sub-density as point masses (the density times quadrature weights) on a grid of
Gauss–Legendre panels over the continuation region, narrower where the looks are close in
information, and cut ``TAIL`` marginal standard deviations from the marginal mean (the mass
beyond is below 1e-22). The probability of crossing a bound at the next look is then a sum of
normal tail probabilities over the grid, exact given the grid: a boundary is found by a root
search on that sum without another integration.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import special

#: Gauss–Legendre points per panel, the widest panel (z units) and the tail kept (marginal sd).
POINTS = 10
PANEL = 0.5
TAIL = 10.0
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(POINTS)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Recursion:
    """The sub-density of the sequential statistic on "not stopped yet", advanced look by look.

    Parameters
    ----------
    drift : float
        ``eta``: the mean of ``S`` per unit of information (``theta sqrt(I_max)`` when ``t`` is
        the information fraction).
    info, z : float
        Where the path starts: information 0 and ``z = 0`` for a design; an interim look's
        information and observed statistic for conditional power.
    """

    def __init__(self, drift: float, *, info: float = 0.0, z: float = 0.0):
        self.drift = float(drift)
        self.start_info = float(info)
        self.start_score = float(z) * math.sqrt(max(float(info), 0.0))
        self.info = float(info)
        self.z = np.array([float(z)])
        self.mass = np.array([1.0])

    # ------------------------------------------------------------------ one look ahead
    def _step(self, info: float) -> tuple[np.ndarray, float]:
        """Mean of ``S`` at ``info`` given each grid point, and the increment's standard deviation."""
        delta = float(info) - self.info
        if not delta > 0:
            raise ValueError(f"information must increase from look to look: {info!r} after {self.info!r}")
        return self.z * math.sqrt(self.info) + self.drift * delta, math.sqrt(delta)

    def above(self, info: float, bound: float) -> float:
        """P(not stopped before, ``Z >= bound`` at ``info``)."""
        if bound == math.inf:
            return 0.0
        mean, sd = self._step(info)
        return float(self.mass @ special.ndtr((mean - bound * math.sqrt(info)) / sd))

    def below(self, info: float, bound: float) -> float:
        """P(not stopped before, ``Z <= bound`` at ``info``)."""
        if bound == -math.inf:
            return 0.0
        mean, sd = self._step(info)
        return float(self.mass @ special.ndtr((bound * math.sqrt(info) - mean) / sd))

    def total(self) -> float:
        """P(not stopped yet)."""
        return float(self.mass.sum())

    # ------------------------------------------------------------------ move on
    def advance(self, info: float, region: Sequence[tuple[float, float]], *, next_info: float | None = None) -> None:
        """Condition on ``Z`` at ``info`` lying in ``region`` (disjoint intervals, ends may be
        infinite) and move the grid there. ``next_info`` (the look after) narrows the panels when
        that look is close in information, so the next step's kernel is resolved too."""
        mean, sd = self._step(info)
        root = math.sqrt(info)
        span = info - self.start_info
        centre = (self.start_score + self.drift * span) / root
        spread = math.sqrt(span / info)
        scale = sd / root
        if next_info is not None:
            scale = min(scale, math.sqrt((next_info - info) / info))
        width = PANEL * min(1.0, scale)
        nodes, weights = [], []
        for lower, upper in region:
            lower, upper = max(lower, centre - TAIL * spread), min(upper, centre + TAIL * spread)
            if not upper > lower:
                continue
            panels = max(1, math.ceil((upper - lower) / width))
            edges = np.linspace(lower, upper, panels + 1)
            half = 0.5 * np.diff(edges)
            middle = 0.5 * (edges[1:] + edges[:-1])
            nodes.append((middle[:, None] + half[:, None] * _NODES).ravel())
            weights.append((half[:, None] * _WEIGHTS).ravel())
        if not nodes:
            self.z, self.mass, self.info = np.zeros(0), np.zeros(0), float(info)
            return
        x = np.concatenate(nodes)
        w = np.concatenate(weights)
        u = (x[:, None] * root - mean[None, :]) / sd
        kernel = np.exp(-0.5 * u * u) * (_INV_SQRT_2PI * root / sd)
        self.mass = w * (kernel @ self.mass)
        self.z = x
        self.info = float(info)
