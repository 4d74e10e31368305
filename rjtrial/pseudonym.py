"""Keyed pseudonyms for police and court identifiers: link records without holding who they are.

A trial links each participant's referral to their criminal record. The identifiers that
do so (Police National Computer numbers, court case numbers) are direct identifiers of
criminal-offence data. Under UK GDPR Art. 4(5) and 89 the research team should hold
*pseudonymised* data: identifiers replaced by values that cannot be traced back without
separately kept information. Here that information is a **pseudonymisation key**, a
256-bit secret in its own key file (not the trial key), and

.. math:: \\text{pseudonym}(x) = \\texttt{P-} \\| \\mathrm{base32}\\big(\\mathrm{HMAC\\text{-}SHA256}(K,
          \\texttt{"rjtrial-pseudonym-v1|"} \\| \\mathrm{normalise}(x))\\big)_{1..26}

(130 bits; ``normalise``: Unicode NFKC, outer white space removed, inner runs of white
space made one space, upper case, so ``2001/0012345a `` and ``2001/0012345A`` are one
person). A pseudonym is a valid referral id, so the registry enrols it as it is.

Linking by pseudonym only: whoever holds the identifiers (the police force's analyst
extracting the records, or a trusted third party) holds the pseudonymisation key and
pseudonymises both the referral (``rjtrial enrol --pseudonym-key``) and the extracts
(``rjtrial pseudonym apply``, or ``rjtrial followup --pseudonym-key`` on extracts that
still carry identifiers, in memory only); the research team receives and keeps
pseudonyms, and records match when their pseudonyms are equal. Without the key nobody can
compute the pseudonym of a known identifier (HMAC is a keyed pseudo-random function), so
a list of names or PNC numbers cannot be matched against the trial's data; with it, the
key holder can re-identify, so the key is kept apart from the research data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import stat
import unicodedata
from pathlib import Path

import pandas as pd

from rjtrial.errors import DataError, KeyFileError

__all__ = ["create_key_file", "normalise_identifier", "pseudonym", "pseudonymise_column", "read_key_file"]

KEY_PREFIX = "rjtrial-pseudonym-key-v1:"
PREFIX = "P-"
_SPACES = re.compile(r"\s+")


def create_key_file(path: str | os.PathLike) -> None:
    """Write a new random 256-bit pseudonymisation key to ``path`` (owner-only; never overwrites)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path} already exists; choose a new path (keys are never overwritten)") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(KEY_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii") + "\n")


def read_key_file(path: str | os.PathLike) -> bytes:
    """Read a pseudonymisation key file (refused if other users can read it, or if it is a trial key)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"pseudonymisation key file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read pseudonymisation key file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path} is accessible by other users; run: chmod 600 {path}")
    if not text.startswith(KEY_PREFIX):
        raise KeyFileError(f"{path} is not a pseudonymisation key file (make one with `rjtrial pseudonym key`)")
    try:
        key = base64.b64decode(text[len(KEY_PREFIX) :], validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise KeyFileError(f"pseudonymisation key file {path} is corrupt")
    return key


def normalise_identifier(value) -> str:
    """NFKC, outer white space removed, inner white space one space, upper case."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", str(value)).strip()).upper()


def pseudonym(identifier, key: bytes) -> str:
    """The pseudonym of a police or court identifier under ``key``: ``P-`` and 26 base32 characters.

    Examples
    --------
    >>> key = bytes(range(32))
    >>> p = pseudonym("2001/0012345A", key)
    >>> p == pseudonym(" 2001/0012345a ", key), len(p), p.startswith("P-")
    (True, 28, True)
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise ValueError("key must be the 32 bytes of a pseudonymisation key (read_key_file)")
    text = normalise_identifier(identifier)
    if not text:
        raise ValueError("an empty identifier has no pseudonym")
    digest = hmac.new(bytes(key), b"rjtrial-pseudonym-v1|" + text.encode("utf-8"), hashlib.sha256).digest()
    return PREFIX + base64.b32encode(digest).decode("ascii")[:26]


def pseudonymise_column(frame: pd.DataFrame, column: str, key: bytes, *, table: str) -> pd.DataFrame:
    """A copy of ``frame`` with ``column`` replaced by pseudonyms; a blank identifier is a
    :class:`DataError` naming the table, row (from 1) and column."""
    if column not in frame.columns:
        raise DataError(
            f"no column {column!r} to pseudonymise (columns: {', '.join(map(str, frame.columns))})", table=table
        )
    out = frame.copy()
    values = out[column]
    blank = values.isna() | (values.astype(str).str.strip() == "")
    if blank.any():
        position = int(blank.to_numpy().nonzero()[0][0])
        raise DataError("the identifier is blank", table=table, row=position + 1, column=column)
    out[column] = [pseudonym(v, key) for v in values.astype(str)]
    return out
