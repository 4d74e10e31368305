"""Exceptions raised by rjtrial.

Every error a user can cause derives from :class:`RjtrialError`; its message is
one line that says what went wrong and where (file, table, row, column or key), so
that the command-line interface can print it as it is, without a traceback.
"""

from __future__ import annotations


class RjtrialError(Exception):
    """Base class of every error rjtrial raises on bad input or bad state."""


class ProtocolError(RjtrialError, ValueError):
    """A trial protocol is invalid.

    ``problems`` lists every problem found, each naming its key
    (``"randomisation.method: unknown method 'blocs'; ..."``).
    """

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{where}invalid protocol: {self.problems[0]}"
        else:
            message = f"{where}invalid protocol ({len(self.problems)} problems): " + "; ".join(self.problems)
        super().__init__(message)


class RegistryError(RjtrialError):
    """The registry store cannot do what was asked (missing, wrong key, exhausted...)."""


class KeyFileError(RegistryError):
    """The key file is missing, unreadable, malformed or not the trial's key."""


class AmendmentError(RegistryError):
    """A protocol amendment is invalid or refused (removing an arm, changing the ratio of
    ongoing strata, editing a past allocation...).

    ``problems`` lists every reason, each naming its key (``"trial.arms: ..."``).
    """

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{where}amendment refused: {self.problems[0]}"
        else:
            message = f"{where}amendment refused ({len(self.problems)} reasons): " + "; ".join(self.problems)
        super().__init__(message)


class TamperError(RegistryError):
    """The store does not verify; raised where continuing would be unsafe."""


class DataError(RjtrialError, ValueError):
    """A user's data table is unusable; the message names the table, row and column.

    ``table``, ``row`` (the row's label or position) and ``column`` are kept as
    attributes for programs; the message is one line for people.
    """

    def __init__(self, message: str, *, table: str | None = None, row=None, column: str | None = None):
        self.table, self.row, self.column = table, row, column
        where = []
        if table is not None:
            where.append(f"table {table}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class RjtrialWarning(UserWarning):
    """Base class of the warnings rjtrial issues about a fit or about the data.

    The message is one line naming the cause (and the column, where there is one); the
    result object of the fit records the same text in its ``notes``.
    """


class ConvergenceWarning(RjtrialWarning):
    """An iterative fit did not converge, or converged towards an infinite coefficient
    (monotone likelihood: a covariate that separates events from non-events)."""


class CollinearityWarning(RjtrialWarning):
    """A column of the model matrix is a linear combination of others (or constant
    within strata); its coefficient is not estimable and is reported as NaN, as R
    reports ``NA``."""


class FallbackWarning(RjtrialWarning):
    """A fit did something other than what was asked, and says what: e.g. a negative
    binomial model with no overdispersion reported as the Poisson fit."""
