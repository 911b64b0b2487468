"""Operating a node for real (DESIGN section 12): backup and restore, export and leave.

- `backup` / `restore`: an encrypted bundle (`bundle`) of the database at one consistent
  moment and the key files (`backup`, `dump`), restored into an empty database only
  (`restore`), with the restore recorded as a documented point that `audit verify`
  understands (`restore_point`);
- `export`: every record of the agency as CSV and JSON with a readable schema
  (`export`, `export_schema`);
- `detach`: a signed leave request for the board and a node that keeps working alone
  (`detach`, and `feature` in the running app);
- `cli`: the `peernet node` commands; `errors`: the room's one exception and its codes.
"""

__all__: list[str] = []
