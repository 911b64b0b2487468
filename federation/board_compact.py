"""The compact's working directory: the draft of the next version and the signed versions.

Layout of a compact directory `D` (each member board may keep its own copy; the drafts
must end byte-identical for signatures to combine, which `sign` files make checkable by
their `sha256`):

    D/compact-draft.json        {"compact": {...}}: the next version, unsigned, being edited
    D/compacts/compact-<v>.json every signed version (the document hubs accept)

Workflow (`peernet board compact ...`): `init` writes a draft of version 1 with no members;
`add-network` lists a network from its board's `board.json` (keys, threshold) and its hub's
public info (`peernet hub public-info` / node public info: hub id, endpoint, keys);
`remove-network` drops one (a network that leaves or is removed: a new version). Edits
start a draft from the newest signed version when there is none (version + 1,
`prev_sha256`, fresh dates). Each board member of each network runs `sign --network N`
with their own sealed board key; `combine` checks every signature file against the draft
and the acceptance rules of `federation.compact_acceptance` (each listed network's
threshold of its own board, of its board in the previous version too, chain and dates)
before it writes the signed version. `verify` reports per network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from pydantic import ValidationError

from federation.board import (
    BOARD_FORMAT,
    DAY_MS,
    bad_input,
    read_json_file,
    write_json_file,
)
from federation.compact_acceptance import (
    CompactPin,
    accept_compact,
    check_compact_time,
    parse_compact_document,
)
from federation.errors import FedCode, FederationError
from federation.roster import NodeEntry
from federation.roster_acceptance import BoardPin
from protocol.canonical import canonical_bytes
from protocol.compact import (
    Compact,
    CompactBoard,
    CompactSignature,
    MemberNetwork,
    SignedCompact,
    build_signed_compact,
    compact_signature,
    compact_signers,
)
from protocol.encoding import sha256_b64u

__all__ = [
    "COMPACT_SIGNATURE_FORMAT",
    "CompactDir",
    "NetworkReport",
    "member_from",
    "network_report",
    "read_board_file",
    "verify_compact_file",
]

COMPACT_SIGNATURE_FORMAT = "peernet-compact-signature-v1"
DEFAULT_VALIDITY_DAYS = 365


def read_board_file(path: Path) -> CompactBoard:
    """A network board's public keys and threshold from its `board.json`."""
    doc = read_json_file(path)
    if not isinstance(doc, dict) or doc.get("format") != BOARD_FORMAT:
        raise bad_input(f"{path} is not a {BOARD_FORMAT} file")
    try:
        return CompactBoard.model_validate({"keys": doc["keys"], "threshold": doc["threshold"]})
    except (KeyError, ValidationError):
        raise bad_input(f"{path} has no valid keys/threshold") from None


def member_from(
    network_id: str, name: str, board: CompactBoard, hub: NodeEntry, endpoint: str | None
) -> MemberNetwork:
    """A member entry from a board file and the hub's public info."""
    keys = [{"kid": kid, "sign": sk.key, "enc": hub.enc_key} for kid, sk in sorted(
        hub.sign_keys.items())]
    value = {
        "network_id": network_id,
        "name": name,
        "board": board.model_dump(mode="json"),
        "hub": {"hub_id": hub.node_id, "endpoint": endpoint or hub.endpoint, "keys": keys},
    }
    try:
        return MemberNetwork.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise bad_input(f"network entry is invalid at {loc}: {first['msg']}", loc) from None


