"""A roster change as a delta: version N -> N+1 without sending the whole document.

A state roster lists thousands of nodes; a typical new version changes one. A server that
holds version N asks for N+1 naming N (`?have=N&have_sha256=H`, `federation.roster_sync`)
and gets, instead of the whole document, the canonical bytes of

    {"roster_delta": {"from_version": N, "from_sha256": H,
                      "set": {<top-level roster fields whose value changed, except nodes>},
                      "remove": [<node ids of N that N+1 drops>],
                      "replace": [<entries of N+1 for nodes N lists, changed>],
                      "insert": [[<index in N+1's nodes>, <entry of a node N lacks>], ...]},
     "signatures": [<N+1's board signatures, as in the document>]}

Applying it to N (`apply_delta`): start from N's `roster` value; replace each field named in
`set` (`version` and `prev_sha256` always change); drop the removed nodes; put each replaced
entry where the node with its `node_id` stands; then place each inserted entry at its index
of the final list (indexes strictly increasing). Nodes kept keep their relative order. The
result, with the signatures, is N+1's document, byte for byte.

Trust is unchanged: the board signs the whole document, and the rebuilt document is checked
exactly as a fetched one (`signed_from_value`, then the acceptance rules). A delta edited in
transit yields a document whose signatures fail (`bad_signatures` / `roster_threshold`); a
delta that is not well formed, or that names a base other than the one it is applied to, is
`bad_roster_delta` (the fetcher then asks for the whole document).

`make_delta` applies what it built and returns None unless the result is the target's bytes
exactly (a version that reorders the nodes it keeps is served whole), or when the delta
would not be smaller than the whole document.
"""

from __future__ import annotations

from typing import Any

from federation.errors import FedCode, FederationError
from federation.roster import SignedRoster, signed_from_value
from protocol.canonical import canonical_bytes_of_parsed, parse_json
from protocol.errors import ProtocolError

__all__ = [
    "DELTA_KEY",
    "MAX_DELTA_NODES",
    "apply_delta",
    "is_delta",
    "make_delta",
    "parse_answer",
]

DELTA_KEY = "roster_delta"
MAX_DELTA_NODES = 10_000  # as many as a roster may list
_SETTABLE = frozenset(
    {"version", "prev_sha256", "issued_ts", "expires_ts", "board", "revoked", "policy"}
)
_FIELDS = {"from_version", "from_sha256", "set", "remove", "replace", "insert"}


def _bad(message: str, field: str | None = None) -> FederationError:
    return FederationError(FedCode.BAD_ROSTER_DELTA, message, field)


def is_delta(doc: Any) -> bool:
    """Whether a parsed roster answer is a delta (else it is a whole document)."""
    return isinstance(doc, dict) and DELTA_KEY in doc


def make_delta(base: SignedRoster, target: SignedRoster) -> bytes | None:
    """The delta from `base` to `target` (its next version), or None when it cannot
    rebuild `target` byte for byte or would not be smaller (see module docstring)."""
    if target.version != base.version + 1:
        return None
    old, new = base.roster_value, target.roster_value
    changed = {k: v for k, v in new.items() if k != "nodes" and old.get(k) != v}
    if set(old) != set(new) or not set(changed) <= _SETTABLE:
        return None
    before = {n["node_id"]: n for n in old["nodes"]}
    after_ids = {n["node_id"] for n in new["nodes"]}
    replace = [n for n in new["nodes"] if n["node_id"] in before and before[n["node_id"]] != n]
    insert = [[i, n] for i, n in enumerate(new["nodes"]) if n["node_id"] not in before]
    delta = {
        DELTA_KEY: {
            "from_version": base.version,
            "from_sha256": base.sha256,
            "set": changed,
            "remove": sorted(i for i in before if i not in after_ids),
            "replace": replace,
            "insert": insert,
        },
        "signatures": [s.model_dump() for s in target.signatures],
    }
    data = canonical_bytes_of_parsed(delta)
    if len(data) >= len(target.to_bytes()):
        return None
    try:
        rebuilt = _rebuild(base, parse_json(data))
    except FederationError:
        return None
    if canonical_bytes_of_parsed(rebuilt["roster"]) != target.roster_bytes:
        return None
    return data


