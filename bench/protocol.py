"""Envelope build/open rates against raw PyNaCl Ed25519 verification, in the same run.

    python -m bench.protocol [--quick] [--json PATH]

Opening an envelope costs two Ed25519 verifications (outer, inner), one sealed-box open
(an X25519 scalar multiplication) and the parsing and checks around them, so
`open_per_s / verify_per_s` is bounded by about 0.38; the target is >= 0.3. Rates are taken
as the best of several interleaved rounds of process CPU time, so a noisy neighbour on a
shared machine skews both sides alike.

Fairness: every figure gets the same number of rounds, interleaved (build, open,
check_outer, verify, batch open, then again), each round about the same CPU time; the key
resolver and roster checker return precomputed values, as a receiver's roster state does
(a resolver that decoded keys per call would charge the benchmark what a real receiver
does once per roster). `open_per_s` opens envelope bytes; a federation receiver opens the
plain values `parse_batch` returns, so `open_batch_per_s` (envelopes per second through
`parse_batch` of a 50-envelope body and `open_envelope` of each item) and
`open_batch_to_verify` show that path too.

JSON keys: build_per_s, open_per_s, check_outer_per_s, verify_per_s, open_to_verify,
open_batch_per_s, open_batch_to_verify, envelope_bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import nacl.public
import nacl.signing

from protocol import (
    Code,
    MessageType,
    ProtocolError,
    RosterRef,
    Sender,
    build_batch,
    build_envelope,
    canonical_bytes,
    check_outer,
    new_ulid,
    open_envelope,
    parse_batch,
    sha256_b64u,
)

T0 = 1_767_225_600_000
DAY = 86_400_000


def _key(label: str) -> bytes:
    return hashlib.sha256(f"peernet bench {label}".encode()).digest()


SENDER = Sender("agency-a", 1, nacl.signing.SigningKey(_key("a sign")))
RECIPIENT = nacl.public.PrivateKey(_key("b enc"))
ROSTER = RosterRef(version=1, sha256=sha256_b64u(b"bench roster"))
BODY = {
    "incident_ref": "2026-000123",
    "requesting_agency": "agency-a",
    "incident_type": "line_of_duty_death",
    "event_ts": T0 - 3_600_000,
    "affected": {"fire": 24, "dispatch_911": 3},
    "interventions": ["defusing", "debriefing"],
    "window_start_ts": T0,
    "window_end_ts": T0 + 3 * DAY,
    "peers_needed": 4,
    "reporting_location": "STA-7",
    "priority": "urgent",
    "contact": {"role": "coordinator", "phone": "+1 555 0100"},
    "approver": "chief",
    "expires_ts": T0 + 6 * 3_600_000,
}


class _Keys:
    def __init__(self) -> None:
        self._key = bytes(SENDER.signing_key.verify_key)

    def verify_key(self, node_id: str, key_id: str, at_ms: int) -> bytes:
        if node_id != "agency-a" or key_id != "ed25519:1":
            raise ProtocolError(Code.UNKNOWN_SENDER, "bench knows one sender")
        return self._key


class _Roster:
    def check_roster(self, version: int, sha256: str) -> None:
        if (version, sha256) != (ROSTER.version, ROSTER.sha256):
            raise ProtocolError(Code.ROSTER_MISMATCH, "bench knows one roster")


def _build(i: int) -> bytes:
    return build_envelope(
        sender=SENDER,
        to="agency-b",
        recipient_enc_key=bytes(RECIPIENT.public_key),
        msg_type=MessageType.ACTIVATION_REQUEST,
        body=BODY,
        msg_id=new_ulid(T0 + i, hashlib.sha256(i.to_bytes(8, "big")).digest()[:10]),
        created_ts=T0,
        expires_ts=T0 + DAY,
        roster=ROSTER,
    )


def _rate(fn: Callable[[int], object], seconds: float, per_call: int = 1) -> float:
    """Operations per CPU second of `fn` (`per_call` operations per call) over about
    `seconds` of this process's CPU time (CPU rather than wall time: other processes on a
    shared machine stall both sides)."""
    for i in range(20 // per_call + 1):  # warm caches after the previous figure's loop
        fn(i)
    step = max(1, 50 // per_call)
    n, start, elapsed = 0, time.process_time(), 0.0
    while elapsed < seconds:
        for i in range(n, n + step):
            fn(i)
        n += step
        elapsed = time.process_time() - start
    return n * per_call / elapsed


def run(quick: bool) -> dict[str, float]:
    round_s, rounds = (0.4, 5) if quick else (2.0, 7)
    envelopes = [_build(i) for i in range(64)]
    keys, roster = _Keys(), _Roster()
    verify_key = SENDER.signing_key.verify_key
    # Raw verify over a message of the size the outer signature covers.
    message = b"peernet/v1/outer\0" + canonical_bytes({"x": "y" * (len(envelopes[0]) - 100)})
    signature = SENDER.signing_key.sign(message).signature

    def build(i: int) -> object:
        return _build(i)

    def open_(i: int) -> object:
        return open_envelope(
            envelopes[i % 64], me="agency-b", enc_key=RECIPIENT, keys=keys, roster=roster,
            now_ms=T0,
        )  # fmt: skip

    def check(i: int) -> object:
        return check_outer(envelopes[i % 64], keys=keys, roster=roster, now_ms=T0)

    def verify(i: int) -> object:
        return verify_key.verify(message, signature)

    batches = [build_batch(envelopes[:50]), build_batch(envelopes[14:])]

    def open_batch(i: int) -> object:
        return [
            open_envelope(
                item, me="agency-b", enc_key=RECIPIENT, keys=keys, roster=roster, now_ms=T0
            )
            for item in parse_batch(batches[i % 2])
            if isinstance(item, dict)  # as federation.inbox does
        ]

    best = {"build": 0.0, "open": 0.0, "check_outer": 0.0, "verify": 0.0, "open_batch": 0.0}
    fns = {"build": build, "open": open_, "check_outer": check, "verify": verify}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = max(best[name], _rate(fn, round_s / (len(fns) + 1)))
        rate = _rate(open_batch, round_s / (len(fns) + 1), per_call=50)
        best["open_batch"] = max(best["open_batch"], rate)
    return {
        "build_per_s": round(best["build"], 1),
        "open_per_s": round(best["open"], 1),
        "check_outer_per_s": round(best["check_outer"], 1),
        "verify_per_s": round(best["verify"], 1),
        "open_to_verify": round(best["open"] / best["verify"], 3),
        "open_batch_per_s": round(best["open_batch"], 1),
        "open_batch_to_verify": round(best["open_batch"] / best["verify"], 3),
        "envelope_bytes": float(len(envelopes[0])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="peernet protocol benchmark")
    parser.add_argument("--quick", action="store_true", help="finish within a few seconds")
    parser.add_argument("--json", type=Path, help="write the figures as a flat JSON object")
    args = parser.parse_args(argv)
    figures = run(args.quick)
    print(f"{'figure':<20}{'value':>14}")
    for name, value in figures.items():
        print(
            f"{name:<20}{value:>14,.3f}"
            if name.endswith("_to_verify")
            else f"{name:<20}{value:>14,.0f}"
        )
    print("open_to_verify target >= 0.3 (ceiling about 0.38: two verifies + one unseal)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
