"""The aggregate tables live on the hub's one metadata (`hub.db.Base`); this module keeps the
import path the aggregate code and its tests use."""

from __future__ import annotations

from hub.db import Base

__all__ = ["Base"]
