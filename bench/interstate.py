"""Interstate benchmark (issue 19): the largest state's roster, its deltas, the interstate
fan-out and the national query.

    python -m bench.interstate [--quick] [--json PATH]

Roster (this module): a 2,600-node roster (the largest state) built and signed with the
real board code (`federation.board.BoardDir`: init with a 2-of-3 board, the draft edited,
two members sign, `combine` checks and writes version 1), then a version 2 that changes
one node (a key rotation, `add-node --replace`).

- `roster_verify_ms_2600`: the full check a server makes of a fetched roster, from the
  document's bytes: strict parse and schema (`parse_signed_roster`), the acceptance rules
  under the pinned board (`RosterState.offer`: thresholds of the pinned and the roster's
  own board, dates) and adoption (the node index). The median of several runs (wall clock;
  `roster_verify_cpu_ms_2600` the median CPU time, steadier on a shared host); goal < 500.
- `roster_delta_bytes_ratio`: bytes of the delta serving version 2 to a server holding
  version 1 (`federation.roster_delta`) / bytes of the whole version-2 document; goal
  < 0.01. The delta is applied and the rebuilt document checked to be version 2's bytes.

Fan-out and national query belong to other modules: `measure_interstate_fanout` and
`measure_national_query` call `bench.interstate_fanout.measure(quick)` and
`bench.interstate_national.measure(quick)` when those modules exist (a missing one is
skipped with a note). `machine_ref_ms` is the yardstick of `bench.federation_fanout`
(before and after; the figures scale with it on a shared host).

The scale simulation (50 networks, 70,000 agencies, a few minutes) is its own command:
`python -m bench.interstate_scale [--quick] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from federation.board import BoardDir
from federation.board_keys import load_board_key
from federation.clock import FakeClock
from federation.roster import NodeEntry, SignedRoster, parse_signed_roster
from federation.roster_delta import apply_delta, make_delta, parse_answer
from federation.roster_state import RosterState
from protocol.encoding import b64u

STATE_NODES = 2_600
T0 = 1_767_225_600_000
_PASSPHRASE = "interstate bench passphrase"  # noqa: S105 (a throwaway board)


def node_value(i: int, key_version: int = 1) -> dict[str, Any]:
    """A realistic agency entry (fresh keys; disciplines, one of 40 regions)."""
    node_id = f"agency-{i:05d}"
    return {
        "node_id": node_id,
        "name": f"Agency {i:05d} Fire and EMS",
        "disciplines": ["fire", "ems"] if i % 3 else ["law_enforcement"],
        "region": f"region-{i % 40}",
        "roles": ["agency"],
        "endpoint": f"https://{node_id}.example.org",
        "sign_keys": {f"ed25519:{key_version}": {
            "key": b64u(bytes(SigningKey.generate().verify_key)), "valid_until": None}},
        "old_sign_keys": {},
        "enc_key": b64u(bytes(PrivateKey.generate().public_key)),
    }


def _sign_and_combine(board: BoardDir, now: int) -> SignedRoster:
    keys = [load_board_key(board.root / "keys" / f"board-key-{i}.json", _PASSPHRASE)
            for i in (1, 2)]
    return board.combine([board.sign(k, now) for k in keys], now)


def build_state_rosters(root: Path, n: int = STATE_NODES) -> tuple[BoardDir, SignedRoster,
                                                                   SignedRoster]:
    """A board in `root` (2 of 3), version 1 listing `n` agencies, and version 2 in which
    one of them rotated its key (each signed by two members and combined)."""
    board = BoardDir(root)
    board.init(keys=3, threshold=2, passphrase=_PASSPHRASE, now_ms=T0)
    draft = board.draft(T0)
    board._edit(draft, nodes=[node_value(i) for i in range(n)])  # one edit, not n add-nodes
    v1 = _sign_and_combine(board, T0)
    rotated = NodeEntry.model_validate(node_value(n // 2, key_version=2))
    board.add_node(rotated, T0 + 3_600_000, replace=True)
    v2 = _sign_and_combine(board, T0 + 3_600_000)
    return board, v1, v2


def verify_once(data: bytes, board: BoardDir, now: int) -> float:
    """Milliseconds of the full check of one fetched document (see module docstring)."""
    return _verify_timed(data, board, now)[0]


def _verify_timed(data: bytes, board: BoardDir, now: int) -> tuple[float, float]:
    """(wall-clock, CPU) milliseconds of `verify_once`."""
    pin = board.pin()
    t0, c0 = time.perf_counter(), time.process_time()
    signed = parse_signed_roster(data)
    RosterState(FakeClock(now), pin).offer([signed])
    return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000


def measure_roster(quick: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="peernet-interstate-") as d:
        board, v1, v2 = build_state_rosters(Path(d) / "board")
        doc = v1.to_bytes()
        timed = [_verify_timed(doc, board, T0) for _ in range(7 if quick else 21)]
        runs, cpu = [w for w, _ in timed], [c for _, c in timed]
        gc.collect()
        delta = make_delta(v1, v2)
        if delta is None:
            raise SystemExit("no delta for a one-node change")
        rebuilt = apply_delta(v1, parse_answer(delta))
        if rebuilt.to_bytes() != v2.to_bytes():
            raise SystemExit("the delta did not rebuild version 2 byte for byte")
        whole = len(v2.to_bytes())
    print(f"roster: {STATE_NODES} nodes, {len(doc):,} bytes; delta {len(delta):,} bytes")
    return {
        "roster_verify_ms_2600": round(statistics.median(runs), 1),
        "roster_verify_ms_2600_min": round(min(runs), 1),
        "roster_verify_cpu_ms_2600": round(statistics.median(cpu), 1),
        "roster_document_bytes_2600": float(whole),
        "roster_delta_bytes": float(len(delta)),
        "roster_delta_bytes_ratio": round(len(delta) / whole, 5),
    }


def _other(module: str, quick: bool) -> dict[str, float]:
    """`bench.<module>.measure(quick)` when that module exists (others write it)."""
    try:
        mod = importlib.import_module(f"bench.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.{module}":
            raise
        print(f"note: bench/{module}.py does not exist yet; skipped")
        return {}
    result: dict[str, float] = mod.measure(quick)
    return result


def measure_interstate_fanout(quick: bool) -> dict[str, float]:
    """`interstate_fanout_p95_ms_50` (request to 50 agencies of another network through two
    hubs until every offer is back): `bench.interstate_fanout.measure`."""
    return _other("interstate_fanout", quick)


def measure_national_query(quick: bool) -> dict[str, float]:
    """`national_query_p95_ms` (50 states x 12 months): `bench.interstate_national.measure`."""
    return _other("interstate_national", quick)


def main(argv: list[str] | None = None) -> int:
    from bench.federation_fanout import machine_ref_ms

    parser = argparse.ArgumentParser(prog="python -m bench.interstate")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    ref_before = machine_ref_ms()
    figures: dict[str, float] = {}
    figures.update(measure_roster(args.quick))
    figures.update(measure_interstate_fanout(args.quick))
    figures.update(measure_national_query(args.quick))
    figures["machine_ref_ms"] = round(max(ref_before, machine_ref_ms()), 1)
    width = max(len(k) for k in figures)
    print(f"{'figure':<{width}}  value")
    for k, v in figures.items():
        print(f"{k:<{width}}  {v}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
