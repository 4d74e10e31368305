"""Backup, restore and disaster recovery of a registry.

:func:`backup` (``rjtrial backup``) makes a consistent online copy while the service runs:
SQLite's backup API (one step under a read lock: a snapshot of one committed state), or
``pg_dump`` from a snapshot exported in the same transaction that reads the head, for
PostgreSQL. The backup is one file, a gzip-compressed tar archive holding

``manifest.json``
    the format, trial, commitment, the **head it covers** (last audit entry and its hash,
    the receipt of the last enrolment, counts), when and by whom it was made, and the
    SHA-256 and size of the payload;
``registry.sqlite`` or ``registry.sql``
    the copy.

Its own SHA-256 is printed: keep it beside the file. The backup is logged in the audit
log (a ``data_access`` entry: a backup copies every participant's data).

:func:`restore` (``rjtrial restore``) refuses a backup

* whose payload does not match its manifest's SHA-256 (corrupt or altered);
* whose registry does not verify (keyless; with ``--key`` keyed; with ``--commitment``
  against the published commitment), or whose head is not the one its manifest names;
* that is **older than a receipt the user holds** (``--receipt``, ``--receipts FILE``):
  a receipt not in the backup's log is an allocation made after the backup, which
  restoring would lose. With ``accept_missing`` the backup is restored anyway and the
  missing receipts are recorded in the restore's audit entry; ``verify`` with the same
  receipts then names each of them as made after the backup.

It never writes over a store: the target must be a new SQLite file or an empty
PostgreSQL database, and a refused restore leaves nothing behind.

What a coordinator does when allocations are missing (also in ``docs/operations.md``):
stop enrolling; re-enter each missing referral **in its original order** with its
original time (``rjtrial enrol ... --at``), before any new referral: the sequence
position after the backup is the one those referrals took, so each gets the arm it was
given then, which the coordinator checks against their record (a difference means the
order was not the original one: record a ``note`` event and tell the trial statistician);
keep the old and new receipts together.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Mapping

from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from rjtrial._files import private_file
from rjtrial._result import Result
from rjtrial._version import __version__
from rjtrial.errors import RegistryError, TamperError
from rjtrial.registry import audit, store

__all__ = ["BackupResult", "RestoreResult", "backup", "read_manifest", "restore"]

FORMAT = "rjtrial-backup-v1"
MANIFEST = "manifest.json"
PAYLOADS = {"sqlite": "registry.sqlite", "postgresql": "registry.sql"}
_CHUNK = 1 << 20


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _head_info(conn) -> dict[str, Any]:
    """What a copy covers, read in the copy's own snapshot."""
    head = conn.execute(select(store.head).where(store.head.c.id == 1)).mappings().first()
    trial = conn.execute(select(store.trial.c.id, store.trial.c.commitment)).first()
    if head is None or trial is None:
        raise RegistryError("the store holds no initialised trial registry; nothing to back up")
    last = conn.execute(
        select(store.audit.c.hash)
        .where(store.audit.c.action == "enrolment")
        .order_by(store.audit.c.seq.desc())
        .limit(1)
    ).scalar()
    last_at = conn.execute(select(store.audit.c.at).where(store.audit.c.seq == head["audit_seq"])).scalar()
    referrals = conn.execute(select(func.count()).select_from(store.referrals)).scalar()
    return {
        "trial_id": trial.id,
        "commitment": trial.commitment,
        "head": {"audit_seq": int(head["audit_seq"]), "audit_hash": head["audit_hash"], "at": last_at},
        "last_receipt": None if last is None else audit.receipt_for(last),
        "randomised": int(head["sequence_number"]),
        "referrals": int(referrals),
    }


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI for pg_dump/psql (no driver, no password) and the environment carrying the password."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run(command: list[str], env, what: str) -> None:
    if shutil.which(command[0]) is None:
        raise RegistryError(f"{what} needs {command[0]} (the PostgreSQL client) on the PATH")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise RegistryError(f"{what}: {command[0]} failed: {lines[0] if lines else f'exit {done.returncode}'}")


# ------------------------------------------------------------------ backup
@dataclass(frozen=True)
class BackupResult(Result):
    """A backup made by :func:`backup`: the file, its SHA-256 and the head it covers."""

    path: str
    sha256: str
    bytes: int
    trial_id: str
    backend: str
    head_seq: int
    head_hash: str
    last_receipt: str | None
    randomised: int
    referrals: int
    created_at: str

    def summary_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "term": "backup",
                    "path": self.path,
                    "sha256": self.sha256,
                    "head_seq": self.head_seq,
                    "randomised": self.randomised,
                }
            ]
        )

    def format(self, digits: int = 4) -> str:
        return (
            f"backed up trial {self.trial_id} ({self.backend}) to {self.path}: audit entries 1-{self.head_seq}, "
            f"{self.referrals} referrals, {self.randomised} randomised, last receipt {self.last_receipt or 'none'}\n"
            f"SHA-256 of the backup file (keep it with the file): {self.sha256}"
        )