def apply_delta(base: SignedRoster, doc: Any) -> SignedRoster:
    """N+1 from N (`base`) and a parsed delta `doc`; its signatures are not checked here
    (the caller runs the acceptance rules, as for a fetched document)."""
    return signed_from_value(_rebuild(base, doc))


def _rebuild(base: SignedRoster, doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict) or set(doc) != {DELTA_KEY, "signatures"}:
        raise _bad("expected exactly the fields roster_delta and signatures")
    d = doc[DELTA_KEY]
    if not isinstance(d, dict) or set(d) != _FIELDS:
        raise _bad("roster_delta has other fields than " + ", ".join(sorted(_FIELDS)))
    if type(d["from_version"]) is not int or d["from_version"] != base.version or (
        d["from_sha256"] != base.sha256
    ):
        raise _bad("the delta is for another base version", "from_sha256")
    changes, remove, replace, insert = d["set"], d["remove"], d["replace"], d["insert"]
    if not isinstance(changes, dict) or not set(changes) <= _SETTABLE:
        raise _bad("set may name only " + ", ".join(sorted(_SETTABLE)), "set")
    if not all(isinstance(x, list) for x in (remove, replace, insert)):
        raise _bad("remove, replace and insert must be lists")
    if max(len(remove), len(replace), len(insert)) > MAX_DELTA_NODES:
        raise _bad("too many node changes")
    value = dict(base.roster_value)
    value.update(changes)
    value["nodes"] = _nodes(base.roster_value["nodes"], remove, replace, insert)
    return {"roster": value, "signatures": doc["signatures"]}


def _id(entry: Any, field: str) -> str:
    node_id = entry.get("node_id") if isinstance(entry, dict) else None
    if not isinstance(node_id, str):
        raise _bad(f"{field} must list node entries", field)
    return node_id


def _nodes(old: list[Any], remove: list[Any], replace: list[Any], insert: list[Any]) -> list[Any]:
    gone = set(remove)
    if len(gone) != len(remove) or not all(isinstance(i, str) for i in gone):
        raise _bad("remove must list distinct node ids", "remove")
    kept = [n for n in old if n["node_id"] not in gone]
    if len(kept) != len(old) - len(gone):
        raise _bad("remove names a node the base does not list", "remove")
    where = {n["node_id"]: i for i, n in enumerate(kept)}
    replaced: set[str] = set()
    for entry in replace:
        node_id = _id(entry, "replace")
        if node_id not in where or node_id in replaced:
            raise _bad("replace must name distinct nodes the base keeps", "replace")
        replaced.add(node_id)
        kept[where[node_id]] = entry
    out: list[Any] = []
    rest = iter(kept)
    added: set[str] = set()
    for item in insert:
        if not isinstance(item, list) or len(item) != 2 or type(item[0]) is not int:
            raise _bad("insert must list [index, entry] pairs", "insert")
        index, entry = item
        node_id = _id(entry, "insert")
        left = len(kept) - (len(out) - len(added))  # kept entries not yet placed
        if node_id in where or node_id in added or not len(out) <= index <= len(out) + left:
            raise _bad("insert must name new nodes at increasing indexes in range", "insert")
        added.add(node_id)
        while len(out) < index:
            out.append(next(rest))
        out.append(entry)
    out.extend(rest)
    return out


def parse_answer(data: bytes) -> Any:
    """A roster answer's bytes parsed strictly (a whole document or a delta)."""
    try:
        return parse_json(data)
    except ProtocolError as exc:
        raise FederationError(FedCode.BAD_ROSTER, f"not strict JSON: {exc.detail}") from None
