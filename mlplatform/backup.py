"""Backup and restore of the whole platform: the database, MLP_DATA_DIR (the artifact
store, model files, job bundles) and the data archive (DATA_ARCHIVE_DIR, which
MLP_ARCHIVE_DIR may put outside the data dir).

A backup directory holds `database.dump` (PostgreSQL, pg_dump's custom format) or
`database.sqlite3` (SQLite's online backup API: a consistent copy while the platform
runs), the data dir's files under `data/`, the archive's under `archive/`, and
`manifest.json` (versions, the applied migrations, a SHA-256 and size per file),
written last: a directory without a manifest is an unfinished backup and restore
refuses it. Restore puts each tree where the restoring platform's settings say.

Consistency: the database is dumped first, in one snapshot, then the files are copied.
Artifacts, model files, job bundles and archived records are written once and never
rewritten in place, so the copy holds every file the dump refers to (and maybe a few
newer ones nothing refers to yet). The archive's open segments are copied as far as they
are written; a torn last line is trimmed when the stream next opens them, as after a
crash. Transient state is left out: job work dirs, the serving spools (drained into
the database), collected static files, beat schedules."""

from collections.abc import Callable
from datetime import UTC, datetime
import hashlib
import json
import os
from pathlib import Path
import platform
import re
import shutil
import sqlite3
import subprocess

import django
from django.conf import settings

FORMAT = 2
READABLE_FORMATS = {1, 2}  # 1: the archive, if under the data dir, was in `data/`
MANIFEST = "manifest.json"
PG_DUMP_FILE = "database.dump"
SQLITE_FILE = "database.sqlite3"
DATA = "data"
ARCHIVE = "archive"
# The archive's segment names (data/archive.py): appended to while open, then renamed.
OPEN_SEGMENT, SEALED_SEGMENT = ".jsonl.open", ".jsonl"
# Files that appear or are renamed while a backup copies are picked up by another pass.
COPY_PASSES = 3
# Top-level entries of MLP_DATA_DIR that are transient or rebuilt, never backed up.
SKIP_TOP = {"static", "assets", "serving-spool", "test-output", "celerybeat-schedule", "secret_key.tmp"}
SKIP_SUFFIXES = (".sqlite3", ".sqlite3-wal", ".sqlite3-shm", ".sqlite3-journal", ".pid")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


Say = Callable[[str], None]


# -- what to copy -------------------------------------------------------------------
def _skipped(rel: Path) -> bool:
    top = rel.parts[0]
    if top in SKIP_TOP or top.startswith("celerybeat-schedule") or rel.name.endswith(SKIP_SUFFIXES):
        return True
    if rel.name.startswith(".upload-"):  # an artifact half-written (renamed into place when whole)
        return True
    # Job work dirs are scratch space; the uploaded code bundles are kept (reruns).
    return top == "jobs" and len(rel.parts) > 1 and rel.parts[1] != "bundles"


def _walk(root: Path, *, exclude: tuple[Path, ...], skip: Callable[[Path], bool]) -> list[Path]:
    excluded = [p.resolve() for p in exclude]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if (here / d).resolve() not in excluded]
        for name in filenames:
            rel = (here / name).relative_to(root)
            if not skip(rel):
                found.append(rel)
    return sorted(found)


def archive_dir() -> Path:
    return Path(settings.DATA_ARCHIVE_DIR).resolve()


def data_files(data_dir: Path, *, exclude: tuple[Path, ...] = ()) -> list[Path]:
    """Files under `data_dir` a backup holds in `data/`, as paths relative to it (the
    archive, wherever it is, goes in `archive/`)."""
    return _walk(data_dir, exclude=(*exclude, settings.SERVING_SPOOL_DIR, archive_dir()), skip=_skipped)


def archive_files(root: Path, *, exclude: tuple[Path, ...] = ()) -> list[Path]:
    """Every file of the archive: its top-level names are projects, so none is skipped."""
    return _walk(root, exclude=exclude, skip=lambda rel: False)


def _copy(source: Path, target: Path) -> dict:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(source, "rb") as src, open(target, "wb") as dst:
        while chunk := src.read(1024 * 1024):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    shutil.copystat(source, target)
    return {"sha256": digest.hexdigest(), "bytes": size}