def backup(db, output, *, by: str = "unknown") -> BackupResult:
    """Write a consistent, verifiable copy of the registry at ``db`` to ``output`` (owner-only).

    Parameters
    ----------
    db : str or path
        The registry: a SQLite file or a PostgreSQL URL; it may be in use.
    output : path
        The backup file to write (replaced atomically if it exists).
    by : str
        Who made it (audit log).

    Returns
    -------
    BackupResult
    """
    output = Path(output)
    backend = "sqlite" if store.is_sqlite(db) else "postgresql"
    source = store.sqlite_path(db)
    if backend == "sqlite" and (source is None or not source.is_file()):
        raise RegistryError(f"no registry at {source or db} (file not found)")
    engine = store.make_engine(db)
    if not store.has_registry(engine):
        engine.dispose()
        raise RegistryError(f"{store._redact(str(db))} holds no trial registry")
    folder = Path(tempfile.mkdtemp(prefix=".rjtrial-backup-", dir=output.parent if output.parent.is_dir() else None))
    try:
        payload = folder / PAYLOADS[backend]
        if source is not None:  # a SQLite file (checked above)
            info = _sqlite_copy(source, payload)
        else:
            info = _postgres_dump(engine, str(db), payload)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest = {
            "format": FORMAT,
            "backend": backend,
            **info,
            "created_at": created,
            "by": str(by)[:100],
            "rjtrial_version": __version__,
            "payload": {"name": payload.name, "sha256": _sha256_file(payload), "bytes": payload.stat().st_size},
        }
        data = json.dumps(manifest, indent=2).encode("utf-8")
        with private_file(output) as handle:
            with tarfile.open(fileobj=handle, mode="w:gz", compresslevel=6) as tar:
                member = tarfile.TarInfo(MANIFEST)
                member.size, member.mode, member.mtime = len(data), 0o600, int(datetime.now().timestamp())
                tar.addfile(member, io.BytesIO(data))
                tar.add(payload, arcname=payload.name, filter=_private_member)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sha = _sha256_file(output)
    _log(
        engine,
        by,
        {
            "what": "backup",
            "referrals": None,
            "detail": {"file": output.name, "sha256": sha, "head_seq": info["head"]["audit_seq"]},
        },
    )
    engine.dispose()
    return BackupResult(
        str(output),
        sha,
        output.stat().st_size,
        info["trial_id"],
        backend,
        info["head"]["audit_seq"],
        info["head"]["audit_hash"],
        info["last_receipt"],
        info["randomised"],
        info["referrals"],
        created,
    )


def _private_member(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.mode, member.uid, member.gid, member.uname, member.gname = 0o600, 0, 0, "", ""
    return member


def _log(engine, by: str, payload: Mapping[str, Any]) -> None:
    """A ``data_access`` entry (unsigned: backup and restore need no key)."""
    from rjtrial.registry.core import now_utc

    with store.write_transaction(engine) as (conn, head_row):
        audit.append(
            conn,
            head_row,
            key=None,
            at=now_utc(),
            actor=str(by)[:100] or "unknown",
            action="data_access",
            payload=dict(payload),
        )


def _sqlite_copy(source: Path, target: Path) -> dict[str, Any]:
    """SQLite's online backup in one step (a read lock for its duration: one committed state)."""
    src = sqlite3.connect(source, timeout=120)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
    except sqlite3.Error as exc:
        raise RegistryError(f"cannot back up {source}: {exc}") from None
    finally:
        src.close()
        dst.close()
    copy = create_engine(f"sqlite:///{target}")
    try:
        with copy.connect() as conn:
            return _head_info(conn)
    finally:
        copy.dispose()


def _postgres_dump(engine, url: str, target: Path) -> dict[str, Any]:
    """``pg_dump`` of the snapshot in which the head is read: the manifest and the dump describe one state."""
    uri, env = _libpq(url)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        with conn.begin():
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            info = _head_info(conn)
            _run(
                [
                    "pg_dump",
                    "--dbname",
                    uri,
                    "--snapshot",
                    snapshot,
                    "--no-owner",
                    "--no-privileges",
                    "--format",
                    "plain",
                    "--file",
                    str(target),
                ],
                env,
                "backup",
            )
    return info


# ------------------------------------------------------------------ reading a backup
def read_manifest(path) -> dict[str, Any]:
    """The manifest of a backup file, after checking the payload against its SHA-256.

    Raises
    ------
    RegistryError
        Not a backup, an unknown format, or a payload that does not match (corrupt or altered).
    """
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"backup {path} not found")
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            manifest = json.loads(_member(tar, MANIFEST).read())
            digest = hashlib.sha256()
            handle = _member(tar, manifest["payload"]["name"])
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    except (tarfile.TarError, OSError, EOFError, KeyError, TypeError, ValueError, AttributeError):
        raise RegistryError(
            f"{path} is not an rjtrial backup, or it is damaged (cannot read its manifest and copy)"
        ) from None
    if manifest.get("format") != FORMAT or manifest.get("backend") not in PAYLOADS:
        raise RegistryError(f"{path}: unknown backup format {manifest.get('format')!r} (this rjtrial reads {FORMAT})")
    if digest.hexdigest() != manifest["payload"].get("sha256"):
        raise RegistryError(
            f"{path} is corrupt: its copy's SHA-256 {digest.hexdigest()} is not the {manifest['payload'].get('sha256')} "
            "its manifest records"
        )
    return manifest


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    """A file in the backup; KeyError if it is missing or not a file (a folder or link in its place)."""
    handle = tar.extractfile(name)
    if handle is None:
        raise KeyError(name)
    return handle


