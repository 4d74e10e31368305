"""The HTML trial report: :func:`build_report` → :class:`TrialReport` (``rjtrial report``).

One self-contained HTML file (figures embedded as PNG data URIs, no scripts, no external
resources): the design and the published sequence commitment with the result of
``verify``; the CONSORT flow from the registry's counts; the baseline table; the primary
outcome by intention to treat (Kaplan–Meier with numbers at risk, Cox hazard ratio,
log-rank, RMST, rate ratio, prevalence) and the CACE beside it; a forest plot of
pre-specified subgroups; victims' outcomes and the benefit–cost ratio when given; and the
versions, seed and command that produced it.

Modules: ``data`` (read the inputs, check they belong to the registry's trial),
``sections`` (each section's content), ``figures`` (CONSORT, Kaplan–Meier, forest),
``html`` (the Jinja2 template, :class:`TrialReport`), ``build`` (:func:`build_report`),
``cli`` (``rjtrial report``). Imports are lazy: importing the package loads nothing heavy.
"""

from __future__ import annotations

__all__ = ["DEFAULT_SEED", "TrialReport", "build_report"]

#: Seed of the report's only random step (the benefit–cost bootstrap); printed in the report.
DEFAULT_SEED = 20240601

_WHERE = {"build_report": "rjtrial.report.build", "TrialReport": "rjtrial.report.html"}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rjtrial.report' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
