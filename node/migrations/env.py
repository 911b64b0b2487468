"""Alembic environment of the node: every module in `node.core.db.TABLE_MODULES` is imported so
its tables are on `node.core.db.Base.metadata`, then `federation.database.run_env` migrates on the
connection `federation.database.migrate` passed in."""

from federation.database import run_env
from node.core.db import Base, import_table_modules

import_table_modules()
run_env(Base.metadata)
