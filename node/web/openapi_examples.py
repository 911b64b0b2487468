"""Example request bodies for the node's OpenAPI document, by route name.

An integrator copies these into a first call, so each must be a body the server accepts:
tests/openapi/test_documents.py validates every example with its route's body model and
fails for a route with a body but no example here. Values are made up (no person, no real
incident); ids are placeholders a caller replaces with ones it got from the API.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BODY_EXAMPLES"]

_USER_ID = "0b6f7a52-3c1e-4d8a-9f2b-6a1d2c3e4f50"
_MSG_ID = "01J2Z3Y4X5W6V7T8S9R0QPNMKH"
_T0 = 1_780_000_000_000
_HOUR = 3_600_000

BODY_EXAMPLES: dict[str, dict[str, Any]] = {
    "api.notify.prefs.set": {"email": "duty@example.org", "channels": ["email"],
                             "digest": True, "quiet_start": "22:00", "quiet_end": "07:00",
                             "urgent_in_quiet": True},
    "api.notify.endpoints.add": {"label": "County CAD", "channel": "webhook",
                                 "target": "https://cad.example.org/hooks/peernet",
                                 "kinds": ["activation_request", "offer_accepted"]},
    "api.encounters.amend": {"intervention": "defusing", "referral": None},
    "api.transfers.consent": {"to": "agency-2"},
    "api.transfers.send": {"to": "agency-2", "contact_note": "Prefers calls after 18:00",
                           "due": "2026-06-22"},
    "api.transfers.accept": {"owner": _USER_ID},
    "api.transfers.decline": {"reason": "no_capacity"},
    "api.encounters.create": {
        "occurred_at": "2026-05-20T11:30:00Z", "duration_bucket": "15-30m",
        "activation_type": "self", "intervention": "one_on_one",
        "recipient_discipline": "fire", "recipient_category": "own_agency",
        "recipient": "E-1234", "topics": ["work_stress"], "referral": None,
        "follow_up_due": "2026-06-22", "notice_given": True,
    },
    "api.follow_ups.complete": {"outcome": "done"},
    "api.follow_ups.reassign": {"owner": _USER_ID, "due": "2026-06-29"},
    "api.users.create": {"username": "sup3", "password": "a long passphrase here",
                         "role": "peer_supporter", "team": "main"},
    "api.users.update": {"team": "b", "active": True},
    "api.tokens.create": {"label": "records sync", "expires_days": 90},
    "api.account.password": {"current_password": "the one you have now",
                             "new_password": "a long new passphrase"},
    "api.disclosures.create": {"category": "imminent_harm", "occurred_on": "2026-06-14",
                               "notice_given": True},
    "api.retention.purge": {"days": 365},
    "api.activations.create": {
        "incident_ref": "INC-2026-0042", "incident_type": "line_of_duty_death",
        "event_ts": _T0 - 2 * _HOUR, "affected": {"fire": 40, "ems": 12},
        "interventions": ["defusing", "one_on_one"], "window_start_ts": _T0,
        "window_end_ts": _T0 + 6 * _HOUR, "peers_needed": 6, "reporting_location": "STA-7",
        "priority": "urgent", "contact": {"role": "coordinator", "phone": "+1 555 0100"},
        "approver": "deputy_chief", "expires_ts": _T0 + 4 * _HOUR,
        "targets": ["agency-2"], "draft": True,
    },
    "api.activations.offer": {"disciplines": {"fire": 2}, "eta_minutes": 45,
                              "conditions": ["lodging_required"]},
    "api.activations.accept": {"offer_msg_id": _MSG_ID},
    "api.activations.decline": {"reason": "no_capacity"},
    "api.activations.update": {"stage": "mobilized"},
    "api.activations.cancel": {"reason": "no_longer_needed"},
    "api.activations.handoffs.send": {"to": "agency-1", "due": "2026-06-22",
                                      "discipline": "fire",
                                      "contact_note": "Call back re shift change"},
    "api.activations.interstate.policy.set": {"require_approval_out": True,
                                              "require_approval_in": True,
                                              "approvers": [_USER_ID]},
}
