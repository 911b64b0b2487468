"""Copying a live node database out and into an empty one, per engine.

- SQLite: SQLite's online backup API (`sqlite3.Connection.backup`, all pages in one step)
  copies the file under one read transaction: in WAL mode the server's writers carry on, and
  the copy is one consistent moment (every transaction in it whole, the audit chain and the
  rows it describes together). The copy goes to a private temporary file next to the
  database (a directory that already holds it in plain form), is streamed into the
  encrypted bundle and removed. Restore writes the file to a temporary name beside the
  target, checks it (`PRAGMA integrity_check`) and renames it into place.
- PostgreSQL: `pg_dump --format=custom` (one repeatable-read snapshot, so also one
  consistent moment) streams straight into the bundle; restore streams into `pg_restore
  --single-transaction --exit-on-error` (all or nothing). Neither writes plain data to disk.
  The binaries are looked for in `$PEERNET_PG_BIN` (only there when it is set), else the newest
  `/usr/lib/postgresql/<v>/bin` (where the server and the tests' throwaway server come from;
  pg_dump must be at least the server's version), then `PATH`; none found is
  `pg_dump_missing`. The password goes through `PGPASSWORD`, never the command line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from federation.db_url import parse_db_url
from node.ops.errors import OpsError

__all__ = [
    "pg_binary",
    "pg_dump_stream",
    "pg_restore_stream",
    "sqlite_path",
    "sqlite_snapshot",
    "sqlite_tables",
    "sqlite_write",
]

_READ = 1 << 20


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL."""
    u = parse_db_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    if not u.database or u.database == ":memory:":
        raise OpsError("backup_mismatch", "an in-memory SQLite database cannot be backed up")
    return Path(u.database)


def sqlite_snapshot(db: Path) -> Iterator[bytes]:
    """A consistent copy of the SQLite file `db` (online backup API), chunk by chunk."""
    if not db.exists():
        raise OpsError("dump_failed", f"the database file {db} does not exist")
    tmpdir = Path(tempfile.mkdtemp(prefix=".backup-", dir=db.parent))  # mode 0700
    copy = tmpdir / "node.sqlite"
    try:
        try:
            src = sqlite3.connect(db)
            try:
                src.execute("PRAGMA busy_timeout=10000")
                dst = sqlite3.connect(copy)
                try:
                    src.backup(dst)  # pages=-1: every page in one step, one read transaction
                    dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                finally:
                    dst.close()
            finally:
                src.close()
        except sqlite3.Error as exc:
            raise OpsError("dump_failed", f"SQLite backup failed: {exc}") from None
        with copy.open("rb") as f:
            while piece := f.read(_READ):
                yield piece
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def sqlite_tables(db: Path) -> list[str]:
    """The tables of an existing SQLite file (none when it does not exist), opened without
    creating anything."""
    if not db.exists() or db.stat().st_size == 0:
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise OpsError("db_not_empty", f"{db} exists and is not an empty SQLite "
                                       f"database ({exc})") from None
    return [str(r[0]) for r in rows]


def sqlite_write(db: Path, chunks: Iterable[bytes]) -> None:
    """Write a backed-up SQLite file as `db` (which holds no tables): a temporary file
    beside it, checked, then renamed into place."""
    db.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{db.name}.", suffix=".restore", dir=db.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in chunks:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        try:
            conn = sqlite3.connect(tmp)
            try:
                ok = conn.execute("PRAGMA integrity_check").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise OpsError("bad_backup", f"the database in the backup does not open: {exc}") \
                from None
        if not ok or ok[0] != "ok":
            raise OpsError("bad_backup", "the database in the backup fails its integrity check")
        for side in ("-wal", "-shm", "-journal"):  # an empty database's leftovers
            Path(f"{db}{side}").unlink(missing_ok=True)
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def _pg_dirs() -> list[Path]:
    env = os.environ.get("PEERNET_PG_BIN")
    if env:
        return [Path(env)]
    dirs: list[Path] = []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        dirs += [p / "bin" for p in versions]
    return dirs


def pg_binary(name: str) -> str:
    for d in _pg_dirs():
        if (d / name).is_file():
            return str(d / name)
    # PEERNET_PG_BIN is the operator's explicit choice: nothing else is tried.
    found = None if os.environ.get("PEERNET_PG_BIN") else shutil.which(name)
    if found is None:
        raise OpsError("pg_dump_missing", f"{name} was not found: install PostgreSQL's client "
                       "tools (the same major version as the server or newer), or set "
                       "PEERNET_PG_BIN to the directory holding pg_dump and pg_restore")
    return found


def _conn_args(url: str) -> tuple[list[str], dict[str, str]]:
    u = parse_db_url(url)
    env = dict(os.environ)
    args: list[str] = []
    host = u.query.get("host") or u.host
    if isinstance(host, tuple):
        host = host[0]
    if host:
        args += ["--host", str(host)]
    if u.port:
        args += ["--port", str(u.port)]
    if u.username:
        args += ["--username", u.username]
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    sslmode = u.query.get("sslmode")
    if isinstance(sslmode, str):
        env["PGSSLMODE"] = sslmode
    args += ["--dbname", u.database or "postgres", "--no-password"]
    return args, env


def _failure(what: str, err: Path) -> OpsError:
    text = err.read_text("utf-8", "replace").strip().splitlines()
    return OpsError("dump_failed", f"{what} failed: {text[-1] if text else 'no message'}")


def pg_dump_stream(url: str) -> Iterator[bytes]:
    """`pg_dump --format=custom` of the database at `url`, chunk by chunk."""
    args, env = _conn_args(url)
    binary = pg_binary("pg_dump")
    with tempfile.TemporaryDirectory(prefix="pn-dump-") as d:
        err = Path(d) / "stderr"
        with err.open("wb") as errf:
            proc = subprocess.Popen(  # noqa: S603 - a found binary, no shell
                [binary, "--format=custom", "--no-owner", "--no-privileges", *args],
                stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL, env=env)
            assert proc.stdout is not None
            try:
                while piece := proc.stdout.read(_READ):
                    yield piece
            finally:
                proc.stdout.close()
                if proc.wait() != 0:
                    raise _failure("pg_dump", err)


def pg_restore_stream(url: str, chunks: Iterable[bytes]) -> None:
    """Feed a custom-format dump to `pg_restore` into the (empty) database at `url`, in
    one transaction: on any error nothing stays."""
    args, env = _conn_args(url)
    binary = pg_binary("pg_restore")
    with tempfile.TemporaryDirectory(prefix="pn-restore-") as d:
        err = Path(d) / "stderr"
        with err.open("wb") as errf:
            proc = subprocess.Popen(  # noqa: S603 - a found binary, no shell
                [binary, "--no-owner", "--no-privileges", "--single-transaction",
                 "--exit-on-error", *args],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf, env=env)
            assert proc.stdin is not None
            try:
                for piece in chunks:
                    proc.stdin.write(piece)
            except BrokenPipeError:
                pass  # pg_restore stopped early; its status and message say why
            except BaseException:
                proc.kill()  # a damaged bundle: its one transaction is rolled back
                proc.wait()
                raise
            finally:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
            if proc.wait() != 0:
                raise _failure("pg_restore", err)