def _checksum(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


# -- PostgreSQL ---------------------------------------------------------------------
def _db() -> dict:
    return settings.DATABASES["default"]


def vendor() -> str:
    return "postgresql" if _db()["ENGINE"].endswith("postgresql") else "sqlite"


def _pg_env(db: dict) -> dict[str, str]:
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def _pg_args(db: dict) -> list[str]:
    args = ["-d", str(db["NAME"])]
    for flag, key in (("-h", "HOST"), ("-p", "PORT"), ("-U", "USER")):
        if db.get(key):
            args += [flag, str(db[key])]
    return args


def _conninfo(db: dict, name: str | None = None) -> dict:
    info = {"dbname": name or db["NAME"], "user": db.get("USER") or None, "password": db.get("PASSWORD") or None}
    info |= {"host": db.get("HOST") or None, "port": db.get("PORT") or None}
    return {k: v for k, v in info.items() if v}


def _server_major(db: dict) -> int:
    import psycopg

    with psycopg.connect(**_conninfo(db)) as conn:
        return conn.info.server_version // 10000


def pg_tool(name: str, server_major: int) -> tuple[str, str]:
    """The pg_dump/pg_restore to use and its version: Debian keeps one per major under
    /usr/lib/postgresql/<major>/bin; an older client than the server cannot read it."""
    versioned = Path(f"/usr/lib/postgresql/{server_major}/bin/{name}")
    binary = str(versioned) if versioned.exists() else shutil.which(name)
    if not binary:
        raise BackupError(f"{name} not found: install postgresql-client-{server_major} (apt-get install it).")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    match = re.search(r"(\d+)(?:\.\d+)*", version)
    if not match or int(match.group(1)) < server_major:
        raise BackupError(
            f"{binary} is '{version}' but the server is PostgreSQL {server_major}: "
            f"install postgresql-client-{server_major}."
        )
    return binary, version


def _run(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-2000:]}")


# -- backup -------------------------------------------------------------------------
def _migrations() -> dict[str, str]:
    from django.db.migrations.recorder import MigrationRecorder

    latest: dict[str, str] = {}
    for app, name in MigrationRecorder.Migration.objects.values_list("app", "name").order_by("app", "name"):
        latest[app] = name
    return latest


def _dump_database(target: Path) -> dict:
    db = _db()
    if vendor() == "postgresql":
        major = _server_major(db)
        binary, version = pg_tool("pg_dump", major)
        _run([binary, "--format=custom", "--file", str(target / PG_DUMP_FILE), *_pg_args(db)], _pg_env(db))
        return {"vendor": "postgresql", "file": PG_DUMP_FILE, "server_major": major, "tool": version}
    from django.db import connection

    connection.ensure_connection()
    source = sqlite3.connect(str(connection.settings_dict["NAME"]))
    copy = sqlite3.connect(str(target / SQLITE_FILE))
    try:
        with copy:
            source.backup(copy)
    finally:
        copy.close()
        source.close()
    return {"vendor": "sqlite", "file": SQLITE_FILE, "sqlite": sqlite3.sqlite_version}


def _copy_tree(source: Path, target: Path, listing: Callable[[], list[Path]]) -> dict[str, dict]:
    """Copies what `listing` finds, then looks again for files that appeared meanwhile
    (a segment sealed: renamed from its open name, which then vanishes from under us)."""
    copied: dict[str, dict] = {}
    for _ in range(COPY_PASSES):
        new = [rel for rel in listing() if rel.as_posix() not in copied]
        if not new:
            break
        for rel in new:
            try:
                copied[rel.as_posix()] = _copy(source / rel, target / rel)
            except FileNotFoundError:
                continue  # renamed or removed since the listing; the next pass sees its new name
    return copied


def _drop_open_segments_sealed_meanwhile(target: Path, archived: dict[str, dict]) -> None:
    """An open segment copied, then sealed before a later pass copied the sealed one:
    keep only the sealed file, which holds every record of the open one and more.
    (Restored side by side, the stream's recovery would seal the older copy over it.)"""
    for rel in [r for r in archived if r.endswith(OPEN_SEGMENT)]:
        if rel[: -len(OPEN_SEGMENT)] + SEALED_SEGMENT in archived:
            (target / rel).unlink()
            del archived[rel]


def backup(*, target: Path, say: Say = print) -> dict:
    target = target.resolve()
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: back up into a new directory.")
    target.mkdir(parents=True, exist_ok=True)
    data_dir = Path(settings.DATA_DIR).resolve()
    database = _dump_database(target)
    database |= {"migrations": _migrations(), **_checksum(target / database["file"])}
    say(f"Database ({database['vendor']}) saved to {database['file']} ({database['bytes']} bytes).")
    files = _copy_tree(data_dir, target / DATA, lambda: data_files(data_dir, exclude=(target,)))
    say(f"{len(files)} files of {data_dir} copied ({sum(f['bytes'] for f in files.values())} bytes).")
    archive = archive_dir()
    archived = _copy_tree(archive, target / ARCHIVE, lambda: archive_files(archive, exclude=(target,)))
    _drop_open_segments_sealed_meanwhile(target / ARCHIVE, archived)
    say(f"{len(archived)} files of the archive {archive} copied ({sum(f['bytes'] for f in archived.values())} bytes).")
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "versions": {"python": platform.python_version(), "django": django.get_version()},
        "data_dir": str(data_dir),
        "archive_dir": str(archive),
        "database": database,
        "files": files,
        "archive_files": archived,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    say(f"Backup complete: {target / MANIFEST}.")
    return manifest


# -- restore ------------------------------------------------------------------------
def read_manifest(source: Path) -> dict:
    path = source / MANIFEST
    if not path.exists():
        raise BackupError(f"{source} has no {MANIFEST}: not a backup, or an unfinished one.")
    manifest = json.loads(path.read_text())
    if manifest.get("format") not in READABLE_FORMATS:
        raise BackupError(f"Backup format {manifest.get('format')} is not {FORMAT}: restore it with its own version.")
    manifest.setdefault("archive_files", {})
    return manifest


