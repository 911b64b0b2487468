"""Alembic environment of the helper: every module in `helper.db.TABLE_MODULES` is imported
so its tables are on `helper.db.Base.metadata`, then `federation.database.run_env` migrates."""

from federation.database import run_env
from helper.db import Base, import_table_modules

import_table_modules()
run_env(Base.metadata)
