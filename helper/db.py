"""The helper's tables and database handle.

Tables (revision `0001_helper_core`): the shares it holds (`helper.store`) and the answers it
gave per (month, group); the federation tables come in the `federation` branch, as on the
hub. New tables: define them on `helper.db.Base` in their module, add the module to
`TABLE_MODULES`, and add a migration branch off `0001_helper_core`.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from federation.database import NAMING, Database

__all__ = ["TABLE_MODULES", "Base", "Database", "import_table_modules"]

TABLE_MODULES: list[str] = ["helper.store"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def import_table_modules() -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)