def verify(source: Path, manifest: dict) -> int:
    """Every file against its checksum, before anything is touched."""
    database = manifest["database"]
    expected = {
        database["file"]: database,
        **{f"{DATA}/{rel}": meta for rel, meta in manifest["files"].items()},
        **{f"{ARCHIVE}/{rel}": meta for rel, meta in manifest["archive_files"].items()},
    }
    for rel, meta in expected.items():
        path = source / rel
        if not path.exists():
            raise BackupError(f"{rel} is missing from the backup.")
        if _checksum(path) != {"sha256": meta["sha256"], "bytes": meta["bytes"]}:
            raise BackupError(f"{rel} does not match its checksum in the manifest: the backup is damaged.")
    return len(expected)


def _pg_tables(db: dict) -> int | None:
    """How many tables the target database has; None when it does not exist."""
    import psycopg

    try:
        conn = psycopg.connect(**_conninfo(db))
    except psycopg.OperationalError as error:
        if "does not exist" in str(error):
            return None
        raise BackupError(f"Cannot connect to the target database: {error}") from error
    with conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
        return row[0]


def _sqlite_tables(path: Path) -> int:
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with sqlite3.connect(str(path)) as conn:
        return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]


def _target_files(data_dir: Path, source: Path) -> list[Path]:
    """The files a restore would replace: the data dir's and the archive's."""
    archive = archive_dir()
    return [data_dir / rel for rel in data_files(data_dir, exclude=(source,))] + [
        archive / rel for rel in archive_files(archive, exclude=(source,))
    ]


def _target_state(data_dir: Path, source: Path) -> tuple[int | None, int]:
    db = _db()
    tables = _pg_tables(db) if vendor() == "postgresql" else _sqlite_tables(Path(db["NAME"]))
    return tables, len(_target_files(data_dir, source))


def _restore_postgresql(source: Path, manifest: dict, *, tables: int | None, say: Say) -> None:
    import psycopg
    from psycopg import sql

    db = _db()
    if tables is None:
        with psycopg.connect(**_conninfo(db, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
        say(f"Created the database '{db['NAME']}'.")
    elif tables:
        with psycopg.connect(**_conninfo(db), autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        say(f"Emptied the database '{db['NAME']}' (--force): dropped its {tables} tables.")
    binary, version = pg_tool("pg_restore", _server_major(db))
    argv = [binary, "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction", *_pg_args(db)]
    _run([*argv, str(source / PG_DUMP_FILE)], _pg_env(db))
    say(f"Restored the PostgreSQL database '{db['NAME']}' from {PG_DUMP_FILE} ({version}).")


def _restore_sqlite(source: Path, say: Say) -> None:
    target = Path(_db()["NAME"])
    target.parent.mkdir(parents=True, exist_ok=True)
    backup_db = sqlite3.connect(str(source / SQLITE_FILE))
    live = sqlite3.connect(str(target))
    try:
        with live:
            backup_db.backup(live)  # replaces every page of the target
    finally:
        live.close()
        backup_db.close()
    say(f"Restored the SQLite database {target} from {SQLITE_FILE}.")


def _restore_tree(source: Path, files: dict[str, dict], target: Path, say: Say) -> None:
    for rel in files:
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, path)
    say(f"Restored {len(files)} files ({sum(m['bytes'] for m in files.values())} bytes) into {target}.")


def _restore_files(source: Path, manifest: dict, data_dir: Path, *, existing: int, say: Say) -> None:
    if existing:
        for path in _target_files(data_dir, source):
            path.unlink()
        say(f"Removed the {existing} files that were in {data_dir} and the archive (--force).")
    _restore_tree(source / DATA, manifest["files"], data_dir, say)
    _restore_tree(source / ARCHIVE, manifest["archive_files"], archive_dir(), say)


def restore(*, source: Path, force: bool = False, say: Say = print) -> dict:
    source = source.resolve()
    manifest = read_manifest(source)
    wanted = manifest["database"]["vendor"]
    if wanted != vendor():
        raise BackupError(
            f"The backup holds a {wanted} database but this platform is configured for {vendor()} "
            "(DATABASE_URL): restore it into the same kind of database."
        )
    say(f"Checked {verify(source, manifest)} files of the backup from {manifest['created_at']} against its manifest.")
    data_dir = Path(settings.DATA_DIR).resolve()
    tables, existing = _target_state(data_dir, source)
    if (tables or existing) and not force:
        raise BackupError(
            f"The target is not empty ({tables or 0} tables in the database, {existing} files in {data_dir} "
            f"and the archive {archive_dir()}): "
            "restore into a new database and data dir, or pass --force to replace what is there."
        )
    from django.db import connections

    connections.close_all()
    if wanted == "postgresql":
        _restore_postgresql(source, manifest, tables=tables, say=say)
    else:
        _restore_sqlite(source, say)
    _restore_files(source, manifest, data_dir, existing=existing, say=say)
    say("Restore complete. If this code is newer than the backup, run `python manage.py migrate` next.")
    return manifest
