"""Envelopes: round trips, every refusal code, forwarding attacks, mutations, batches."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    MAX_BATCH,
    MAX_ENVELOPE_BYTES,
    SKEW_MS,
    AckStatus,
    ActivationUpdateBody,
    BatchResult,
    Code,
    Context,
    MessageType,
    OuterEnvelope,
    ProtocolError,
    RosterRef,
    Sender,
    Stage,
    b64u,
    build_batch,
    build_batch_response,
    build_envelope,
    build_inner,
    canonical_bytes,
    check_outer,
    pad,
    parse_batch,
    parse_batch_response,
    parse_json,
    refusal,
    seal,
    seal_outer,
    sha256_b64u,
    sign,
    sign_release,
    unb64u,
    unpad,
    unseal,
)
from tests.protocol.factories import (
    DAY,
    ROSTER,
    T0,
    Directory,
    KnownRoster,
    make_envelope,
    make_node,
    open_as,
    sample_bodies,
    seal_plain,
    ulid,
    wrap_ct,
)
from tests.vectors.generate import signing_key

A, B, C = make_node("agency-a"), make_node("agency-b"), make_node("agency-c")


def refused(code: Code, fn: Any, *args: Any, **kwargs: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        fn(*args, **kwargs)
    assert err.value.code is code, err.value
    return err.value


def plaintext_of(envelope: bytes, node: Any) -> bytes:
    """What the recipient decrypts: inner_sig || inner_bytes."""
    return unpad(unseal(unb64u(parse_json(envelope)["ct"]), node.enc))


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("msg_type", list(MessageType), ids=str)
def test_round_trip_every_type(msg_type: MessageType) -> None:
    dst = "hub-east" if msg_type.value in ("activation_status", "aggregate_release") else "agency-b"
    env = make_envelope("agency-a", dst, msg_type, thread_id=ulid(1), in_reply_to=ulid(2))
    assert len(env) <= MAX_ENVELOPE_BYTES
    opened = open_as(env, dst)
    assert opened.inner.type is msg_type
    assert opened.inner.from_ == opened.outer.from_ == "agency-a"
    assert opened.inner.to == opened.outer.to == dst
    assert opened.inner.thread_id == ulid(1) and opened.inner.in_reply_to == ulid(2)
    assert opened.body_json == sample_bodies()[msg_type]
    assert type(opened.body).model_validate(opened.body_json) == opened.body
    # The models built on the fast path equal full validation of the plain values.
    assert OuterEnvelope.model_validate(parse_json(env)) == opened.outer
    assert canonical_bytes(parse_json(env)) == env


def test_body_may_be_a_model_and_is_checked_against_the_type() -> None:
    body = ActivationUpdateBody.model_validate({"stage": "demobilized"})
    opened = open_as(make_envelope(body=body))
    assert opened.body == body and opened.body.stage is Stage.DEMOBILIZED  # type: ignore[attr-defined]
    refused(Code.BAD_BODY, make_envelope, msg_type=MessageType.ACTIVATION_CANCEL, body=body)
    refused(Code.BAD_BODY, make_envelope, body={"stage": "lunch"})
    refused(Code.BAD_BODY, make_envelope, body=["not", "a", "mapping"])


def test_random_libsodium_seal_opens_and_is_fresh_each_time() -> None:
    one, two = make_envelope(), make_envelope()
    assert one != two  # fresh ephemeral key per build
    assert open_as(one).inner_bytes == open_as(two).inner_bytes


def test_check_outer_accepts_parsed_mapping_like_the_relay_sees() -> None:
    env = make_envelope()
    for raw in (env, parse_json(env)):
        outer = check_outer(raw, keys=Directory.default(), roster=KnownRoster(), now_ms=T0)
        assert outer.msg_id == ulid(100) and outer.to == "agency-b"
    # The relay does not need to be the recipient, nor to know the roster.
    check_outer(env, keys=Directory.default(), roster=None, now_ms=T0)


def test_padding_hides_the_exact_length() -> None:
    short = make_envelope(body={"stage": "mobilized"})
    longer = make_envelope(body={"stage": "demobilized"})
    assert len(parse_json(short)["ct"]) == len(parse_json(longer)["ct"])


# --- outer refusals -----------------------------------------------------------------------


def test_freshness_window_edges() -> None:
    env = make_envelope(created_ts=T0, expires_ts=T0 + 1000)
    open_as(env, now_ms=T0 - SKEW_MS)
    open_as(env, now_ms=T0 + 1000 + SKEW_MS)
    refused(Code.FROM_FUTURE, open_as, env, now_ms=T0 - SKEW_MS - 1)
    refused(Code.EXPIRED, open_as, env, now_ms=T0 + 1000 + SKEW_MS + 1)
    refused(
        Code.EXPIRED, check_outer, env, keys=Directory.default(), roster=None, now_ms=T0 + 2 * DAY
    )


def test_expires_before_created_is_malformed() -> None:
    refused(Code.MALFORMED, make_envelope, created_ts=T0, expires_ts=T0 - 1)
    ct = seal(pad(b"x" * 80), B.enc_public)
    env = wrap_ct(A.sender, "agency-b", ct, msg_id=ulid(5), created_ts=T0, expires_ts=T0 - 1)
    refused(Code.MALFORMED, open_as, env)


def test_wrong_recipient() -> None:
    refused(Code.WRONG_RECIPIENT, open_as, make_envelope(dst="agency-b"), "agency-c")


def test_key_resolver_codes_propagate() -> None:
    env = make_envelope()
    keys = Directory.default()
    del keys.keys["agency-a"]
    refused(Code.UNKNOWN_SENDER, open_as, env, keys=keys)
    keys = Directory.default()
    keys.keys["agency-a"] = {"ed25519:9": bytes(32)}
    refused(Code.UNKNOWN_KEY, open_as, env, keys=keys)
    keys = Directory.default()
    keys.revoked.add(("agency-a", "ed25519:1"))
    refused(Code.REVOKED_KEY, open_as, env, keys=keys)


def test_outer_signature_by_another_key() -> None:
    keys = Directory.default()
    keys.keys["agency-a"]["ed25519:1"] = bytes(B.sender.signing_key.verify_key)
    refused(Code.BAD_SIGNATURE, open_as, make_envelope(), keys=keys)


def test_ct_tamper_under_a_valid_outer_signature_is_ct_hash_mismatch() -> None:
    ct = seal(pad(b"x" * 100), B.enc_public)
    env = wrap_ct(A.sender, "agency-b", ct, msg_id=ulid(7), ct_sha256=sha256_b64u(ct + b"!"))
    refused(Code.CT_HASH_MISMATCH, open_as, env)
    refused(
        Code.CT_HASH_MISMATCH, check_outer, env, keys=Directory.default(), roster=None, now_ms=T0
    )


def test_ct_swapped_without_resigning_is_bad_signature() -> None:
    env = parse_json(make_envelope())
    other = parse_json(make_envelope(n=100))
    env["ct"], env["ct_sha256"] = other["ct"], other["ct_sha256"]
    refused(Code.BAD_SIGNATURE, open_as, canonical_bytes(env))


def test_roster_mismatch_only_after_signature() -> None:
    split = RosterRef(version=1, sha256=sha256_b64u(b"other roster"))
    env = make_envelope(roster=split)
    refused(Code.ROSTER_MISMATCH, open_as, env)
    # An unsigned envelope naming another roster is a bad signature, not a split view.
    forged = parse_json(make_envelope())
    forged["roster"]["sha256"] = split.sha256
    refused(Code.BAD_SIGNATURE, open_as, canonical_bytes(forged))


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"v": 2},
        {"v": True},
        {"v": "1"},
        {"msg_id": "not-a-ulid"},
        {"from": "Agency-A"},
        {"created_ts": -1},
        {"created_ts": 1.5},
        {"roster": {"version": 1}},
        {"roster": {"version": 0, "sha256": ROSTER.sha256}},
        {"roster": {"version": 1, "sha256": ROSTER.sha256, "x": 1}},
        {"roster": {"version": 1, "sha256": ROSTER.sha256[:-1] + "B"}},  # non-canonical
        {"ct_sha256": "abc"},
        {"ct": 5},
        {"ct": "not base64url!"},
    ],
    ids=repr,
)
def test_unknown_or_bad_outer_fields_are_malformed(change: dict[str, Any]) -> None:
    obj = parse_json(make_envelope())
    obj.update(change)
    obj.pop("sig")
    signature = sign(A.sender.signing_key, Context.OUTER, json.dumps(obj).encode())
    obj["sig"] = {"key_id": "ed25519:1", "value": b64u(signature)}
    raw = json.dumps(obj).encode()
    refused(Code.MALFORMED, open_as, raw)


@pytest.mark.parametrize(
    "sig",
    [
        None,
        {"key_id": "ed25519:1"},
        {"key_id": "ed25519:01", "value": "A" * 86},
        {"key_id": "ed25519:1", "value": "A" * 85},
        {"key_id": "ed25519:1", "value": "A" * 85 + "B"},  # non-canonical trailing bits
    ],
    ids=repr,
)
def test_bad_sig_objects_are_malformed(sig: Any) -> None:
    obj = parse_json(make_envelope())
    obj["sig"] = sig
    refused(Code.MALFORMED, open_as, canonical_bytes(obj))


def test_missing_field_and_non_object() -> None:
    obj = parse_json(make_envelope())
    del obj["ct_sha256"]
    refused(Code.MALFORMED, open_as, canonical_bytes(obj))
    for raw in (b"[]", b"null", b"{}", b'"x"', b"not json"):
        refused(Code.MALFORMED, open_as, raw)
    refused(Code.MALFORMED, open_as, ["list"])  # type: ignore[arg-type]


def test_oversize_envelopes_are_too_large() -> None:
    big_ct = bytes(MAX_ENVELOPE_BYTES)
    env = wrap_ct(A.sender, "agency-b", big_ct, msg_id=ulid(8))
    assert len(env) > MAX_ENVELOPE_BYTES
    refused(Code.TOO_LARGE, open_as, env)
    refused(Code.TOO_LARGE, open_as, parse_json(env))  # parsed form: canonical size counts
    refused(Code.TOO_LARGE, check_outer, env, keys=Directory.default(), roster=None, now_ms=T0)
    # Whitespace-padded raw bytes over the limit are refused before parsing.
    padded = make_envelope() + b" " * MAX_ENVELOPE_BYTES
    refused(Code.TOO_LARGE, open_as, padded)


def test_building_an_oversize_envelope_is_refused() -> None:
    release = dict(sample_bodies()[MessageType.AGGREGATE_RELEASE]["release"])
    release["cells"] = {f"2025-12|cell-{i:05d}|{'x' * 60}": i for i in range(2000)}
    body = sign_release(release, signing_key=signing_key("agency-a"), key_version=1)
    refused(
        Code.TOO_LARGE, make_envelope, "agency-a", "hub-east", MessageType.AGGREGATE_RELEASE, body
    )


# --- inner refusals -----------------------------------------------------------------------


def _inner(src: Any, to: str, **changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "msg_id": ulid(100),
        "created_ts": T0,
        "expires_ts": T0 + DAY,
        "roster_version": 1,
    }
    fields.update(changes)
    inner_bytes, inner_sig = build_inner(
        sender=src.sender, to=to, msg_type=MessageType.ACTIVATION_UPDATE,
        body={"stage": "mobilized"}, **fields,
    )  # fmt: skip
    return inner_sig + inner_bytes


def _outer(src: Any, to: str, plaintext: bytes, **changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "msg_id": ulid(100),
        "created_ts": T0,
        "expires_ts": T0 + DAY,
        "roster": ROSTER,
    }
    fields.update(changes)
    return seal_outer(
        sender=src.sender,
        to=to,
        recipient_enc_key=make_node(to).enc_public,
        sealed_plaintext=plaintext,
        **fields,
    )


def _signed(src: Any, inner_bytes: bytes) -> bytes:
    return sign(src.sender.signing_key, Context.INNER, inner_bytes) + inner_bytes


def test_surreptitious_forwarding_is_refused() -> None:
    # A sends to B. B decrypts and re-seals A's signed inner to C under B's own outer.
    original = make_envelope("agency-a", "agency-b")
    plaintext = plaintext_of(original, B)
    assert open_as(original).inner_bytes == plaintext[64:]
    forwarded = _outer(B, "agency-c", plaintext)
    err = refused(Code.BAD_INNER_SIGNATURE, open_as, forwarded, "agency-c")
    assert err.code in (Code.SENDER_MISMATCH, Code.BAD_INNER_SIGNATURE)
    # B also re-signs A's inner bytes as its own: the inner still says from A.
    resigned = _outer(B, "agency-c", _signed(B, plaintext[64:]))
    refused(Code.SENDER_MISMATCH, open_as, resigned, "agency-c")


def test_inner_readdressed_is_recipient_mismatch() -> None:
    # A's inner addressed to B, in an outer (validly signed by A) addressed to C.
    env = _outer(A, "agency-c", _inner(A, "agency-b"))
    refused(Code.RECIPIENT_MISMATCH, open_as, env, "agency-c")


@pytest.mark.parametrize(
    "change",
    [{"msg_id": ulid(101)}, {"created_ts": T0 + 1}, {"expires_ts": T0 + 2 * DAY},
     {"roster_version": 2}],
    ids=repr,
)  # fmt: skip
def test_layer_mismatch(change: dict[str, Any]) -> None:
    refused(Code.LAYER_MISMATCH, open_as, _outer(A, "agency-b", _inner(A, "agency-b", **change)))


def test_undecryptable_and_bad_padding() -> None:
    # Sealed to C's key, delivered to B.
    ct = seal(pad(_inner(A, "agency-b")), C.enc_public)
    refused(Code.UNDECRYPTABLE, open_as, wrap_ct(A.sender, "agency-b", ct, msg_id=ulid(100)))
    # Garbage ciphertext that is too short to be a sealed box.
    refused(Code.UNDECRYPTABLE, open_as, wrap_ct(A.sender, "agency-b", b"xx", msg_id=ulid(100)))
    # Not padded at all / padded to a wrong block / padding marker missing.
    inner = _inner(A, "agency-b")
    assert len(inner) % 512
    for plaintext in (
        inner,  # not padded
        inner + bytes(512 - len(inner) % 512),  # zeros without the 0x80 marker
        pad(inner) + bytes(512),  # a whole extra block: not the minimal padding
    ):
        env = wrap_ct(A.sender, "agency-b", seal_plain(plaintext, "agency-b"), msg_id=ulid(100))
        refused(Code.BAD_PADDING, open_as, env)


def test_short_plaintext_is_bad_inner_signature() -> None:
    refused(Code.BAD_INNER_SIGNATURE, open_as, _outer(A, "agency-b", b"short"))


def test_inner_not_canonical_malformed_unknown_type_bad_body() -> None:
    base = parse_json(_inner(A, "agency-b")[64:])
    cases: list[tuple[bytes, Code]] = [
        (json.dumps(base).encode(), Code.NOT_CANONICAL),
        (
            json.dumps(base, sort_keys=True, separators=(",", ":")).encode() + b" ",
            Code.NOT_CANONICAL,
        ),
        (b'{"v":1.0}', Code.MALFORMED),
        (b"[1,2]", Code.MALFORMED),
        (b"\xff\xfe", Code.MALFORMED),
        (canonical_bytes(dict(base, extra=None)), Code.MALFORMED),
        (canonical_bytes({k: v for k, v in base.items() if k != "thread_id"}), Code.MALFORMED),
        (canonical_bytes(dict(base, v=2)), Code.MALFORMED),
        (canonical_bytes(dict(base, type=7)), Code.MALFORMED),
        (canonical_bytes(dict(base, thread_id="x")), Code.MALFORMED),
        (canonical_bytes(dict(base, body=[])), Code.MALFORMED),
        (canonical_bytes(dict(base, type="gossip")), Code.UNKNOWN_TYPE),
        (canonical_bytes(dict(base, body={})), Code.BAD_BODY),
        (canonical_bytes(dict(base, body={"stage": "Mobilized"})), Code.BAD_BODY),
        (canonical_bytes(dict(base, body={"stage": "mobilized", "x": 1})), Code.BAD_BODY),
        (canonical_bytes(dict(base, type="ack")), Code.BAD_BODY),
    ]
    for inner_bytes, code in cases:
        refused(code, open_as, _outer(A, "agency-b", _signed(A, inner_bytes)))


# --- mutations ----------------------------------------------------------------------------


def _mutations(env: bytes, positions: list[int]) -> list[bytes]:
    rng = random.Random(1234)  # noqa: S311  (test data, not crypto)
    out = []
    for pos in positions:
        mutated = bytearray(env)
        mutated[pos] ^= rng.randrange(1, 256)
        out.append(bytes(mutated))
    return out


def test_every_single_byte_mutation_is_refused() -> None:
    env = make_envelope()
    keys, roster = Directory.default(), KnownRoster()
    for mutated in _mutations(env, list(range(len(env)))):
        with pytest.raises(ProtocolError):
            open_as(mutated, keys=keys, roster=roster)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_byte_replacement_is_refused(data: st.DataObject) -> None:
    env = ENVELOPE_FOR_MUTATION
    pos = data.draw(st.integers(0, len(env) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != env[pos]))
    mutated = env[:pos] + bytes([new]) + env[pos + 1 :]
    with pytest.raises(ProtocolError):
        open_as(mutated)
    with pytest.raises(ProtocolError):
        check_outer(mutated, keys=Directory.default(), roster=KnownRoster(), now_ms=T0)


ENVELOPE_FOR_MUTATION = make_envelope(msg_type=MessageType.ACTIVATION_REQUEST)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_only_raises_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        open_as(data)


# --- batches ------------------------------------------------------------------------------


def test_batch_round_trip() -> None:
    envs = [make_envelope(n=i) for i in range(3)]
    body = build_batch(envs)
    assert json.loads(body) == {"envelopes": [json.loads(e) for e in envs]}
    items = parse_batch(body)
    assert [open_as(item).outer.msg_id for item in items] == [ulid(i) for i in range(3)]
    assert canonical_bytes(parse_json(body)) == body
    assert parse_batch(build_batch([])) == []


def test_batch_of_51_is_refused() -> None:
    env = make_envelope()
    refused(Code.BATCH_TOO_LARGE, build_batch, [env] * (MAX_BATCH + 1))
    body = b'{"envelopes":[' + b",".join([env] * (MAX_BATCH + 1)) + b"]}"
    refused(Code.BATCH_TOO_LARGE, parse_batch, body)
    assert len(parse_batch(build_batch([env] * MAX_BATCH))) == MAX_BATCH


@pytest.mark.parametrize(
    "body",
    [b"[]", b"{}", b'{"envelopes":{}}', b'{"envelopes":[],"x":1}', b"nope", b'{"envelopes":[1.5]}'],
)
def test_malformed_batches(body: bytes) -> None:
    refused(Code.MALFORMED, parse_batch, body)


def test_build_batch_refuses_non_envelopes() -> None:
    refused(Code.MALFORMED, build_batch, [b"[1]"])
    refused(Code.MALFORMED, build_batch, ["{}"])  # type: ignore[list-item]


def test_batch_items_are_checked_one_by_one() -> None:
    items = parse_batch(b'{"envelopes":[{"msg_id":"' + ulid(3).encode() + b'"},7]}')
    results = []
    for item in items:
        try:
            open_as(item)  # type: ignore[arg-type]
        except ProtocolError as exc:
            results.append(refusal(item, exc.code))
    assert [(r.msg_id, r.code) for r in results] == [
        (ulid(3), Code.MALFORMED),
        (None, Code.MALFORMED),
    ]


def test_batch_response_round_trip() -> None:
    results = [
        BatchResult.model_validate({"msg_id": ulid(1), "status": "accepted", "code": None}),
        BatchResult.model_validate({"msg_id": ulid(2), "status": "duplicate", "code": None}),
        refusal({"msg_id": "bad"}, Code.BAD_SIGNATURE),
    ]
    body = build_batch_response(results)
    assert json.loads(body)["results"][2] == {
        "msg_id": None,
        "status": "refused",
        "code": "bad_signature",
    }
    assert parse_batch_response(body, expected=3) == results
    assert parse_batch_response(body)[0].status is AckStatus.ACCEPTED
    refused(Code.MALFORMED, parse_batch_response, body, expected=2)
    for bad in (
        b'{"results":[{"msg_id":null,"status":"refused","code":null}]}',
        b'{"results":[{"msg_id":null,"status":"accepted","code":"malformed"}]}',
        b'{"results":[{"msg_id":null,"status":"refused","code":"nope"}]}',
        b'{"results":[],"x":1}',
        b"[]",
    ):
        refused(Code.MALFORMED, parse_batch_response, bad)


def test_sender_key_id_is_in_the_outer_signature() -> None:
    old = Sender("agency-a", 0, make_node("agency-a", 0).sender.signing_key)
    env = build_envelope(
        sender=old,
        to="agency-b",
        recipient_enc_key=B.enc_public,
        msg_type=MessageType.ACTIVATION_UPDATE,
        body={"stage": "on_scene"},
        msg_id=ulid(9),
        created_ts=T0,
        expires_ts=T0 + DAY,
        roster=ROSTER,
    )
    assert parse_json(env)["sig"]["key_id"] == "ed25519:0"
    refused(Code.REVOKED_KEY, open_as, env)


OUTER_KEYS = ["v", "msg_id", "from", "to", "created_ts", "expires_ts", "roster", "ct"]
garbage_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*OUTER_KEYS, "ct_sha256", "sig", "x"]), garbage_values))
def test_garbage_mappings_only_raise_protocol_error(obj: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        open_as(obj)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([*OUTER_KEYS, "ct_sha256", "sig"]), garbage_values)
def test_any_single_field_replaced_is_refused(field: str, value: Any) -> None:
    obj = parse_json(ENVELOPE_FOR_MUTATION)
    if obj[field] == value:
        return
    obj[field] = value
    with pytest.raises(ProtocolError):
        open_as(obj)


@pytest.mark.parametrize("ct", ["\x80", 'a"b', "a\\b", "é" * 4, "AAAA\n"])
def test_ct_that_is_not_base64url_text_is_malformed_on_the_mapping_path(ct: str) -> None:
    obj = parse_json(ENVELOPE_FOR_MUTATION)
    obj["ct"] = ct
    with pytest.raises(ProtocolError) as err:
        open_as(obj)
    assert err.value.code is Code.MALFORMED
