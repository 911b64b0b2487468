"""The body of an encounter amendment (`POST /api/v1/encounters/{id}/amendments`).

The same fields, vocabularies and shapes as logging an encounter (`EncounterIn`), each
optional: a field left out keeps its value. `incident_ref` and `referral` may be set to
null (cleared); null for any other field is refused (`invalid_input`, naming the field), so a
required value can never be blanked by a correction. Follow-up due date and owner are not
amended here: the follow-up's own reassign and complete steps change them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from node.core.errors import Code, NodeError
from node.core.schemas import EncounterOut, IncidentRef, RecipientInput
from node.core.vocabulary import (
    ActivationType,
    DurationBucket,
    Intervention,
    RecipientCategory,
    RecipientDiscipline,
    Referral,
    Topic,
)

__all__ = ["AMENDABLE", "AmendmentResult", "EncounterAmendIn"]

AMENDABLE = ("occurred_at", "duration_bucket", "incident_ref", "activation_type",
             "intervention", "recipient_discipline", "recipient_category", "recipient",
             "topics", "referral", "notice_given", "supporter_was_witness")
_CLEARABLE = frozenset({"incident_ref", "referral"})


class EncounterAmendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    occurred_at: AwareDatetime | None = None
    duration_bucket: DurationBucket | None = None
    incident_ref: IncidentRef | None = None
    activation_type: ActivationType | None = None
    intervention: Intervention | None = None
    recipient_discipline: RecipientDiscipline | None = None
    recipient_category: RecipientCategory | None = None
    recipient: RecipientInput | None = Field(
        default=None, description="Only to correct who was supported: typed again, turned "
        "into recipient_ref on this node and never stored")
    topics: set[Topic] | None = Field(default=None, max_length=len(Topic))
    referral: Referral | None = None
    notice_given: bool | None = None
    supporter_was_witness: bool | None = None

    def given(self) -> dict[str, Any]:
        """The fields the caller sent, with their values; null where only a value will do
        is refused (`invalid_input` naming the field)."""
        out = {name: getattr(self, name) for name in AMENDABLE if name in self.model_fields_set}
        for name, value in out.items():
            if value is None and name not in _CLEARABLE:
                raise NodeError(Code.INVALID_INPUT, f"{name}: give a value, or leave the "
                                "field out to keep it", name)
        return out


class AmendmentResult(BaseModel):
    """The encounter as it stands after the amendment, with its whole history."""

    model_config = ConfigDict(extra="forbid")

    encounter: EncounterOut
    amended_fields: list[str]
    amended_at: datetime
