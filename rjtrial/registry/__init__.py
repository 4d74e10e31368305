"""The concealed randomiser: sealed sequence, enrolment, audit log, verification.

See :class:`Registry`. Modules: ``store`` (tables, transactions), ``seal`` (key,
encryption, commitments), ``audit`` (hash chain), ``core`` (the Registry),
``verify`` and ``reports`` (participants table, CONSORT counts), ``unseal``; for a trial
that runs for years: ``amend`` and ``segments`` (protocol amendments, sealed segments),
``blinding`` (blinded exports, the frozen analysis plan, unblinding), ``backup`` (backup,
restore), ``retention`` (erasable personal fields, audited erasure) and ``access`` (the
access log).
"""

from rjtrial.registry.core import EVENT_KINDS, EnrolmentResult, Registry, UnsealResult, key_path_from_env
from rjtrial.registry.reports import ConsortCounts, participants_csv
from rjtrial.registry.store import _redact as redact_url
from rjtrial.registry.verify import VerifyResult

__all__ = [
    "EVENT_KINDS",
    "ConsortCounts",
    "EnrolmentResult",
    "Registry",
    "UnsealResult",
    "VerifyResult",
    "key_path_from_env",
    "participants_csv",
    "redact_url",
]
