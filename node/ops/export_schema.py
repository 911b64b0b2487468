"""What `peernet node export` writes, table by table, and the words of its `schema.md`.

`TABLES` is the allow-list: the agency's own records (encounters, follow-ups, disclosures,
activations and their hand-offs and transfers, the release ledger, the audit log) and the
user list that names who wrote them. Everything else stays out on purpose: sessions, API
tokens and login counters (secrets or short-lived), the federation's inbox/outbox/roster
(network plumbing, not records), and settings. `DROPPED` columns never leave the node
(password hashes); binary columns (sealed hand-off notes, kept encrypted under a node key
that is not exported) are dropped whatever their table. A table or column that a later
version adds is exported too (from the code's table definitions) and shown in schema.md as
"not described yet", so an export never silently loses a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["COMMON", "DROPPED", "TABLES", "TIME_NOTE", "ExportTable"]


@dataclass(frozen=True)
class ExportTable:
    name: str
    title: str
    about: str
    columns: dict[str, str] = field(default_factory=dict)


TIME_NOTE = (
    "Times: columns ending in `_at` or `_ts` (and `ts`) hold milliseconds since 1970-01-01 UTC, "
    "as the node stores them; the CSV files add a column `<name>_utc` next to each with the "
    "same moment as `YYYY-MM-DDTHH:MM:SSZ` (UTC), which spreadsheets read as a date. Dates "
    "(`due_on`, `occurred_on`) are calendar dates `YYYY-MM-DD`. Empty cells are empty values.")

# Columns that mean the same in every table.
COMMON = {
    "id": "Row identifier (unique in this table).",
    "created_at": "When the row was created.",
    "updated_at": "When the row last changed.",
    "created_by": "The user who created it (`id` in users.csv).",
    "team": "The peer team.",
    "activation_id": "The activation's id, shared by every agency in it.",
    "activation_key": "The activation (`key` in activations.csv).",
    "msg_id": "Id of the federation message that carried it.",
    "peer": "The other agency (its node id in the network).",
    "requester": "The agency that asked for help (node id).",
    "responder": "An agency asked to help (node id).",
    "state": "State at export time.",
    "status": "Status at export time.",
    "node_id": "This agency's node id.",
    "discipline": "Discipline of the person concerned.",
    "intervention": "The kind of support.",
    "due_on": "When it is due.",
    "direction": "in (received from the other agency) or out (sent to it).",
    "owner_id": "Who owns it (`id` in users.csv).",
    "follow_up_id": "The follow-up (`id` in follow_ups.csv).",
    "handoff_id": "The hand-off (`id` in handoffs.csv).",
    "consent_id": "The consent (`id` in followup_transfer_consents.csv).",
    "reason": "Coded reason, when there is one.",
    "cancel_reason": "Why it was cancelled, if it was.",
    "decline_reason": "Why it was declined, if it was.",
    "release_id": "The release (`release_id` in release_ledger.csv).",
}

DROPPED = {"users": frozenset({"password_hash"}),
           # A per-row secret binding the values to the audit chain (node.records), not a
           # record: the values themselves are exported.
           "encounter_amendments": frozenset({"nonce"})}

TABLES: list[ExportTable] = [
    ExportTable("users", "Users", "Everyone who can sign in to the node, so that "
                "`created_by` and owner columns can be read as names. No passwords.", {
                    "username": "Sign-in name.", "role": "What the user may do.",
                    "active": "false once the account was disabled.",
                    "must_change_password": "true when an admin reset the password."}),
    ExportTable("encounters", "Encounters", "One row per peer support contact (DESIGN "
                "section 2): operational fields only, no names and no narrative.", {
                    "occurred_at": "When the contact took place.",
                    "duration_bucket": "How long it lasted (`<15m`, `15-30m`, `30-60m`, "
                                       "`1-2h`, `>2h`).",
                    "incident_ref": "Incident or call number, when given.",
                    "activation_type": "What started it (self, supervisor, "
                                       "post_critical_incident, peer_outreach, interagency).",
                    "intervention": "The kind of support (one_on_one, defusing, debriefing, "
                                    "demobilization, family_support, follow_up).",
                    "recipient_discipline": "Discipline of the person supported.",
                    "recipient_category": "own_agency, other_agency, family or other_staff.",
                    "recipient_ref": "A keyed pseudonym of the identifier the supporter "
                                     "typed: the same person has the same value in every "
                                     "row. It cannot be turned back into the identifier.",
                    "topics": "Coarse topics, comma-separated.",
                    "referral": "Where the person was referred, if anywhere.",
                    "notice_given": "Whether the confidentiality notice was given.",
                    "supporter_was_witness": "Whether the supporter witnessed the incident."}),
    ExportTable("follow_ups", "Follow-ups", "The follow-up planned for an encounter (at most "
                "one per encounter).", {
                    "encounter_id": "The encounter (`id` in encounters.csv).",
                    "owner_id": "Who owns it (`id` in users.csv).",
                    "due_on": "When it is due.",
                    "completed_at": "When it was done, if it was."}),
    ExportTable("disclosures", "Disclosures", "Disclosures made under a legal exception: "
                "category, date and whether notice was given. Nothing else.", {
                    "category": "The legal exception.", "occurred_on": "Date of disclosure.",
                    "notice_given": "Whether the person was told."}),
    ExportTable("activations", "Activations", "Interagency activations this agency asked for "
                "or was asked to help with (one row per activation and side).", {
                    "key": "Row identifier.", "side": "requester or responder.",
                    "own_state": "This agency's state of the activation.",
                    "request": "The request as sent (JSON text: counts, times, roles).",
                    "incident_ref": "Incident or call number.",
                    "incident_type": "Kind of incident.", "event_ts": "When it happened.",
                    "expires_ts": "When the request expires.",
                    "peers_needed": "Peer supporters asked for.",
                    "affected_total": "Responders affected (sum over disciplines).",
                    "coordinator_id": "Coordinating user (`id` in users.csv).",
                    "cancel_reason": "Why it was cancelled, if it was."}),
    ExportTable("activation_legs", "Activation legs", "One row per agency asked in an "
                "activation: its offer, acceptance, decline or cancellation.", {
                    "offer": "The offer (JSON text: peers, disciplines, ETA, conditions).",
                    "offer_peers": "Peers offered.",
                    "request_msg_id": "Id of the request message to this agency.",
                    "offer_msg_id": "Id of its offer message.",
                    "offered_by": "Who made the offer here (`id` in users.csv).",
                    "accept_msg_id": "Id of the acceptance message.",
                    "accepted_at": "When the offer was accepted.",
                    "declined_by": "Who declined (node id).",
                    "cancelled_by": "Who cancelled (node id)."}),
    ExportTable("activation_events", "Activation events", "Every state change of an "
                "activation, in order: the activation's history.", {
                    "actor_node": "The agency that made the change.", "ts": "When.",
                    "note": "Short coded note."}),
    ExportTable("handoffs", "Follow-up hand-offs", "Follow-ups handed from one agency to "
                "another after demobilization. The sealed contact note is not exported.", {
                    "direction": "in (received) or out (sent).",
                    "discipline": "Discipline of the person.", "due_on": "When it is due.",
                    "assigned_to": "Who it was given to (`id` in users.csv).",
                    "completed_at": "When it was done."}),
    ExportTable("followup_transfers", "Follow-up transfers", "Follow-ups transferred to or "
                "from a member agency with the person's consent.", {
                    "consent_ts": "When the person consented.",
                    "answer_by": "When the other agency must answer by (ms, as the times).",
                    "decided_at": "When the other agency answered."}),
    ExportTable("followup_transfer_consents", "Transfer consents", "Consents recorded "
                "before a follow-up transfer.", {
                    "to_agency": "The agency the follow-up may go to (node id).",
                    "asked_by": "Who recorded the consent (`id` in users.csv).",
                    "consented_at": "When.", "used_at": "When a transfer used it."}),
    ExportTable("encounter_amendments", "Encounter amendments", "Every audited correction "
                "of an encounter: who, when, which fields, the values before and after.", {
                    "encounter_id": "The encounter (`id` in encounters.csv).",
                    "amended_by": "Who corrected it (`id` in users.csv).",
                    "amended_at": "When.", "fields": "The fields changed, comma-separated.",
                    "old_values": "Their values before (JSON text).",
                    "new_values": "Their values after (JSON text)."}),
    ExportTable("release_ledger", "Release ledger", "The node's privacy ledger: every noisy "
                "monthly statistics release and the privacy budget it spent.", {
                    "month": "The month released (YYYY-MM).", "year": "Its year.",
                    "query_sha256": "Fingerprint of the fixed query released.",
                    "unit": "The privacy unit (one person per agency per year).",
                    "per_person_month": "At most this many encounters per person and month "
                                        "counted.",
                    "per_cell": "At most this many per person in one cell.",
                    "measure": "Privacy measure (zcdp or pure_dp).",
                    "mechanism": "Noise (gaussian or laplace).",
                    "scale": "Noise scale.", "budget_spent": "Privacy budget this release "
                    "spent.", "budget_per_year": "The yearly budget it counts against.",
                    "opendp_version": "The OpenDP library version used."}),
    ExportTable("audit_log", "Audit log", "The node's append-only audit log (a hash chain): "
                "who did what and when, never record contents.", {
                    "seq": "Entry number (1, 2, ...).", "ts": "When.",
                    "actor": "The user (`id` in users.csv) or empty for the system.",
                    "role": "The user's role then.", "action": "What was done.",
                    "target_type": "Kind of thing acted on.", "target_id": "Its id.",
                    "outcome": "ok or refused.", "detail": "Counts and codes (JSON text).",
                    "prev_hash": "Hash of the entry before (the chain).",
                    "hash": "This entry's hash."}),
]
