"""Golden vectors of the roster delta (docs/WIRE.md §13.1): `roster_delta.json`.

Built on `roster.json` (`roster_vectors`): the base is its version 1 document, the target
its version 2 (agency-a rotated its key, agency-c added, a key revoked, new dates). The
file records both documents, the delta from 1 to 2 (what a server holding version 1 gets for
`GET /fed/v1/roster?have=1&have_sha256=<v1 sha256>`), version 2's hash, and a tampered delta
(agency-c's endpoint changed in transit) whose rebuilt document fails the signatures.
Everything is deterministic (Ed25519 included).

    python -m tests.vectors.roster_delta_vectors   # rewrite the file
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from federation.roster import parse_signed_roster
from federation.roster_delta import DELTA_KEY, make_delta
from protocol.canonical import canonical_bytes, parse_json
from tests.vectors import roster_vectors
from tests.vectors.generate import DAY, T0

PATH = Path(__file__).resolve().parent / "roster_delta.json"


def build() -> dict[str, Any]:
    roster = roster_vectors.build()
    v1_doc, v2_doc = (v["document"] for v in roster["versions"])
    v1, v2 = parse_signed_roster(v1_doc.encode()), parse_signed_roster(v2_doc.encode())
    delta = make_delta(v1, v2)
    if delta is None:
        raise RuntimeError("the vector versions give no delta")
    tampered = parse_json(delta)
    tampered[DELTA_KEY]["insert"][-1][1]["endpoint"] = "https://attacker.example.org"
    return {
        "description": "roster delta from version 1 to version 2 of roster.json (WIRE.md "
                       "§13.1): applied to base_document it rebuilds target_document byte "
                       "for byte; tampered_delta rebuilds a document whose signatures fail",
        "pinned": roster["pinned"],
        "now": T0 + DAY,
        "base_document": v1_doc,
        "target_document": v2_doc,
        "target_sha256": v2.sha256,
        "delta": delta.decode("utf-8"),
        "delta_bytes": len(delta),
        "target_bytes": len(v2_doc.encode()),
        "tampered_delta": canonical_bytes(tampered).decode("utf-8"),
    }


def main() -> int:
    PATH.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
