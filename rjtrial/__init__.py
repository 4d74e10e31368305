"""rjtrial: run and evaluate randomised controlled trials of restorative justice.

The concealed randomiser (:class:`Protocol`, :class:`Registry`), reoffending
analysis and meta-analysis, in the style of the Justice Research Consortium trials.
"""

from rjtrial._version import __version__
from rjtrial.errors import ProtocolError, RegistryError, RjtrialError
from rjtrial.protocol import Protocol

__all__ = ["Protocol", "ProtocolError", "Registry", "RegistryError", "RjtrialError", "__version__"]


def __getattr__(name):  # lazy: importing rjtrial does not pull in SQLAlchemy
    if name == "Registry":
        from rjtrial.registry import Registry

        return Registry
    raise AttributeError(f"module 'rjtrial' has no attribute {name!r}")
