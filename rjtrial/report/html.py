"""Render the report's HTML (Jinja2, autoescaped) and write it atomically."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["TrialReport", "render"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _missing(value) -> bool:
    try:
        return value is None or math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def fmt(value, digits: int = 2) -> str:
    """A number to ``digits`` decimals; an em dash when missing."""
    if _missing(value):
        return "\u2014"
    return f"{float(value):,.{digits}f}"


def fmt_p(value) -> str:
    """A p-value: three decimals, ``< 0.001`` below that."""
    if _missing(value):
        return "\u2014"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def fmt_ci(lower, upper, digits: int = 2) -> str:
    """A confidence interval as text (``lower to upper``), or a dash when a limit is missing."""
    if _missing(lower) or _missing(upper):
        return "\u2014"
    return f"{fmt(lower, digits)} to {fmt(upper, digits)}"


def fmt_pct(value, digits: int = 1) -> str:
    """A proportion as a percentage (``0.123`` is ``12.3%``), or a dash when missing."""
    return "\u2014" if _missing(value) else f"{100 * float(value):.{digits}f}%"


def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(("html", "j2")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, p=fmt_p, ci=fmt_ci, pct=fmt_pct)
    env.globals.update(missing=_missing)
    return env


def render(context: Mapping[str, Any]) -> str:
    """The report's HTML from its sections (see :func:`rjtrial.report.build_report`)."""
    return _environment().get_template("report.html.j2").render(**context)


@dataclass(frozen=True)
class TrialReport:
    """A rendered trial report.

    Attributes
    ----------
    html : str
        The self-contained HTML document (figures embedded as PNG data URIs).
    numbers : dict
        Headline numbers as floats, exactly those shown in the report (each shown value
        carries the full-precision number in its ``data-value`` attribute).
    sections : dict
        The computed sections (result objects of the library's verbs) for programs.
    """

    html: str
    numbers: Mapping[str, float]
    sections: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the HTML to ``path``, owner-only (0600: it holds criminal-record data), through a
        temporary file beside it: never a partial report, and no temporary left on failure."""
        from rjtrial._files import write_private

        return write_private(path, self.html)

    def __repr__(self) -> str:
        hr = self.numbers.get("hazard_ratio", float("nan"))
        return f"<TrialReport hazard_ratio={hr:.4g}, {len(self.html):,} characters>"
