"""Error-spending functions: how much of the type I (or type II) error a design spends by each
information fraction (Lan & DeMets 1983; Hwang, Shih & DeCani 1990; Kim & DeMets 1987).

A spending function ``f(t; level)`` rises from 0 at ``t = 0`` to ``level`` at ``t = 1``; a
group-sequential design spends ``f(t_k) - f(t_{k-1})`` at look ``k``, whatever the number and
timing of the looks. Named as :func:`spending_function` reads them:

* ``"obrien-fleming"`` -- ``2 (1 - Phi(z_{1 - level/2} / sqrt(t)))`` (Lan & DeMets' O'Brien–Fleming
  type: almost nothing early, nearly the whole level at the end); R rpact ``"asOF"``/``"bsOF"``;
* ``"pocock"`` -- ``level log(1 + (e - 1) t)`` (Pocock type: nearly equal nominal levels);
  rpact ``"asP"``/``"bsP"``;
* ``"hsd:GAMMA"`` -- Hwang–Shih–DeCani, ``level (1 - exp(-GAMMA t)) / (1 - exp(-GAMMA))``
  (``level t`` for ``GAMMA = 0``): ``-4`` is close to O'Brien–Fleming, ``1`` to Pocock; rpact
  ``"asHSD"``/``"bsHSD"`` with ``gammaA``/``gammaB``;
* ``"kim-demets:RHO"`` -- the power family ``level t^RHO`` (``RHO = 3`` is close to
  O'Brien–Fleming, ``1`` to Pocock); rpact ``"asKD"``/``"bsKD"``.

For a two-sided test the O'Brien–Fleming type spends ``2 f(t; level / 2)`` (each side half the
level, as rpact does); the others are linear in the level and need no such care.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["SPENDING_FAMILIES", "SpendingFunction", "spending_function"]

#: The families :func:`spending_function` knows, with the parameter each takes (None: none).
SPENDING_FAMILIES = {"obrien-fleming": None, "pocock": None, "hsd": "GAMMA", "kim-demets": "RHO"}
#: rpact's names of the families (``typeOfDesign`` is ``"as" + name``, ``typeBetaSpending`` ``"bs" + name``).
RPACT_NAMES = {"obrien-fleming": "OF", "pocock": "P", "hsd": "HSD", "kim-demets": "KD"}


@dataclass(frozen=True)
class SpendingFunction:
    """One spending function: a family and its parameter (``hsd``'s gamma, ``kim-demets``' rho).

    Attributes
    ----------
    family : str
        ``"obrien-fleming"``, ``"pocock"``, ``"hsd"`` or ``"kim-demets"``.
    parameter : float or None
        Gamma of ``hsd``, rho of ``kim-demets``; None for the others.
    """

    family: str
    parameter: float | None = None

    @property
    def name(self) -> str:
        """The name :func:`spending_function` reads: ``"pocock"``, ``"hsd:-4"``."""
        if self.parameter is None:
            return self.family
        return f"{self.family}:{self.parameter:g}"

    def cumulative(self, t, level: float, *, sides: int = 1) -> np.ndarray:
        """The error spent by information fraction ``t`` (array-like, clipped to [0, 1]) out of ``level``.

        ``sides=2``: a two-sided level (the O'Brien–Fleming type then spends ``2 f(t; level/2)``).
        """
        t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
        out = np.zeros_like(t)
        positive = t > 0
        tp = t[positive]
        if self.family == "obrien-fleming":
            per_side = level / sides
            z = special.ndtri(1.0 - per_side / 2.0)
            out[positive] = sides * 2.0 * special.ndtr(-z / np.sqrt(tp))
        elif self.family == "pocock":
            out[positive] = level * np.log1p((math.e - 1.0) * tp)
        elif self.family == "hsd":
            gamma = 0.0 if self.parameter is None else float(self.parameter)  # hsd always has one
            out[positive] = level * tp if gamma == 0 else level * np.expm1(-gamma * tp) / np.expm1(-gamma)
        else:  # kim-demets
            rho = 1.0 if self.parameter is None else float(self.parameter)  # kim-demets always has one
            out[positive] = level * tp**rho
        out[t >= 1.0] = level
        return out

    def to_rpact(self) -> dict:
        """rpact's name of the family and its parameter (for the reference script)."""
        return {"type": RPACT_NAMES[self.family], "parameter": self.parameter}


def spending_function(name: str | SpendingFunction, *, option: str = "spending") -> SpendingFunction:
    """Read a spending function's name: ``"obrien-fleming"``, ``"pocock"``, ``"hsd:GAMMA"``
    (e.g. ``"hsd:-4"``) or ``"kim-demets:RHO"`` (e.g. ``"kim-demets:3"``).

    ``option`` names the argument in the error message. Raises ``ValueError`` naming the
    allowed names for anything else (a missing or non-numeric parameter, a parameter given to
    a family without one, ``kim-demets`` with ``RHO <= 0``).

    Examples
    --------
    >>> spending_function("hsd:-4")
    SpendingFunction(family='hsd', parameter=-4.0)
    >>> round(float(spending_function("pocock").cumulative(0.5, 0.05)), 6)
    0.031006
    """
    if isinstance(name, SpendingFunction):
        return name
    allowed = "obrien-fleming, pocock, hsd:GAMMA (e.g. hsd:-4) or kim-demets:RHO (e.g. kim-demets:3)"
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{option} must be one of {allowed}; got {name!r}")
    family, sep, text = name.strip().lower().partition(":")
    family = family.strip().replace("_", "-").replace(" ", "-")
    family = {
        "of": "obrien-fleming",
        "o'brien-fleming": "obrien-fleming",
        "obf": "obrien-fleming",
        "kd": "kim-demets",
        "hwang-shih-decani": "hsd",
    }.get(family, family)
    if family not in SPENDING_FAMILIES:
        raise ValueError(f"{option} must be one of {allowed}; got {name!r}")
    needs = SPENDING_FAMILIES[family]
    if needs is None:
        if sep:
            raise ValueError(f"{option}: {family} takes no parameter; got {name!r}")
        return SpendingFunction(family)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"{option}: {family} needs its {needs}, e.g. {family}:{-4 if family == 'hsd' else 3}; got {name!r}"
        ) from None
    if not math.isfinite(value) or (family == "kim-demets" and value <= 0) or abs(value) > 50:
        what = "a positive number" if family == "kim-demets" else "a number between -50 and 50"
        raise ValueError(f"{option}: the {needs} of {family} must be {what}; got {name!r}")
    return SpendingFunction(family, value)
