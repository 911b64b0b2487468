"""The state board's working directory: keys, the draft of the next roster, signed versions.

Layout of a board directory `D`:

    D/board.json              {"format": "peernet-board-v1", "keys": [b64u...], "threshold": k}
                              (public: what servers pin at install)
    D/keys/board-key-<i>.json one sealed key file per board member (argon2id + SecretBox,
                              `federation.keystore.seal_secret`); hand each to its holder
    D/draft.json              {"roster": {...}}: the next version, unsigned, being edited
    D/rosters/roster-<v>.json every signed version (the document servers accept)

Workflow: `init` writes keys and a draft of version 1. `add-node`, `remove-node`, `revoke`,
`policy set` edit the draft (starting one from the newest signed version when there is none:
version + 1, `prev_sha256`, fresh `issued_ts`/`expires_ts`). Each key holder runs `sign` on
their own machine and hands over a signature file; `combine` checks the signatures against
the draft and the acceptance rules (pinned board for version 1, the previous version's board
and the new board otherwise) and only then writes the signed roster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from pydantic import ValidationError

from federation.board_keys import check_passphrase, load_board_key, write_board_key
from federation.errors import FedCode, FederationError
from federation.roster import (
    MAX_OLD_SIGN_KEYS,
    Board,
    NodeEntry,
    NodeRole,
    Policy,
    Revocation,
    Roster,
    RosterSignature,
    SignedRoster,
    build_signed,
    parse_signed_roster,
    roster_signature,
)
from federation.roster_acceptance import BoardPin, accept_first, accept_next
from protocol.canonical import canonical_bytes, parse_json
from protocol.encoding import b64u, sha256_b64u, unb64u
from protocol.errors import ProtocolError

__all__ = [
    "bad_input",
    "read_json_file",
    "write_json_file",
    "BOARD_FORMAT",
    "DAY_MS",
    "ROTATION_GRACE_MS",
    "SIGNATURE_FORMAT",
    "BoardDir",
    "load_board_key",
    "read_pin",
    "replace_entry",
    "verify_roster_file",
]

BOARD_FORMAT = "peernet-board-v1"
SIGNATURE_FORMAT = "peernet-roster-signature-v1"
DAY_MS = 86_400_000
DEFAULT_VALIDITY_DAYS = 90


# Policy fields a roster omits when unset (never null), see `federation.roster.PrivacyPolicy`.
_OPTIONAL = frozenset({"privacy.workload_weights", "privacy.aggregation", "privacy.helper"})


def bad_input(message: str, field: str | None = None) -> FederationError:
    """A refused board file or argument (`bad_input`)."""
    return FederationError(FedCode.BAD_INPUT, message, field)


def read_json_file(path: Path) -> Any:
    """A board document from `path`, strict JSON (`not_found`, `bad_input`)."""
    try:
        return parse_json(path.read_bytes())
    except OSError as exc:
        raise FederationError(FedCode.NOT_FOUND, f"cannot read {path}: {exc.strerror}") from None
    except ProtocolError as exc:
        raise bad_input(f"{path} is not strict JSON: {exc.detail}") from None


def write_json_file(path: Path, value: Any) -> None:
    """`value` to `path` as readable JSON, replaced whole (write, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    tmp.replace(path)


def read_pin(path: Path) -> BoardPin:
    """The pinned board (keys and threshold) from a `board.json`."""
    doc = read_json_file(path)
    if not isinstance(doc, dict) or doc.get("format") != BOARD_FORMAT:
        raise bad_input(f"{path} is not a {BOARD_FORMAT} file")
    try:
        board = Board.model_validate({"keys": doc["keys"], "threshold": doc["threshold"]})
    except (KeyError, ValidationError):
        raise bad_input(f"{path} has no valid keys/threshold") from None
    return BoardPin(board.key_bytes(), board.threshold)


class BoardDir:
    """Operations on a board directory (see module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def board_file(self) -> Path:
        return self.root / "board.json"

    @property
    def draft_file(self) -> Path:
        return self.root / "draft.json"

    @property
    def rosters_dir(self) -> Path:
        return self.root / "rosters"

    def roster_file(self, version: int) -> Path:
        return self.rosters_dir / f"roster-{version:06d}.json"

    # --- init -------------------------------------------------------------------------

    def init(
        self,
        *,
        keys: int,
        threshold: int,
        passphrase: str | Sequence[str],
        now_ms: int,
        validity_days: int = DEFAULT_VALIDITY_DAYS,
    ) -> list[Path]:
        """Keys (key i sealed under `passphrase`, or `passphrase[i - 1]`: one per holder)
        and the draft of version 1; everything is checked before anything is written."""
        if self.board_file.exists():
            raise FederationError(FedCode.CONFLICT, f"{self.root} already holds a board")
        if not 1 <= threshold <= keys <= 64:
            raise bad_input("need 1 <= threshold <= keys <= 64", "threshold")
        phrases = [passphrase] * keys if isinstance(passphrase, str) else list(passphrase)
        if len(phrases) != keys:
            raise bad_input(f"need one passphrase per key ({keys}), got {len(phrases)}",
                            "passphrase")
        for phrase in phrases:
            check_passphrase(phrase)
        signing = [SigningKey.generate() for _ in range(keys)]
        board = Board(keys=[b64u(bytes(k.verify_key)) for k in signing], threshold=threshold)
        (self.root / "keys").mkdir(parents=True, exist_ok=True)
        paths = []
        for i, key in enumerate(signing, start=1):
            path = self.root / "keys" / f"board-key-{i}.json"
            write_board_key(path, i, key, phrases[i - 1])
            paths.append(path)
        write_json_file(self.board_file, {"format": BOARD_FORMAT, **board.model_dump(mode="json")})
        draft = Roster(
            version=1,
            prev_sha256=None,
            issued_ts=now_ms,
            expires_ts=now_ms + validity_days * DAY_MS,
            board=board,
            nodes=[],
            revoked=[],
            policy=Policy(),
        )
        self._save_draft(draft)
        return paths

    def pin(self) -> BoardPin:
        return read_pin(self.board_file)

    # --- signed versions --------------------------------------------------------------

    def latest(self) -> SignedRoster | None:
        files = sorted(self.rosters_dir.glob("roster-*.json")) if self.rosters_dir.exists() else []
        if not files:
            return None
        return parse_signed_roster(files[-1].read_bytes())

    # --- draft ------------------------------------------------------------------------

    def _save_draft(self, roster: Roster) -> None:
        write_json_file(self.draft_file, {"roster": roster.model_dump(mode="json")})

    def draft(self, now_ms: int, validity_days: int = DEFAULT_VALIDITY_DAYS) -> Roster:
        """The draft being edited; started from the newest signed version if there is none."""
        if self.draft_file.exists():
            doc = read_json_file(self.draft_file)
            if not isinstance(doc, dict) or set(doc) != {"roster"}:
                raise bad_input(f"{self.draft_file} is not a draft")
            try:
                return Roster.model_validate(doc["roster"])
            except ValidationError as exc:
                raise bad_input(
                    f"draft does not match the roster schema: {exc.errors()[0]['msg']}"
                ) from None
        latest = self.latest()
        if latest is None:
            raise FederationError(
                FedCode.NOT_FOUND, "no draft and no signed roster: run board init"
            )
        r = latest.roster
        draft = r.model_copy(
            update={
                "version": r.version + 1,
                "prev_sha256": latest.sha256,
                "issued_ts": now_ms,
                "expires_ts": now_ms + validity_days * DAY_MS,
            }
        )
        self._save_draft(draft)
        return draft

    def _edit(self, draft: Roster, **update: Any) -> Roster:
        value = draft.model_dump(mode="json")
        value.update(update)
        try:
            new = Roster.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise bad_input(f"invalid roster at {loc}: {first['msg']}", loc) from None
        self._save_draft(new)
        return new

    def renew(self, now_ms: int, validity_days: int) -> Roster:
        """Set the draft's issued/expiry times (a new version that only extends validity)."""
        draft = self.draft(now_ms)
        return self._edit(draft, issued_ts=now_ms, expires_ts=now_ms + validity_days * DAY_MS)

    def add_node(self, entry: NodeEntry, now_ms: int, *, replace: bool = False) -> Roster:
        draft = self.draft(now_ms)
        nodes = [n.model_dump(mode="json") for n in draft.nodes]
        existing = [i for i, n in enumerate(draft.nodes) if n.node_id == entry.node_id]
        if existing and not replace:
            raise FederationError(
                FedCode.CONFLICT, f"{entry.node_id} is already listed (use --replace)"
            )
        if existing:
            nodes[existing[0]] = replace_entry(draft, draft.nodes[existing[0]], entry, now_ms)
        else:
            nodes.append(entry.model_dump(mode="json"))
        return self._edit(draft, nodes=sorted(nodes, key=lambda n: n["node_id"]))

    def remove_node(self, node_id: str, now_ms: int) -> Roster:
        draft = self.draft(now_ms)
        if draft.node(node_id) is None:
            raise FederationError(FedCode.NOT_FOUND, f"{node_id} is not listed")
        return self._edit(
            draft, nodes=[n.model_dump(mode="json") for n in draft.nodes if n.node_id != node_id]
        )

    def revoke(self, key: str, reason: str, now_ms: int) -> Roster:
        try:
            raw = unb64u(key)
        except ProtocolError:
            raw = b""
        if len(raw) != 32:
            raise bad_input("key must be a base64url Ed25519 public key", "key")
        draft = self.draft(now_ms)
        if any(r.key == key for r in draft.revoked):
            raise FederationError(FedCode.CONFLICT, "key is already revoked")
        revoked = [r.model_dump(mode="json") for r in draft.revoked]
        revoked.append(
            Revocation(key=key, revoked_ts=now_ms, reason=reason).model_dump(mode="json")
        )
        return self._edit(draft, revoked=revoked)

    def set_policy(self, path: str, value: Any, now_ms: int) -> Roster:
        return self.set_policies([(path, value)], now_ms)

    def set_policies(self, pairs: list[tuple[str, Any]], now_ms: int) -> Roster:
        """Set several dotted policy fields in one edit, so fields that must change
        together (`privacy.aggregation` "shared" and `privacy.helper`) can. A named helper
        must be a roster node with role `helper`; nothing is saved on any refusal."""
        draft = self.draft(now_ms)
        policy = draft.policy.model_dump(mode="json")
        for path, value in pairs:
            parts = path.split(".")
            node: Any = policy
            for p in parts[:-1]:
                if not isinstance(node, dict) or p not in node:
                    raise bad_input(f"no policy field {path}", "path")
                node = node[p]
            # Optional fields are omitted from the dump when unset, yet settable; null
            # omits one again (e.g. `privacy.helper` when going back to local).
            known = isinstance(node, dict) and (parts[-1] in node or path in _OPTIONAL)
            if not known:
                raise bad_input(f"no policy field {path}", "path")
            if value is None and path in _OPTIONAL:
                node.pop(parts[-1], None)
            else:
                node[parts[-1]] = value
        helper = policy.get("privacy", {}).get("helper")
        if helper is not None and not any(
                n.node_id == helper and NodeRole.HELPER in n.roles for n in draft.nodes):
            raise bad_input("privacy.helper must name a roster node with role helper "
                       "(add its helper-info.json first)", "privacy.helper")
        return self._edit(draft, policy=policy)

    def set_board(self, keys: list[str], threshold: int, now_ms: int) -> Roster:
        """Name a new board in the draft (it must sign too, with the current board)."""
        draft = self.draft(now_ms)
        return self._edit(draft, board={"keys": keys, "threshold": threshold})

    # --- signing ----------------------------------------------------------------------

    def sign(self, key: SigningKey, now_ms: int) -> dict[str, Any]:
        """A signature file for the current draft by one board member."""
        draft = self.draft(now_ms)
        rbytes = canonical_bytes(draft.model_dump(mode="json"))
        sig = roster_signature(key, rbytes)
        return {
            "format": SIGNATURE_FORMAT,
            "version": draft.version,
            "sha256": sha256_b64u(rbytes),
            "signature": sig.model_dump(),
        }

    def combine(self, signature_docs: list[Any], now_ms: int) -> SignedRoster:
        """Check signatures against the draft and the acceptance rules; write the roster."""
        draft = self.draft(now_ms)
        value = draft.model_dump(mode="json")
        sha = sha256_b64u(canonical_bytes(value))
        sigs: list[RosterSignature] = []
        for doc in signature_docs:
            if not isinstance(doc, dict) or doc.get("format") != SIGNATURE_FORMAT:
                raise bad_input("not a roster signature file")
            if doc.get("version") != draft.version or doc.get("sha256") != sha:
                raise FederationError(FedCode.CONFLICT, "a signature is for another draft")
            try:
                sigs.append(RosterSignature.model_validate(doc["signature"]))
            except (KeyError, ValidationError):
                raise bad_input("signature file holds no {key, value}") from None
        signed = build_signed(value, sigs)
        latest = self.latest()
        if draft.version == 1:
            accept_first(signed, self.pin(), now_ms)
        elif latest is None or latest.version != draft.version - 1:
            raise FederationError(FedCode.ROSTER_VERSION, "the previous signed version is missing")
        else:
            accept_next(latest, signed, now_ms)
        self.rosters_dir.mkdir(parents=True, exist_ok=True)
        self.roster_file(signed.version).write_bytes(signed.to_bytes())
        self.draft_file.unlink()
        return signed


def verify_roster_file(
    path: Path, now_ms: int, *, pin: BoardPin | None = None, prev: Path | None = None
) -> SignedRoster:
    """Check a signed roster: against the pinned board (version 1) or its predecessor."""
    try:
        signed = parse_signed_roster(path.read_bytes())
    except OSError as exc:
        raise FederationError(FedCode.NOT_FOUND, f"cannot read {path}: {exc.strerror}") from None
    if prev is not None:
        accept_next(parse_signed_roster(prev.read_bytes()), signed, now_ms)
    elif pin is not None and signed.version == 1:
        accept_first(signed, pin, now_ms)
    else:
        raise bad_input("give --pin for version 1 or --prev for later versions")
    return signed


# A signing key the new node info no longer lists stays valid this long as an old key: the
# node signs with it until it holds the roster that lists its new key (`NodeKeys.signer`).
ROTATION_GRACE_MS = 7 * 86_400_000


def replace_entry(draft: Roster, prev: NodeEntry, entry: NodeEntry, now_ms: int) -> dict[str, Any]:
    """`entry` as it replaces `prev`: the previous signing keys it drops (a rotation) are
    kept as old keys, valid until `now_ms + ROTATION_GRACE_MS`, so envelopes they signed
    still verify (keys are looked up at `created_ts`); revoked keys are not kept, and past
    `MAX_OLD_SIGN_KEYS` the ones that expired first go."""
    out = entry.model_dump(mode="json")
    revoked = {r.key for r in draft.revoked}
    old = {kid: sk.model_dump(mode="json") for kid, sk in prev.old_sign_keys.items()}
    old.update({kid: {"key": sk.key, "valid_until": now_ms + ROTATION_GRACE_MS}
                for kid, sk in prev.sign_keys.items()})
    old.update(out["old_sign_keys"])
    kept = [(kid, v) for kid, v in old.items()
            if kid not in entry.sign_keys and v["key"] not in revoked]
    kept.sort(key=lambda kv: kv[1]["valid_until"], reverse=True)
    out["old_sign_keys"] = dict(sorted(kept[:MAX_OLD_SIGN_KEYS]))
    return out
