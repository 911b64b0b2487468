"""Wire building blocks shared by every message model: the strict base model, the scalar
field types (times, counts, hashes, codes, short texts) and the detached `Signature`.

All models are pydantic v2, strict, frozen and `extra="forbid"`: field sets are exact
(DESIGN section 4: a new field means a new `v`). They validate *plain JSON values* as
produced by `protocol.canonical.parse_json`; they never feed a signature check (signatures
are verified over received bytes before any model is built, see `protocol.envelope`).

Conventions:

- times are integer milliseconds since the Unix epoch (`*_ts`), dates are `YYYY-MM-DD`,
  months `YYYY-MM`;
- decimals are strings in plain notation (`protocol.encoding.format_decimal`);
- enumerations are `StrEnum`s (`protocol.vocabulary`); on the wire they are their string
  values (only `str` input is accepted, matched exactly, see `WireEnum`);
- counts are bounded non-negative integers. Nothing in a body names or describes a person:
  where to report is a short upper-case code (`LocationCode`, e.g. `STA-7`), and the only
  note (`ContactNote`) is at most 140 characters of letters, digits, spaces and
  `.,:;/#()+-` (no `@`, quotes or line breaks);
- Python attribute `from_` is the wire field `from` (a keyword in Python). Models accept
  only the wire names; `model_dump()` emits wire names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from protocol.canonical import MAX_SAFE_INT
from protocol.encoding import DECIMAL_PATTERN
from protocol.ids import KeyId

__all__ = [
    "B64uText",
    "CONTACT_NOTE_PATTERN",
    "CellKey",
    "ContactNote",
    "Count",
    "DateStr",
    "DecimalStr",
    "IncidentRef",
    "LOCATION_CODE_PATTERN",
    "LocationCode",
    "MonthStr",
    "PeerCount",
    "Phone",
    "RosterVersion",
    "SHA256_PATTERN",
    "SIGNATURE_PATTERN",
    "SafeInt",
    "SchemaName",
    "Sha256",
    "Signature",
    "SignatureValue",
    "Text200",
    "Text280",
    "Text64",
    "Ts",
    "Version1",
    "VersionStr",
    "WireEnum",
    "WireModel",
    "unique_items",
    "wire_json",
]

# 32 bytes -> 43 chars whose last one carries 4 bits + 2 zero bits.
SHA256_PATTERN = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"
# 64 bytes -> 86 chars whose last one carries 2 bits + 4 zero bits.
SIGNATURE_PATTERN = r"^[A-Za-z0-9_-]{85}[AQgw]$"


class WireModel(BaseModel):
    """Base of every wire model: strict, frozen, exact field set, wire names only."""

    model_config = ConfigDict(
        strict=True,
        frozen=True,
        extra="forbid",
        validate_by_name=False,
        validate_by_alias=True,
        serialize_by_alias=True,
        hide_input_in_errors=True,  # error text may reach logs; never echo sealed content
    )


def wire_json(model: BaseModel) -> dict[str, Any]:
    """Plain JSON values of a model (wire names), ready for `canonical_bytes`."""
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped

class WireEnum:
    """Enum field as a wire string: exactly `str` input (strict), matched exactly against
    the values (lax enum: a value, not an instance, is what parsed JSON holds). Both steps
    run in pydantic-core, with no Python call on the hot path."""

    def __init__(self, cls: type[StrEnum]) -> None:
        self._cls = cls
        self._schema = core_schema.chain_schema(
            [
                core_schema.str_schema(strict=True),
                core_schema.enum_schema(cls, list(cls), sub_type="str", strict=False),
            ]
        )

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return self._schema

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": [member.value for member in self._cls]}

Version1 = Annotated[int, Field(ge=1, le=1)]
Ts = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
SafeInt = Annotated[int, Field(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT)]
Count = Annotated[int, Field(ge=0, le=100_000)]
PeerCount = Annotated[int, Field(ge=1, le=1_000)]
RosterVersion = Annotated[int, Field(ge=1, le=MAX_SAFE_INT)]
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
SignatureValue = Annotated[str, StringConstraints(pattern=SIGNATURE_PATTERN)]
B64uText = Annotated[str, StringConstraints(min_length=2, pattern=r"^[A-Za-z0-9_-]+$")]
DecimalStr = Annotated[str, StringConstraints(pattern=DECIMAL_PATTERN)]

_NO_CONTROL = r"^[^\x00-\x1F\x7F]+$"
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_NO_CONTROL)]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_CONTROL)]
Text280 = Annotated[str, StringConstraints(min_length=1, max_length=280, pattern=_NO_CONTROL)]
IncidentRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$")]
# A station, staging area or post as a code (no street addresses, no names).
LOCATION_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{1,15}$"
LocationCode = Annotated[str, StringConstraints(pattern=LOCATION_CODE_PATTERN)]
# Callback logistics only; no '@', quotes or line breaks leave little room for narrative.
CONTACT_NOTE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 .,:;/#()+-]{0,139}$"
ContactNote = Annotated[str, StringConstraints(pattern=CONTACT_NOTE_PATTERN)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ().x-]{2,31}$")]
DateStr = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
MonthStr = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
SchemaName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]{0,63}$")]
VersionStr = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$")]
CellKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:|=/-]{1,128}$")]


def unique_items(items: list[Any]) -> list[Any]:
    """Field validator for list fields whose items must be distinct."""
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


class Signature(WireModel):
    """`{"key_id": "ed25519:<v>", "value": "<b64u of 64 bytes>"}`."""

    key_id: KeyId
    value: SignatureValue
