"""Reading a list page's query string into its filter model (web layer of
`node.records.list_filters`): empty values dropped (a GET form's untouched fields), a
repeated parameter refused, a bad value refused with the stable code naming the parameter.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from node.core.errors import Code, NodeError
from node.records.list_filters import check_range
from node.web.plumbing import validation_error

__all__ = ["query_model"]

M = TypeVar("M", bound=BaseModel)


def query_model(request: web.Request, model: type[M]) -> M:
    """The query string as `model`; empty values dropped, a repeated parameter refused."""
    data: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) != 1:
            raise NodeError(Code.INVALID_INPUT, f"{key}: give it once", key)
        if values[0] != "":
            data[key] = values[0]
    try:
        out = model.model_validate(data, strict=False)
    except ValidationError as exc:
        raise validation_error(exc) from None
    check_range(getattr(out, "since", None), getattr(out, "until", None))
    return out
