"""Canonical JSON bytes, and the strict JSON parser that feeds them.

The canonical form (DESIGN section 4) is what every signature covers:

- values are only objects, arrays, strings, integers, `true`, `false`, `null`;
- integers lie within +/-(2^53 - 1) (exact in every JSON implementation); no floats, no
  exponents, no NaN/Infinity: decimals travel as strings, times as integer milliseconds;
- object keys are ASCII strings, sorted by code point (= bytewise for ASCII), no duplicates;
- no whitespace: separators are `,` and `:`;
- strings are UTF-8 and escaped as `json.dumps(..., ensure_ascii=False)` does: `\\"`, `\\\\`,
  `\\b \\f \\n \\r \\t`, other code points below U+0020 as `\\u00xx` (lower-case hex),
  everything else (including U+007F and U+2028) raw. Lone surrogates are refused.

This is exactly the RFC 8785 (JCS) output for that value subset, so other languages can use
a JCS library plus the extra refusals above.

`parse_json` is strict: invalid UTF-8 (or a BOM), duplicate keys, floats, exponents,
NaN/Infinity, integers out of range, non-ASCII keys, lone surrogates and trailing garbage are
`malformed`. It accepts insignificant whitespace; `parse_canonical` additionally demands that
the input already be in canonical form (`not_canonical` otherwise).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, NoReturn

from protocol.errors import Code, ProtocolError

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INT",
    "canonical_bytes",
    "canonical_bytes_of_parsed",
    "canonical_object_or_none",
    "parse_canonical",
    "parse_canonical_relaxed",
    "parse_json",
]

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 32  # nesting deeper than any protocol document needs

_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    sort_keys=True,
    separators=(",", ":"),
    allow_nan=False,
    check_circular=False,
)
# A `\uD800`-`\uDFFF` escape may yield a lone surrogate; only then walk the parsed value.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _malformed(detail: str) -> NoReturn:
    raise ProtocolError(Code.MALFORMED, detail)


def _check(value: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        _malformed("nesting too deep")
    # Exact-type fast path for what JSON and audit details hold (an `X | Y` in isinstance
    # builds a union object per call: about half of a small document's walk); subclasses
    # (str enums, ...) fall through to the general checks below, which decide as before.
    kind = type(value)
    if kind is str or kind is bool:
        return
    if kind is int:
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:  # type: ignore[operator]
            return
        _malformed("integer out of range")
    if kind is dict:
        flat = depth < MAX_DEPTH  # a member one level down is still within the depth
        for key, item in value.items():  # type: ignore[attr-defined]
            if not isinstance(key, str) or not key.isascii():
                _malformed("object keys must be ASCII strings")
            # Flat members decided here: one call per member was most of a flat object's
            # walk (an audit entry is ten of them, on every write).
            t = type(item)
            if flat and (t is str or t is bool or item is None or (
                    t is int and -MAX_SAFE_INT <= item <= MAX_SAFE_INT)):
                continue
            _check(item, depth + 1)
        return
    if kind is list:
        for item in value:  # type: ignore[attr-defined]
            _check(item, depth + 1)
        return
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return
        _malformed("integer out of range")
    if isinstance(value, list | tuple):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                _malformed("object keys must be ASCII strings")
            _check(item, depth + 1)
        return
    _malformed(f"not a canonical JSON type: {type(value).__name__}")


def _no_default(value: object) -> NoReturn:
    raise TypeError(f"not JSON: {type(value).__name__}")


# The C encoder behind `json.dumps`, called directly: skips a Python layer on the hot path.
_C_ENCODE = (
    None
    if c_make_encoder is None
    else c_make_encoder(None, _no_default, encode_basestring, None, ":", ",", True, False, False)
)


def canonical_bytes_of_parsed(value: Any) -> bytes:
    """Canonical bytes of a value returned by `parse_json` (skips the type walk)."""
    try:
        if _C_ENCODE is not None and isinstance(value, dict | list):
            return "".join(_C_ENCODE(value, 0)).encode("utf-8")
        return _ENCODER.encode(value).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError, RecursionError) as exc:
        raise ProtocolError(Code.MALFORMED, "value has no canonical form") from exc


def canonical_bytes(value: object) -> bytes:
    """Canonical bytes of a plain JSON value; anything outside the canonical subset is
    `malformed` (floats, big integers, non-ASCII keys, bytes, lone surrogates, ...)."""
    _check(value, 0)
    return canonical_bytes_of_parsed(value)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        _malformed("duplicate object key")
    if not "".join(obj).isascii():
        _malformed("non-ASCII object key")
    return obj


def _int(text: str) -> int:
    # The scanner already matched -?(0|[1-9][0-9]*); bound the length before int().
    if len(text) > 17:
        _malformed("integer out of range")
    value = int(text)
    if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        _malformed("integer out of range")
    return value


def _float(_text: str) -> NoReturn:
    _malformed("floats and exponents are not allowed")


def _constant(_text: str) -> NoReturn:
    _malformed("NaN and Infinity are not allowed")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_int=_int,
    parse_float=_float,
    parse_constant=_constant,
    strict=True,
)


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(item) for item in value.values())
    return False


def _depth_ok(value: object, depth: int) -> bool:
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, list):
        return all(_depth_ok(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(_depth_ok(item, depth + 1) for item in value.values())
    return True


def parse_json(data: bytes) -> Any:
    """Strictly parse JSON bytes into plain values (dict, list, str, int, bool, None)."""
    if not isinstance(data, bytes | bytearray):
        _malformed("expected bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(Code.MALFORMED, "invalid UTF-8") from exc
    try:
        value = _DECODER.decode(text)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ProtocolError(Code.MALFORMED, "invalid JSON") from exc
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        _malformed("lone surrogate in string")
    # Brackets are cheap to count; only walk when the text could nest too deeply.
    if text.count("[") + text.count("{") > MAX_DEPTH and not _depth_ok(value, 0):
        _malformed("nesting too deep")
    return value


_PLAIN_DECODER = json.JSONDecoder(parse_float=_float, parse_constant=_constant, strict=True)
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
# Every integer beyond +/-(2^53 - 1) has 16 or more digits, after one of `:[,-` or first.
_LONG_INTS = tuple(lead + b"0" * 16 for lead in (b":", b"[", b",", b"-"))


def parse_canonical(data: bytes) -> Any:
    """`parse_json`, then require `data` to be exactly the canonical bytes of its value
    (`not_canonical` otherwise; `malformed` for what `parse_json` refuses).

    Fast path for the common case, same verdicts: decode without the per-object and
    per-integer hooks and compare the re-encoding with the input. Equal bytes rule out
    whitespace, key disorder and duplicate keys (a duplicate is dropped by the decode, so
    the bytes would differ); floats and NaN still hit their hooks; the remaining strict
    rules (integer range, ASCII keys, depth) are left to `parse_json` when a cheap scan
    says they could be broken. On a mismatch `parse_json` runs to name a malformed input
    first."""
    if isinstance(data, bytes):
        try:
            value = _PLAIN_DECODER.decode(data.decode("utf-8"))
        except ProtocolError:
            raise
        except (ValueError, RecursionError):  # includes UnicodeDecodeError
            value = _MISMATCH
        if value is not _MISMATCH and canonical_bytes_of_parsed(value) == data:
            digits = data.translate(_DIGITS_TO_ZERO)
            if (
                data.isascii()
                and _LONG_INTS[0] not in digits
                and _LONG_INTS[1] not in digits
                and _LONG_INTS[2] not in digits
                and _LONG_INTS[3] not in digits
                and not digits.startswith(_LONG_INTS[0][1:])
                and data.count(b"[") + data.count(b"{") <= MAX_DEPTH
            ):
                return value
            return parse_json(data)  # the same value, unless a strict rule refuses it
    value = parse_json(data)
    if canonical_bytes_of_parsed(value) != data:
        raise ProtocolError(Code.NOT_CANONICAL, "bytes are not in canonical form")
    return value


_MISMATCH = object()


def parse_canonical_relaxed(data: bytes) -> Any:
    """`parse_canonical` minus three rules, for bytes whose every field a schema checks next
    (the inner message): integers beyond +/-(2^53 - 1), non-ASCII keys and deep nesting
    pass here and are refused by that check instead. Invalid UTF-8, floats, exponents,
    NaN, duplicate keys, lone surrogates and non-canonical bytes are still refused, with
    the codes `parse_canonical` gives."""
    if isinstance(data, bytes):
        try:
            value = _PLAIN_DECODER.decode(data.decode("utf-8"))
        except ProtocolError:
            raise
        except (ValueError, RecursionError):
            value = _MISMATCH
        if value is not _MISMATCH and canonical_bytes_of_parsed(value) == data:
            return value
    return parse_canonical(data)


# The C scanner: one value from an index, without the decoder's wrapper layers.
_SCAN: Callable[[str, int], tuple[Any, int]] = _PLAIN_DECODER.scan_once  # type: ignore[attr-defined]


def canonical_object_or_none(text: str) -> dict[str, Any] | None:
    """The object `text` encodes when `text` is exactly the canonical encoding of a JSON
    object under `parse_canonical_relaxed`'s rules; None when it is not, or when that
    cannot be shown cheaply (the caller then takes the general path, which decides).

    For a part of a document already decoded to text (the inner message's body): one C
    scan and one C re-encoding compared as text. Equal text rules out whitespace, key
    disorder, duplicate keys (the scan keeps one), escapes other than the canonical ones
    and lone surrogates (the encoder writes them raw; valid UTF-8 text has none); floats
    and NaN never reach the comparison (their hooks raise, and the caller treats that as
    None too)."""
    try:
        value, end = _SCAN(text, 0)
    except (ValueError, StopIteration, RecursionError, ProtocolError):
        return None
    if end != len(text) or type(value) is not dict or _C_ENCODE is None:
        return None
    try:
        if "".join(_C_ENCODE(value, 0)) != text:
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    return value