def _extract(path: Path, manifest, target: Path) -> None:
    with tarfile.open(path, mode="r:gz") as tar:
        source = _member(tar, manifest["payload"]["name"])
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())


# ------------------------------------------------------------------ restore
@dataclass(frozen=True)
class RestoreResult(Result):
    """What :func:`restore` restored (or, with ``check_only``, found restorable)."""

    db: str
    trial_id: str
    head_seq: int
    randomised: int
    level: str
    backup_created_at: str
    missing_receipts: tuple[str, ...] = ()
    check_only: bool = False

    def summary_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {"term": ["missing receipt"] * len(self.missing_receipts), "receipt": list(self.missing_receipts)}
        )

    def format(self, digits: int = 4) -> str:
        verb = "backup verifies; restorable" if self.check_only else f"restored trial {self.trial_id} into {self.db}"
        lines = [
            f"{verb}: audit entries 1-{self.head_seq}, {self.randomised} randomised, backup of "
            f"{self.backup_created_at}; checks run: {self.level}"
        ]
        if self.missing_receipts:
            lines.append(
                f"{len(self.missing_receipts)} receipt(s) you hold are not in this backup: allocations made "
                "after it. Re-enter them in their original order with their original times (--at) before any "
                "new referral, and check each arm against your record:"
            )
            lines += [f"  {r}" for r in self.missing_receipts]
        return "\n".join(lines)


