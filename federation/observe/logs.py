"""Log set-up for a server process: plain lines or one JSON object per line
(python-json-logger), on stderr.

What is logged is decided where the line is written: delivery failures, refusals and
unreachable peers name message ids, node ids, message types and stable codes, never record
content, pseudonyms, tokens or keys (tests/observe greps a whole demo run's logs for them).
Request lines are not logged at all (their paths carry record ids)."""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

__all__ = ["configure_logging"]

_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(fmt: Literal["text", "json"] = "text", level: str = "INFO") -> None:
    """Replace the root logger's handlers with one stderr handler in `fmt`."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(
            _JSON_FIELDS, rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        ))
    else:
        handler.setFormatter(logging.Formatter(_TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's access log would print request paths (record ids): never on.
    logging.getLogger("aiohttp.access").setLevel(logging.CRITICAL)
    # Alembic says which database dialect it found at every start (INFO): library chatter,
    # and a failed start must stay one line (tests/demo/test_cli_errors.py).
    logging.getLogger("alembic").setLevel(logging.WARNING)
