"""Field errors as sentences a supporter understands, for every form and API of node and hub.

Pydantic's own messages are written for developers ("dictionary should have at least 1
item after validation", "String should match pattern '^[A-Za-z0-9]...$'"); shown on a phone
right after a bad call they read as a crash. This is the one place that turns a pydantic
error into a sentence: a table of field labels, a table of per-field hints for values with
a shape (an incident number, a month, a location code: said in words with an example, never
as a regular expression), and a table from pydantic error types to sentences. Node and hub
both call `field_message`; the stable error code stays whatever the caller chose.

A model validator's `ValueError` carries a sentence we wrote ourselves, so it is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["FIELD_HINTS", "FIELD_LABELS", "field_label", "field_message", "sentence"]

# What each field is called on the forms (last part of the location, or the dotted path).
FIELD_LABELS: Mapping[str, str] = {
    "incident_ref": "Incident number", "incident_type": "Incident type",
    "event_ts": "When it happened", "event_at": "When it happened",
    "affected": "Affected personnel", "interventions": "Support wanted",
    "window_start_ts": "From", "window_end_ts": "Until", "window_start": "From",
    "window_end": "Until", "peers_needed": "Peers needed",
    "reporting_location": "Report to", "priority": "Priority",
    "contact.role": "Contact role", "contact.phone": "Contact phone",
    "contact_role": "Contact role", "contact_phone": "Contact phone",
    "approver": "Approved by", "expires_ts": "Request lapses after",
    "expires_in": "Request lapses after", "targets": "Agencies to ask",
    "disciplines": "Peers offered", "eta_minutes": "ETA", "conditions": "Conditions",
    "offer_msg_id": "Offer", "reason": "Reason", "responder": "Agency", "stage": "Stage",
    "to": "Agency", "due": "Due date", "discipline": "Discipline",
    "contact_note": "Contact note", "occurred_at": "When", "duration_bucket": "How long",
    "activation_type": "How it started", "intervention": "Type of support",
    "recipient_discipline": "Their discipline", "recipient_category": "Who they are",
    "recipient": "The person supported", "topics": "Topics", "referral": "Referral",
    "follow_up_in": "Follow-up", "username": "Username", "password": "Password",
    "role": "Role", "team": "Team", "owner": "New owner", "outcome": "Outcome",
    "month_from": "From month", "month_to": "To month", "month": "Month",
    "region": "Region", "node": "Agency", "active": "Active",
}

# Values with a shape, said in words with an example (shown when the shape is wrong).
FIELD_HINTS: Mapping[str, str] = {
    "incident_ref": "Enter the incident number as letters and digits (you may use . _ : / "
                    "# -), starting with a letter or digit, at most 64 characters, for "
                    "example 2026-000123.",
    "reporting_location": "Enter the reporting location as a short code of 2 to 16 capital "
                          "letters, digits or dashes, for example STA-7 or EOC. No names "
                          "or street addresses.",
    "contact_note": "Keep the contact note to callback details: at most 140 characters of "
                    "letters, digits, spaces and . , : ; / # ( ) + -, starting with a "
                    "letter or digit. No names, e-mail addresses or story.",
    "contact.phone": "Enter a phone number of digits, spaces and ( ) . - x, for example "
                     "+1 555 0100.",
    "phone": "Enter a phone number of digits, spaces and ( ) . - x, for example +1 555 0100.",
    "month_from": "Choose a month, for example 2026-03.",
    "month_to": "Choose a month, for example 2026-03.",
    "month": "Choose a month, for example 2026-03.",
    "due": "Choose a date, for example 2026-06-01.",
    "username": "Use 3 to 32 lower-case letters, digits, dots, dashes or underscores.",
    "team": "Use letters, digits, dashes or underscores.",
    "discipline": "Choose a discipline from the list.",
    "recipient": "Enter what identifies the person to you (for example an employee number), "
                 "on one line, at most 64 characters.",
}

_Sentence = Callable[[str, Mapping[str, Any]], str]


def _at_least_one(lbl: str, ctx: Mapping[str, Any]) -> str:
    n = ctx.get("min_length", 1)
    if n == 1:
        return f"{lbl}: choose or fill in at least one."
    return f"{lbl}: choose or fill in at least {n}."


def _too_long(lbl: str, ctx: Mapping[str, Any]) -> str:
    return f"{lbl} is too long: at most {ctx.get('max_length', '?')} characters."


def _too_many(lbl: str, ctx: Mapping[str, Any]) -> str:
    return f"{lbl}: at most {ctx.get('max_length', '?')} may be chosen."


_BY_TYPE: Mapping[str, _Sentence] = {
    "missing": lambda lbl, ctx: f"{lbl} is required.",
    "extra_forbidden": lambda lbl, ctx: f"{lbl} is not a field of this form.",
    "enum": lambda lbl, ctx: f"{lbl}: choose one of the offered options.",
    "literal_error": lambda lbl, ctx: f"{lbl}: choose one of the offered options.",
    "string_too_short": lambda lbl, ctx: (
        f"{lbl} is required." if ctx.get("min_length", 1) <= 1
        else f"{lbl} must be at least {ctx['min_length']} characters."),
    "string_too_long": _too_long,
    "too_short": _at_least_one,
    "too_long": _too_many,
    "greater_than_equal": lambda lbl, ctx: f"{lbl} must be at least {ctx.get('ge')}.",
    "greater_than": lambda lbl, ctx: f"{lbl} must be more than {ctx.get('gt')}.",
    "less_than_equal": lambda lbl, ctx: f"{lbl} must be at most {ctx.get('le')}.",
    "less_than": lambda lbl, ctx: f"{lbl} must be less than {ctx.get('lt')}.",
    "int_parsing": lambda lbl, ctx: f"{lbl} must be a whole number.",
    "int_type": lambda lbl, ctx: f"{lbl} must be a whole number.",
    "int_from_float": lambda lbl, ctx: f"{lbl} must be a whole number.",
    "float_parsing": lambda lbl, ctx: f"{lbl} must be a number.",
    "bool_parsing": lambda lbl, ctx: f"{lbl}: answer yes or no.",
    "bool_type": lambda lbl, ctx: f"{lbl}: answer yes or no.",
    "date_parsing": lambda lbl, ctx: f"{lbl}: choose a real date.",
    "date_from_datetime_parsing": lambda lbl, ctx: f"{lbl}: choose a real date.",
    "datetime_parsing": lambda lbl, ctx: f"{lbl}: choose a date and time.",
    "datetime_from_date_parsing": lambda lbl, ctx: f"{lbl}: choose a date and time.",
    "uuid_parsing": lambda lbl, ctx: f"{lbl}: choose one from the list.",
    "string_pattern_mismatch": lambda lbl, ctx: f"{lbl} is not in the expected form.",
    "string_type": lambda lbl, ctx: f"{lbl} must be text.",
    "dict_type": lambda lbl, ctx: f"{lbl} is not in the expected form.",
    "list_type": lambda lbl, ctx: f"{lbl} is not in the expected form.",
    "model_type": lambda lbl, ctx: f"{lbl} is not in the expected form.",
    "unique": lambda lbl, ctx: f"{lbl}: choose each option only once.",
}


def sentence(text: str) -> str:
    """`text` with a capital first letter and a closing full stop (nothing else changed)."""
    text = text.strip()
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _path(loc: Any) -> list[str]:
    return [str(p) for p in (loc or ()) if not isinstance(p, int)]


def field_label(field: str | None) -> str:
    if not field:
        return "This form"
    if field in FIELD_LABELS:
        return FIELD_LABELS[field]
    last = field.rsplit(".", 1)[-1]
    return FIELD_LABELS.get(last, last.replace("_", " ").capitalize())


def _hint(field: str) -> str | None:
    return FIELD_HINTS.get(field) or FIELD_HINTS.get(field.rsplit(".", 1)[-1])


def field_message(error: Mapping[str, Any]) -> tuple[str | None, str]:
    """(dotted field name or None, a plain sentence) for one pydantic error."""
    parts = _path(error.get("loc"))
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    # A bad key of a mapping (an unknown discipline in `affected`) names the mapping.
    if parts and parts[-1] == "[key]":
        parts = parts[:-1]
    # Dict keys (a discipline) sit in the location; report the mapping itself.
    field = ".".join(parts) or None
    if field is not None and "." in field and field.split(".")[0] in (
            "affected", "disciplines"):
        field = field.split(".")[0]
    if kind == "value_error" and "error" in ctx:
        message = str(ctx["error"])
        if field is None or field.split(".")[-1] not in ("due", "date"):
            return field, sentence(message)
    lbl = field_label(field)
    if kind in ("string_pattern_mismatch", "value_error", "date_parsing") and field:
        hint = _hint(field)
        if hint is not None:
            return field, hint
    make = _BY_TYPE.get(kind)
    if make is not None:
        return field, make(lbl, ctx)
    return field, f"{lbl} is not valid."
