"""Binary-to-text encodings of the wire format.

Binary values (keys, signatures, ciphertext, hashes) travel as unpadded base64url
(RFC 4648 section 5, no `=`). Decoding is strict so that every value has exactly one
encoding: padding, characters outside the alphabet, an impossible length (4n+1) and
non-zero trailing bits are all refused as `malformed`. Without that rule two different
strings would decode to the same bytes, and a signed document could be altered without
breaking its signature wherever a decoded value is compared instead of the string.

Decimals (privacy scale, budget spent) travel as strings in plain notation:
`format_decimal` produces them, `parse_decimal` reads them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from decimal import Decimal, InvalidOperation

from protocol.errors import Code, ProtocolError

__all__ = [
    "DECIMAL_PATTERN",
    "b64u",
    "format_decimal",
    "parse_decimal",
    "sha256_b64u",
    "unb64u",
]

_B64U = re.compile(r"[A-Za-z0-9_-]*")

# Plain notation, no sign, no exponent, no leading zeros; trailing zeros are allowed.
DECIMAL_PATTERN = r"^(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?$"
_DECIMAL = re.compile(DECIMAL_PATTERN.removeprefix("^").removesuffix("$"))


def b64u(data: bytes) -> str:
    """Unpadded base64url of `data`."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(s: str) -> bytes:
    """Strict inverse of `b64u`; anything but its exact output raises `malformed`."""
    if not isinstance(s, str) or _B64U.fullmatch(s) is None:
        raise ProtocolError(Code.MALFORMED, "not unpadded base64url")
    rem = len(s) % 4
    if rem == 1:
        raise ProtocolError(Code.MALFORMED, "impossible base64url length")
    try:
        data = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(Code.MALFORMED, "not unpadded base64url") from exc
    # Unused low bits of the last character must be zero (one encoding per value).
    if rem and b64u(data) != s:
        raise ProtocolError(Code.MALFORMED, "non-canonical base64url trailing bits")
    return data


def sha256_b64u(data: bytes) -> str:
    """SHA-256 of `data` as unpadded base64url (43 characters)."""
    return b64u(hashlib.sha256(data).digest())


def format_decimal(value: Decimal | int | float | str) -> str:
    """Non-negative decimal in plain notation (`1e-05` -> `0.00001`), for wire fields.

    Floats go through `repr` so the string is the shortest one that round-trips.
    """
    try:
        if isinstance(value, bool):
            raise TypeError("bool is not a decimal")
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ProtocolError(Code.MALFORMED, "not a decimal") from exc
    if not dec.is_finite() or dec < 0:
        raise ProtocolError(Code.MALFORMED, "decimal must be finite and non-negative")
    text = format(dec, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("", "-0"):
        text = "0"
    if _DECIMAL.fullmatch(text) is None:
        raise ProtocolError(Code.MALFORMED, "decimal out of range")
    return text


def parse_decimal(s: str) -> Decimal:
    """Read a wire decimal string; `malformed` unless it matches `DECIMAL_PATTERN`."""
    if not isinstance(s, str) or _DECIMAL.fullmatch(s) is None:
        raise ProtocolError(Code.MALFORMED, "not a plain decimal string")
    return Decimal(s)
