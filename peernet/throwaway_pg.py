"""A throwaway PostgreSQL server for tests, benchmarks and local trials.

It runs `initdb` and `pg_ctl` from the machine's PostgreSQL into a temporary directory and
listens only on a Unix socket inside it, so concurrent runs never fight over a TCP port.
PostgreSQL refuses to run as root, so under root the data directory is handed to the
`postgres` system user and the server runs as that user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_SEARCH = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"]


class PostgresUnavailable(RuntimeError):
    pass


def _binary(name: str) -> str:
    for d in _SEARCH:
        p = Path(d) / name
        if p.exists():
            return str(p)
    found = shutil.which(name)
    if found is None:
        raise PostgresUnavailable(
            f"{name} not found: install PostgreSQL (apt-get install postgresql)"
        )
    return found


@dataclass
class ThrowawayPostgres:
    root: Path
    user: str = "peernet"

    @property
    def socket_dir(self) -> Path:
        return self.root / "s"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{dbname}?host={self.socket_dir}"

    def _run(self, args: list[str]) -> None:
        run_as = "postgres" if os.geteuid() == 0 else None
        res = subprocess.run(  # noqa: S603 - fixed binaries, no shell
            args, user=run_as, capture_output=True, text=True, check=False
        )
        if res.returncode != 0:
            raise PostgresUnavailable(f"{Path(args[0]).name} failed: {res.stderr.strip()[-500:]}")

    def start(self, *, durable: bool = False) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        self._run([
            _binary("initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
            "-E", "UTF8", "--no-sync", "--locale=C",
        ])
        opts = f"-k {self.socket_dir} -c listen_addresses='' -c max_connections=200"
        if not durable:
            # Tests need isolation, not crash safety.
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run([
            _binary("pg_ctl"), "-D", str(self.data_dir), "-o", opts,
            "-l", str(self.root / "log"), "-w", "-t", "60", "start",
        ])

    def stop(self) -> None:
        with contextlib.suppress(PostgresUnavailable):
            self._run(
                [_binary("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start_throwaway(*, durable: bool = False) -> ThrowawayPostgres:
    # Short path: Unix socket paths are limited to ~107 bytes.
    root = Path(tempfile.mkdtemp(prefix="pn-pg-", dir="/tmp"))
    # The postgres user must traverse it to reach the socket and data directories.
    os.chmod(root, 0o755)  # noqa: S103
    pg = ThrowawayPostgres(root)
    try:
        pg.start(durable=durable)
    except Exception:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return pg


@contextlib.contextmanager
def throwaway_postgres(*, durable: bool = False) -> Iterator[ThrowawayPostgres]:
    pg = start_throwaway(durable=durable)
    try:
        yield pg
    finally:
        pg.stop()


async def create_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server behind `admin_url`; return its plain URL."""
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(admin_url)
    conn = await asyncpg.connect(
        user=u.username, host=u.query.get("host") or u.host, port=u.port,
        password=u.password, database=u.database or "postgres",
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return u.set(database=name).render_as_string(hide_password=False)


def pg_dump_sql(url: str) -> str:
    """The database behind `url` (a plain postgresql:// URL) as a pg_dump SQL script: schema
    and rows (as INSERTs), no owners or privileges. Tests replay it (tests/migration_snapshot)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    args = [
        _binary("pg_dump"), "--no-owner", "--no-privileges", "--no-comments", "--inserts",
        "--no-publications", "--no-subscriptions", "--no-security-labels", "--no-tablespaces",
        "-U", u.username or "postgres", "-h", str(u.query.get("host") or u.host or ""),
        "-d", u.database or "postgres",
    ]
    if u.port:
        args += ["-p", str(u.port)]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    res = subprocess.run(  # noqa: S603 - fixed binary, no shell
        args, capture_output=True, text=True, check=False, env=env
    )
    if res.returncode != 0:
        raise PostgresUnavailable(f"pg_dump failed: {res.stderr.strip()[-500:]}")
    return res.stdout


async def drop_database(admin_url: str, name: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(admin_url)
    conn = await asyncpg.connect(
        user=u.username, host=u.query.get("host") or u.host, port=u.port,
        password=u.password, database=u.database or "postgres",
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
