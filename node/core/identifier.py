"""The unit of privacy, made strong: what a supporter types becomes one canonical key per person.

The privacy unit is one supported person per node (`recipient_ref`, a keyed HMAC of what
the supporter typed; `node.core.pseudonym`). The per-person bounds of a release only hold
if one person is one ref: `"E-00123"`, `"e 00123"` and `"E00123"` typed by three
supporters must give the same ref, or truncation sees three people and the person's
contribution is three times the bound. So the typed value is put in a canonical form under
the agency's configured format *before* the HMAC, and values that name nobody (placeholders
typed when the person would not say, "unknown", "n/a", "000000", ...) are refused: they
would pool many people into one unit, or make one person look like many.

Canonical form (`unit_key`), in order:

1. Unicode NFKC, case folded;
2. separators removed: whitespace, every dash (Unicode category Pd), `.`, `/`, `\\`;
3. placeholders refused (`placeholder_identifier`): empty; a word from `PLACEHOLDERS`
   ("unknown", "na" from "n/a", "none", "test", ...); one character repeated ("000000",
   "1111", "xxxx", three or more); zeros only ("0"); a run of at least five consecutive
   digits from 0 or 1 up, the same backwards, or from 9 down, leading zeros aside
   ("12345", "0012345", "654321", "98765");
4. the agency's format (`identifier_format`, a node setting):
   - `alphanumeric` (the default): letters and digits only; leading zeros kept (an
     opaque code: "007" and "7" may be two people);
   - `employee_number`: digits only; leading zeros are *not* significant ("00123" and
     "123" are one person): employee numbers are usually fixed-width and people drop the
     zeros; an agency whose numbers differ only in leading zeros must use `alphanumeric`.
   Anything else left (e.g. `#`, `_`, letters under `employee_number`) is refused with
   `identifier_format` and a plain sentence: a guess at what was meant could join two
   people.

Nothing here stores, logs or echoes the typed value; refusal messages name the rule, never
the value.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

from node.core.errors import Code, NodeError

__all__ = ["DEFAULT_FORMAT", "PLACEHOLDERS", "IdentifierFormat", "unit_key"]


class IdentifierFormat(StrEnum):
    ALPHANUMERIC = "alphanumeric"
    EMPLOYEE_NUMBER = "employee_number"


DEFAULT_FORMAT = IdentifierFormat.ALPHANUMERIC

PLACEHOLDERS = frozenset({
    "unknown", "unk", "na", "none", "null", "nil", "test", "testing", "tbd", "tba",
    "anon", "anonymous", "noname", "notknown", "notgiven", "declined", "refused",
    "nobody", "someone", "person", "employee", "staff", "abc", "abcdef", "qwerty",
    "asdf", "xyz", "sample", "example", "dummy", "blank", "missing", "other", "noid",
})

_SEPARATORS = frozenset(" ./\\")
_UP = "01234567890"
_DOWN = "9876543210"
_MIN_RUN = 5
_FIELD = "recipient"


def _stripped(ch: str) -> bool:
    return ch in _SEPARATORS or ch.isspace() or unicodedata.category(ch) == "Pd"


# The ASCII characters `_stripped` removes, for one C-level `translate` of ASCII text.
_ASCII_STRIP = str.maketrans({c: None for c in map(chr, range(128)) if _stripped(c)})


def _strip_separators(text: str) -> str:
    if text.isascii():  # the usual case, without a walk per character
        return text if text.isalnum() else text.translate(_ASCII_STRIP)
    return "".join(ch for ch in text if not _stripped(ch))


def _placeholder(key: str) -> bool:
    if not key or key in PLACEHOLDERS:
        return True
    if len(key) >= 3 and len(set(key)) == 1:
        return True
    if key.isdigit():
        core = key.lstrip("0")
        return not core or _run(key) or _run(core)
    return False


def _run(key: str) -> bool:
    n = len(key)
    ups = (_UP[:n], _UP[1:n + 1])
    return n >= _MIN_RUN and key in (*ups, *(u[::-1] for u in ups), _DOWN[:n])


def _refuse_placeholder(key: str) -> None:
    if _placeholder(key):
        raise NodeError(
            Code.PLACEHOLDER_IDENTIFIER,
            "That identifier is a placeholder, not a person: enter the person's own "
            "number or code.",
            _FIELD,
        )


def unit_key(typed: str, fmt: IdentifierFormat | str = DEFAULT_FORMAT) -> str:
    """The canonical key of a typed identifier under `fmt` (module docstring), or
    `NodeError(placeholder_identifier | identifier_format, field="recipient")`."""
    fmt = IdentifierFormat(fmt)
    key = _strip_separators(unicodedata.normalize("NFKC", typed).casefold())
    _refuse_placeholder(key)
    if fmt is IdentifierFormat.EMPLOYEE_NUMBER:
        if not (key.isascii() and key.isdigit()):
            raise NodeError(
                Code.IDENTIFIER_FORMAT,
                "Enter the employee number as digits only (spaces, dashes, dots and "
                "slashes are ignored).",
                _FIELD,
            )
        key = key.lstrip("0")
        _refuse_placeholder(key)  # "0012345" is "12345"
        return key
    if not key.isalnum():
        raise NodeError(
            Code.IDENTIFIER_FORMAT,
            "Use letters and digits only (spaces, dashes, dots and slashes are ignored).",
            _FIELD,
        )
    return key
