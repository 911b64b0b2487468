"""Binary-to-text encodings of the wire format.

Binary values (keys, signatures, ciphertext, hashes) travel as unpadded base64url
(RFC 4648 section 5, no `=`). Decoding is strict so that every value has exactly one
encoding: padding, characters outside the alphabet, an impossible length (4n+1) and
non-zero trailing bits are all refused as `malformed`. Without that rule two different
strings would decode to the same bytes, and a signed document could be altered without
breaking its signature wherever a decoded value is compared instead of the string.

Decoding runs in pydantic-core's base64 decoder (Rust, several times faster than
`binascii` over a ciphertext) behind checks that leave it exactly the strict rules: it
accepts both alphabets and padding, so `=`, `+` and `/` are refused first, and `"` and `\\`
too, so that the text keeps its meaning inside the JSON string the decoder reads; it
refuses whitespace, any other character, a 4n+1 length and non-zero trailing bits itself.
An import-time self-check falls back to the `binascii` decoder (`_unb64u_binascii`) if a
pydantic-core version disagrees; tests compare the two on arbitrary text.

Decimals (privacy scale, budget spent) travel as strings in plain notation:
`format_decimal` produces them, `parse_decimal` reads them.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from pydantic_core import SchemaValidator, ValidationError, core_schema

from protocol.errors import Code, ProtocolError

__all__ = [
    "DECIMAL_PATTERN",
    "b64u",
    "format_decimal",
    "parse_decimal",
    "sha256_b64u",
    "unb64u",
]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {ch: i for i, ch in enumerate(_ALPHABET)}
_TO_URL = bytes.maketrans(b"+/", b"-_")
_PADDING = {0: b"", 2: b"==", 3: b"="}
_UNUSED_BITS = {2: 0b1111, 3: 0b11}  # 2 chars carry 8 of 12 bits, 3 chars 16 of 18

# Plain notation, no sign, no exponent, no leading zeros; trailing zeros are allowed.
DECIMAL_PATTERN = r"^(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?$"
_DECIMAL = re.compile(DECIMAL_PATTERN.removeprefix("^").removesuffix("$"))


def b64u(data: bytes) -> str:
    """Unpadded base64url of `data`."""
    # binascii directly: `base64.urlsafe_b64encode` adds two Python layers per call
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URL).decode("ascii")


def unb64u(s: str) -> bytes:
    """Strict inverse of `b64u`; anything but its exact output raises `malformed`."""
    if type(s) is not str or "=" in s or "+" in s or "/" in s or "\\" in s or '"' in s:
        raise ProtocolError(Code.MALFORMED, "not unpadded base64url")
    if _json_b64 is None:
        return _unb64u_binascii(s)
    try:
        return _json_b64(b'"' + s.encode("ascii") + b'"')
    except (ValidationError, UnicodeEncodeError) as exc:
        raise ProtocolError(Code.MALFORMED, "not unpadded base64url") from exc


def _unb64u_binascii(s: str) -> bytes:
    """`unb64u` after its character checks, with `binascii` (the reference decoder)."""
    rem = len(s) % 4
    if rem == 1:
        raise ProtocolError(Code.MALFORMED, "impossible base64url length")
    try:
        # strict_mode refuses any character outside the (translated) alphabet
        # two replaces (memchr-driven) are cheaper than a per-byte translate here
        standard = s.encode("ascii").replace(b"-", b"+").replace(b"_", b"/") + _PADDING[rem]
        data = binascii.a2b_base64(standard, strict_mode=True)
    except ValueError as exc:  # binascii.Error, UnicodeEncodeError
        raise ProtocolError(Code.MALFORMED, "not unpadded base64url") from exc
    # The unused low bits of the last character must be zero (one encoding per value).
    if rem and _INDEX[s[-1]] & _UNUSED_BITS[rem]:
        raise ProtocolError(Code.MALFORMED, "non-canonical base64url trailing bits")
    return data


def _pydantic_b64() -> Callable[[bytes], bytes] | None:
    """pydantic-core's JSON-mode base64 decoder, if it gives the strict verdicts."""
    try:
        decode: Callable[[bytes], bytes] = SchemaValidator(
            core_schema.bytes_schema(strict=True), core_schema.CoreConfig(val_json_bytes="base64")
        ).validate_json
        good = {b"": b"", b"AQ": b"\x01", b"-_8": b"\xfb\xff", b"QUJD": b"ABC", b"AAA": bytes(2)}
        for text, data in good.items():
            if decode(b'"' + text + b'"') != data:
                return None
        for text in (b"A", b"AB", b"AAB", b"AR", b"AA A", b"AA\x7f", b"AAAAA", b"AQ\n"):
            try:
                decode(b'"' + text + b'"')
            except ValidationError:
                continue
            return None
    except Exception:  # an older pydantic-core without `val_json_bytes`: use binascii
        return None
    return decode


_json_b64 = _pydantic_b64()


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
