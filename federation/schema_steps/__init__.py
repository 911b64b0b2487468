"""Frozen schema steps the servers' Alembic revisions share (node, hub, helper).

A migration must do tomorrow exactly what it did when it was released, so it may import only
the standard library, `alembic`, `sqlalchemy` and the modules of this package; and these
modules import only the same three (tests/test_migrations_frozen.py checks both by parsing
every file). Application modules (table models, vocabularies, SQL the runtime also uses)
change with the code; a step here, once released, never does: a later schema change adds the
next step and a new revision in each server.

- `federation_tables`: the federation tables (`fed_inbox`, `fed_outbox`, `fed_roster`,
  `fed_alarm`), `upgrade_v1`, and `fed_outbox.carrier`, `upgrade_v2`.
- `alarm_ack`: `fed_alarm`'s reason and acknowledgement columns.
- `login_throttle`: the `login_throttle` table.
- `interstate_tables`: `fed_compact` and `fed_foreign_roster`.
- `interstate_names`: name columns widened for qualified names `<network>/<node_id>`.
"""
