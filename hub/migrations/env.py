"""Alembic environment of the hub: every module in `hub.db.TABLE_MODULES` is imported so its
tables are on `hub.db.Base.metadata`, then `federation.database.run_env` migrates on the
connection `federation.database.migrate` passed in."""

from federation.database import run_env
from hub.db import Base, import_table_modules

import_table_modules()
run_env(Base.metadata)