def restore(
    backup_file,
    db,
    *,
    key_path=None,
    expected_commitment: str | None = None,
    receipts=(),
    accept_missing: bool = False,
    check_only: bool = False,
    by: str = "unknown",
) -> RestoreResult:
    """Restore a backup into a new store, after checking it (see the module notes).

    Parameters
    ----------
    backup_file : path
        A file written by :func:`backup`.
    db : str or path
        Where to restore: a SQLite file that does not exist, or an empty PostgreSQL database
        (the backend of the backup). Ignored with ``check_only`` for a SQLite backup.
    key_path : path, optional
        The trial key: the restored store is then verified keyed.
    expected_commitment : str, optional
        The published commitment (of the trial or of an amendment).
    receipts : sequence of str
        Receipts handed out at enrolment (``RJ-XXXX-XXXX-XXXX``, optionally followed by a
        label such as the referral id): each must be in the backup, unless ``accept_missing``.
    accept_missing : bool
        Restore even though some receipts are missing (they are listed in the result and
        in the restore's audit entry).
    check_only : bool
        Check the backup and restore it into a scratch file only (SQLite backups): a
        disaster-recovery drill.
    by : str
        Who restores (audit log).

    Raises
    ------
    RegistryError
        The backup is corrupt, older than a receipt held, or the target is not new and empty.
    TamperError
        The backed-up registry does not verify.
    """
    from rjtrial.registry.core import Registry

    backup_file = Path(backup_file)
    manifest = read_manifest(backup_file)
    backend = manifest["backend"]
    if check_only and backend != "sqlite":
        raise RegistryError(
            "a check without restoring needs a SQLite backup; restore a PostgreSQL backup into a "
            "scratch database instead"
        )
    if not check_only and store.is_sqlite(db) != (backend == "sqlite"):
        raise RegistryError(
            f"{backup_file} is a {backend} backup: restore it into a "
            f"{'SQLite file' if backend == 'sqlite' else 'PostgreSQL database'}"
        )
    scratch: Path | None = None
    if backend == "sqlite":
        file = None if check_only else store.sqlite_path(db)
        if not check_only and file is None:
            raise RegistryError(
                f"cannot restore into {store._redact(str(db))}: a SQLite backup restores into a file "
                "(--db PATH), not an in-memory database"
            )
        target = Path(tempfile.mkdtemp(prefix=".rjtrial-check-")) / "registry.db" if file is None else file
        if not check_only:
            if target.exists():
                raise RegistryError(f"{target} exists: restore into a new file (move the damaged store aside first)")
            if not target.parent.is_dir():
                raise RegistryError(f"cannot restore into {target}: folder {target.parent} does not exist")
        scratch = target.parent / f".{target.name}.restoring"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)
        _extract(backup_file, manifest, scratch)
        location, cleanup = str(scratch), _sqlite_cleanup(scratch, check_only and target.parent)
    else:
        location, cleanup = str(db), _postgres_load(backup_file, manifest, str(db))
    try:
        with Registry.open(location, key_path=key_path) as registry:
            result = registry.verify(expected_commitment=expected_commitment)
            if not result.ok:
                raise TamperError(
                    f"{backup_file} does not verify, not restored: {result.problems[0]}"
                    + (f" (and {len(result.problems) - 1} more problems)" if len(result.problems) > 1 else "")
                )
            with store.read_transaction(registry._engine) as conn:
                info = _head_info(conn)
                logged = set(conn.execute(select(store.referrals.c.receipt)).scalars())
            head = manifest.get("head") or {}
            if (info["head"]["audit_seq"], info["head"]["audit_hash"], info["trial_id"]) != (
                head.get("audit_seq"),
                head.get("audit_hash"),
                manifest.get("trial_id"),
            ):
                raise TamperError(
                    f"{backup_file}: its copy ends at audit entry {info['head']['audit_seq']}, not at the "
                    f"head its manifest records ({manifest['head']['audit_seq']})"
                )
            missing = []
            for line in receipts:
                receipt, label = audit.split_receipt(line)
                if receipt and receipt not in logged:
                    missing.append(f"{receipt} {label}".strip())
            if missing and not accept_missing:
                raise RegistryError(
                    f"{backup_file} is older than {len(missing)} receipt(s) you hold (first {missing[0]}): it ends at "
                    f"audit entry {info['head']['audit_seq']} ({info['head']['at']}), so the allocations made after it "
                    "would be lost. Restore a newer backup, or accept the loss (--accept-missing) and re-enter those "
                    "referrals in their original order"
                )
            if not check_only:
                registry_engine = registry._engine
                _log(
                    registry_engine,
                    by,
                    {
                        "what": "restore",
                        "referrals": None,
                        "detail": {
                            "backup_sha256": _sha256_file(backup_file),
                            "backup_created_at": manifest["created_at"],
                            "backup_head_seq": manifest["head"]["audit_seq"],
                            "missing_receipts": [audit.split_receipt(m)[0] for m in missing],
                        },
                    },
                )
        if scratch is not None and not check_only:  # SQLite
            try:
                os.link(scratch, target)  # never over an existing file
            except FileExistsError:
                raise RegistryError(f"{target} appeared while restoring: restore into a new file") from None
            cleanup()  # the scratch name and anything SQLite left beside it
            cleanup = None
        elif backend == "postgresql":
            cleanup = None  # restored: the tables stay
    except BaseException:
        if cleanup is not None:
            cleanup()
        raise
    if cleanup is not None:
        cleanup()
    return RestoreResult(
        str(target) if backend == "sqlite" else store._redact(str(db)),
        info["trial_id"],
        info["head"]["audit_seq"],
        info["randomised"],
        result.level,
        manifest["created_at"],
        tuple(missing),
        check_only,
    )


def _sqlite_cleanup(scratch: Path, folder):
    def cleanup():
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)

    return cleanup


def _postgres_load(backup_file: Path, manifest, url: str):
    """Load a PostgreSQL backup into an empty database; returns the function that removes it again."""
    engine = store.make_engine(url)
    try:
        if store.has_registry(engine):
            raise RegistryError(f"{store._redact(url)} already holds a trial registry: restore into an empty database")
        before = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    folder = Path(tempfile.mkdtemp(prefix=".rjtrial-restore-"))
    try:
        payload = folder / manifest["payload"]["name"]
        _extract(backup_file, manifest, payload)
        uri, env = _libpq(url)
        _run(
            [
                "psql",
                "--dbname",
                uri,
                "--single-transaction",
                "--no-psqlrc",
                "--quiet",
                "-v",
                "ON_ERROR_STOP=1",
                "--file",
                str(payload),
            ],
            env,
            "restore",
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def cleanup():
        engine = store.make_engine(url)
        try:
            with engine.begin() as conn:
                for name in set(inspect(conn).get_table_names()) - before:
                    conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
        finally:
            engine.dispose()

    return cleanup
