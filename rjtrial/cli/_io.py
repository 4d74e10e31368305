"""Reading the tables a command is given and writing the files it makes.

Tables are CSV or Parquet (by the file's extension); their rows are labelled from 1, the
first row under the header, so that an error naming a row names the one the user sees.
Every file written holds participant data or is derived from them: it is written
owner-only (0600) and atomically (:func:`rjtrial._files.write_private`).
"""

from __future__ import annotations

import io
from pathlib import Path

from rjtrial._files import write_private
from rjtrial.cli._base import CommandError
from rjtrial.errors import DataError

__all__ = ["read_table", "write_private", "write_figure"]


def read_table(path: str, table: str, *, dtype: dict | type | None = None, empty_ok: bool = True):
    """A CSV (``.csv``, or any other extension) or Parquet (``.parquet``, ``.pq``) table.

    A missing or unreadable file is one :class:`CommandError`; an empty table is a
    :class:`DataError` unless ``empty_ok``. ``dtype`` is passed to ``pandas.read_csv``
    (the default reads an ``id`` column as text, so ``007`` stays ``007``).
    """
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{table} file {path} not found")
    try:
        if file.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(file)
        else:
            frame = pd.read_csv(file, dtype={"id": str} if dtype is None else dtype)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CommandError(f"{table} file {path} is not a readable CSV table: {str(exc).splitlines()[0]}") from None
    except ImportError as exc:  # Parquet without pyarrow
        raise CommandError(f"{table} file {path}: reading Parquet needs pyarrow ({exc})") from None
    except (OSError, ValueError) as exc:  # a corrupt Parquet file
        raise CommandError(f"{table} file {path} cannot be read: {exc}") from None
    if not empty_ok and len(frame) == 0:
        raise DataError("the table has no rows", table=path)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame


def write_figure(figure, path: str) -> None:
    """A matplotlib figure, in the format of the file's extension, written as every output is."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=150, bbox_inches="tight")
    plt.close(figure)
    write_private(path, buffer.getvalue())