class CompactDir:
    """Operations on a compact directory (see module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def draft_file(self) -> Path:
        return self.root / "compact-draft.json"

    def compact_file(self, version: int) -> Path:
        return self.root / "compacts" / f"compact-{version}.json"

    def latest(self) -> SignedCompact | None:
        files = sorted(
            (int(p.stem.split("-")[1]), p)
            for p in (self.root / "compacts").glob("compact-*.json")
            if p.stem.split("-")[1].isdigit()
        ) if (self.root / "compacts").is_dir() else []
        if not files:
            return None
        return parse_compact_document(files[-1][1].read_bytes())

    def init(self, compact_id: str, now_ms: int, validity_days: int) -> dict[str, Any]:
        if self.draft_file.exists() or self.latest() is not None:
            raise FederationError(FedCode.CONFLICT, f"{self.root} already holds a compact")
        draft = {
            "v": 1, "compact_id": compact_id, "version": 1, "prev_sha256": None,
            "issued_ts": now_ms, "expires_ts": now_ms + validity_days * DAY_MS, "networks": [],
        }
        if not isinstance(compact_id, str) or not compact_id:
            raise bad_input("compact id is empty", "compact_id")
        self._save(draft)
        return draft

    def _save(self, draft: dict[str, Any]) -> None:
        write_json_file(self.draft_file, {"compact": draft})

    def draft(self, now_ms: int) -> dict[str, Any]:
        if self.draft_file.exists():
            doc = read_json_file(self.draft_file)
            if not isinstance(doc, dict) or not isinstance(doc.get("compact"), dict):
                raise bad_input(f"{self.draft_file} is not a compact draft")
            return dict(doc["compact"])
        latest = self.latest()
        if latest is None:
            raise FederationError(FedCode.NOT_FOUND, "no compact here: run compact init first")
        value = dict(latest.compact_value)
        value.update(
            version=latest.version + 1, prev_sha256=latest.sha256, issued_ts=now_ms,
            expires_ts=now_ms + DEFAULT_VALIDITY_DAYS * DAY_MS,
        )
        return value

    def add_network(self, member: MemberNetwork, now_ms: int, *, replace: bool) -> dict[str, Any]:
        draft = self.draft(now_ms)
        nets = [n for n in draft["networks"] if n.get("network_id") != member.network_id]
        if len(nets) != len(draft["networks"]) and not replace:
            raise FederationError(
                FedCode.CONFLICT, f"{member.network_id} is already listed (use --replace)"
            )
        nets.append(member.model_dump(mode="json"))
        draft["networks"] = sorted(nets, key=lambda n: str(n["network_id"]))
        self._save(draft)
        return draft

    def remove_network(self, network_id: str, now_ms: int) -> dict[str, Any]:
        draft = self.draft(now_ms)
        nets = [n for n in draft["networks"] if n.get("network_id") != network_id]
        if len(nets) == len(draft["networks"]):
            raise FederationError(FedCode.NOT_FOUND, f"{network_id} is not listed", "network_id")
        draft["networks"] = nets
        self._save(draft)
        return draft

    def _checked_draft(self, now_ms: int) -> tuple[dict[str, Any], Compact, bytes]:
        value = self.draft(now_ms)
        try:
            model = Compact.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise FederationError(
                FedCode.BAD_COMPACT, f"draft is not a valid compact at {loc}: {first['msg']}", loc
            ) from None
        return value, model, canonical_bytes(value)

    def sign(self, network_id: str, key: SigningKey, now_ms: int) -> dict[str, Any]:
        """A signature file for the draft by one board member of `network_id`."""
        _value, model, cbytes = self._checked_draft(now_ms)
        if not model.has(network_id):
            raise FederationError(
                FedCode.NOT_FOUND, f"{network_id} is not listed in the draft", "network_id"
            )
        sig = compact_signature(key, cbytes)
        return {
            "format": COMPACT_SIGNATURE_FORMAT, "network_id": network_id,
            "version": model.version, "sha256": sha256_b64u(cbytes),
            "signature": sig.model_dump(),
        }

    def combine(self, signature_docs: list[Any], now_ms: int) -> SignedCompact:
        """Check signatures against the draft and the acceptance rules; write the compact."""
        value, model, cbytes = self._checked_draft(now_ms)
        sha = sha256_b64u(cbytes)
        sigs: dict[str, list[CompactSignature]] = {}
        for doc in signature_docs:
            if not isinstance(doc, dict) or doc.get("format") != COMPACT_SIGNATURE_FORMAT:
                raise bad_input("not a compact signature file")
            if doc.get("version") != model.version or doc.get("sha256") != sha:
                raise FederationError(FedCode.CONFLICT, "a signature is for another draft")
            try:
                sig = CompactSignature.model_validate(doc["signature"])
            except (KeyError, ValidationError):
                raise bad_input("signature file holds no {key, sig}") from None
            nid = doc.get("network_id")
            if not isinstance(nid, str) or not model.has(nid):
                raise bad_input("a signature file names a network the draft does not list")
            sigs.setdefault(nid, []).append(sig)
        signed = build_signed_compact(value, sigs)
        latest = self.latest()
        if model.version > 1 and (latest is None or latest.version != model.version - 1):
            raise FederationError(
                FedCode.COMPACT_VERSION, "the previous signed compact version is missing"
            )
        first = model.members()[0]
        pin = CompactPin(first.network_id, BoardPin(first.board_keys, first.threshold))
        accept_compact(signed, latest if model.version > 1 else None, pin, now_ms)
        path = self.compact_file(signed.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(signed.to_bytes())
        self.draft_file.unlink()
        return signed


@dataclass(frozen=True)
class NetworkReport:
    network_id: str
    name: str
    valid: int
    threshold: int
    broken: int

    @property
    def ok(self) -> bool:
        return self.valid >= self.threshold


def network_report(signed: SignedCompact) -> list[NetworkReport]:
    """Per listed network: valid signatures of its own board against its threshold."""
    out = []
    for m in signed.compact.members():
        good, broken = compact_signers(signed, m.network_id, m.board_keys)
        out.append(NetworkReport(m.network_id, m.name, len(good), m.threshold, broken))
    return out


def verify_compact_file(
    path: Path, now_ms: int, *, prev: Path | None = None, pin: CompactPin | None = None
) -> SignedCompact:
    """Check a signed compact against the acceptance rules (its predecessor when given; the
    pinned board of one network when given, else its first member's listed board)."""
    try:
        signed = parse_compact_document(path.read_bytes())
        before = parse_compact_document(prev.read_bytes()) if prev is not None else None
    except OSError as exc:
        raise FederationError(FedCode.NOT_FOUND, f"cannot read: {exc.strerror}") from None
    if pin is None:
        first = signed.compact.members()[0]
        pin = CompactPin(first.network_id, BoardPin(first.board_keys, first.threshold))
    check_compact_time(signed, now_ms)
    accept_compact(signed, before, pin, now_ms)
    return signed
