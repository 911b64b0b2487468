"""`OpsError`: the one exception of the operations room (backup, restore, export, detach).

A `federation.cli_errors.CliError`, so the node CLI prints it as one line
`Error: <sentence> [<code>]` and exits 1 with no traceback. Stable codes:

| code | when |
|---|---|
| `wrong_passphrase` | the backup passphrase does not open the bundle |
| `bad_backup` | the file is not a peernet backup, or it was cut or altered |
| `backup_mismatch` | the bundle is for another node id or another database engine |
| `schema_newer` | the backup was made by a newer peernet (unknown migrations) |
| `db_not_empty` | restore into a database that holds tables |
| `keys_differ` | restore next to key files that hold other keys than the backup's |
| `pg_dump_missing` | PostgreSQL's `pg_dump` / `pg_restore` cannot be found |
| `dump_failed` | pg_dump, pg_restore or the SQLite backup failed |
| `out_exists` | backup output file exists (use `--force`) |
| `dir_not_empty` | export into a directory that holds files (use `--force`) |
| `already_detached` | detach on a node that already left the network |
"""

from __future__ import annotations

from federation.cli_errors import CliError

__all__ = ["OpsError"]


class OpsError(CliError):
    """An expected failure of an operations command, with a stable code (table above)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)
