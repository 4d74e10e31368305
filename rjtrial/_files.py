"""Writing output files: owner-only, and whole or not at all.

Follow-up tables, exported participants and reports hold criminal-record data, so every
file rjtrial writes for them is created ``0600`` (owner read/write), whatever the umask,
as the registry's database and key are. The data go to a temporary file beside the
target, created ``0600`` by :func:`tempfile.mkstemp`, synced, then renamed over the
target: a reader sees the old file or the new one, never half of one, and a failure
leaves the old file as it was and no temporary behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from rjtrial.errors import RjtrialError

__all__ = ["private_file", "write_private"]


def write_private(path: str | os.PathLike, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` atomically, readable and writable by its owner only.

    Parameters
    ----------
    path : path-like
        The file to write (replaced if it exists; it then becomes owner-only too).
    data : str or bytes
        The contents; text is encoded with ``encoding``.
    encoding : str, default "utf-8"

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    RjtrialError
        ``path`` is a folder, its folder does not exist, or the write failed (the message
        names ``path`` and the system's reason, never the temporary file).
    """
    target = Path(path)
    if target.is_dir():
        raise RjtrialError(f"cannot write {target}: it is a folder; give a file name, e.g. {target / 'output.csv'}")
    folder = target.parent
    if not folder.is_dir():
        raise RjtrialError(f"cannot write {target}: folder {folder} does not exist")
    payload = data.encode(encoding) if isinstance(data, str) else bytes(data)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")  # mode 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise RjtrialError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return target


@contextlib.contextmanager
def private_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file handle whose contents become ``path`` -- owner-only, atomically -- when the block
    ends normally; on an exception nothing is left behind. For outputs too large to hold in memory
    (registry backups); :func:`write_private` is the same for data in hand.

    Raises
    ------
    RjtrialError
        ``path`` is a folder, its folder does not exist, or the write failed.
    """
    target = Path(path)
    if target.is_dir():
        raise RjtrialError(f"cannot write {target}: it is a folder; give a file name")
    folder = target.parent
    if not folder.is_dir():
        raise RjtrialError(f"cannot write {target}: folder {folder} does not exist")
    tmp: str | None  # the temporary file; None once it has become the target
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")  # mode 0600
    except OSError as exc:
        raise RjtrialError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise RjtrialError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
