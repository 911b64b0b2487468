"""Synthetic history for the demo: users, and months of encounters and follow-ups per node.

Everything goes through the node services (`node.accounts.users.create_user`,
`node.records.encounters.create_encounter`, `node.records.followups.complete`), so every record
passes the same validation as one typed on a phone: the fixed vocabularies, the future-time check,
the follow-up rules, the audit entry in the same transaction. Each node's history is replayed
in time order on a `FakeClock` of its own (a `NodeContext` over the running node's
database), so `created_at`, follow-up completion times and audit timestamps fall when they
would have, and on-time rates come out as they would in a real program.

The people supported are synthetic employee numbers (e.g. `RPD-0417`), drawn with repeats
(a few people are seen many times, most once or twice), typed into the service like a
supporter would; the node turns them into keyed pseudonyms. They are never printed, logged
or written anywhere by the demo.

Volumes and mixes are plausible for mid-sized agency peer teams: mostly one-on-one
contacts and follow-ups, a post-critical-incident surge in one month per agency, a small
share of referrals out (EAP first), follow-ups on roughly four contacts in ten, most done
on time.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from federation.clock import FakeClock
from federation.passwords import MIN, PasswordHasher
from node.accounts.users import create_user
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.schemas import EncounterIn, UserIn
from node.core.vocabulary import Role
from node.records.encounters import create_encounter
from node.records.followups import complete
from peernet.demo_network import DemoNetwork, Server

__all__ = [
    "DEMO_PASSWORD",
    "SeedResult",
    "UserSet",
    "create_users",
    "month_starts",
    "seed_node",
]

DEMO_PASSWORD = "peernet-demo-1"  # noqa: S105 (demo logins, printed by --serve)
_PEERS = 4
_PREFIX = {"fire": "MFD", "ems": "EMS", "dispatch_911": "TC", "law_enforcement": "RPD",
           "corrections": "DOC"}

_INTERVENTIONS = {"one_on_one": 55, "follow_up": 20, "family_support": 9, "defusing": 8,
                  "debriefing": 5, "demobilization": 3}
_ACTIVATION = {"peer_outreach": 34, "self": 28, "post_critical_incident": 20,
               "supervisor": 15, "interagency": 3}
_DURATION = {"<15m": 22, "15-30m": 36, "30-60m": 26, "1-2h": 11, ">2h": 5}
_TOPICS = {"work_stress": 40, "critical_incident": 25, "family": 18, "health": 10,
           "grief": 8, "finances": 6, "substance_use": 4, "other": 6, "undisclosed": 8}
_REFERRAL = {"eap": 50, "clinician": 25, "chaplain": 10, "crisis_line": 5, "other": 10}
_OTHER_DISC = ["fire", "ems", "dispatch_911", "law_enforcement", "corrections", "other"]


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass
class UserSet:
    """The demo users of one node (username -> principal) by role."""

    admin: Principal
    coordinator: Principal
    auditor: Principal
    peers: list[Principal]

    def all(self) -> list[Principal]:
        return [self.admin, self.coordinator, self.auditor, *self.peers]


@dataclass
class SeedResult:
    encounters: int = 0
    follow_ups: int = 0
    follow_ups_done: int = 0
    by_month: dict[str, int] = field(default_factory=dict)


def _principal(out: Any) -> Principal:
    return Principal(out.id, out.username, out.role, out.team, via="session")


def _context(server: Server, clock: FakeClock) -> NodeContext:
    from node.core.appkeys import DB

    assert server.app is not None and server.pseudonyms is not None
    return NodeContext(server.app[DB], clock, server.settings, server.pseudonyms,
                       PasswordHasher(MIN), server.keys)


async def create_users(server: Server, clock: Any) -> UserSet:
    """admin, coordinator, auditor and four peer supporters, all on team `main`."""
    fc = FakeClock(clock.now_ms())
    ctx = _context(server, fc)

    async def add(name: str, role: Role) -> Principal:
        data = UserIn(username=name, password=DEMO_PASSWORD, role=role, team="main")
        return _principal(await create_user(ctx, None, data))

    admin = await add("admin", Role.ADMIN)
    coordinator = await add("coordinator", Role.COORDINATOR)
    auditor = await add("auditor", Role.AUDITOR)
    peers = [await add(f"peer{i}", Role.PEER_SUPPORTER) for i in range(1, _PEERS + 1)]
    return UserSet(admin, coordinator, auditor, peers)


def month_starts(now_ms: int, months: int) -> list[date]:
    """First days of the `months` complete calendar months (UTC) before `now_ms`."""
    d = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date().replace(day=1)
    out = []
    for _ in range(months):
        d = (d - timedelta(days=1)).replace(day=1)
        out.append(d)
    return sorted(out)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _plan(
    server: Server, users: UserSet, months: list[date], per_month: int, rng: random.Random,
    now_ms: int,
) -> list[tuple[int, str, dict[str, Any]]]:
    """The node's history as time-ordered events: ("encounter", fields) and ("complete",
    index of the encounter whose follow-up is completed)."""
    disc = server.discipline or "other"
    prefix = _PREFIX.get(disc, "EMP")
    population = [f"{prefix}-{n:04d}" for n in rng.sample(range(100, 9999), 400)]
    # Some people are seen more often than others (weights fall off slowly).
    weights = [1.0 / (1 + i) ** 0.5 for i in range(len(population))]
    surge = rng.randrange(len(months)) if months else -1
    supporters = [users.coordinator, *users.peers]
    events: list[tuple[int, str, dict[str, Any]]] = []
    for mi, start in enumerate(months):
        nxt = (start + timedelta(days=32)).replace(day=1)
        days = (nxt - start).days
        n = max(1, int(rng.gauss(per_month, per_month * 0.15)))
        if mi == surge:
            n = int(n * 1.4)
        for _ in range(n):
            occurred = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(
                days=rng.randrange(days), hours=rng.randrange(24), minutes=rng.randrange(60)
            )
            logged = occurred + timedelta(minutes=rng.randrange(20, 36 * 60))
            if _ms(logged) > now_ms:
                logged = occurred
            by = rng.choice(supporters)
            category = rng.choices(["own_agency", "other_agency", "family", "other_staff"],
                                   weights=[78, 9, 8, 5])[0]
            r_disc = disc if category in ("own_agency", "family") else rng.choice(_OTHER_DISC)
            if category == "other_staff":
                r_disc = "other"
            crit = mi == surge and rng.random() < 0.5
            intervention = (rng.choice(["defusing", "debriefing", "one_on_one"]) if crit
                            else _pick(rng, _INTERVENTIONS))
            if category == "family":
                intervention = "family_support"
            topics = {_pick(rng, _TOPICS) for _ in range(rng.choice([1, 1, 2, 2, 3]))}
            if "undisclosed" in topics:
                topics = {"undisclosed"}
            witness = rng.random() < 0.05
            fields: dict[str, Any] = {
                "occurred_at": occurred,
                "duration_bucket": _pick(rng, _DURATION),
                "activation_type": "post_critical_incident" if crit else _pick(rng, _ACTIVATION),
                "intervention": intervention,
                "recipient_discipline": r_disc,
                "recipient_category": category,
                "recipient": rng.choices(population, weights=weights)[0],
                "topics": topics,
                "referral": _pick(rng, _REFERRAL) if rng.random() < 0.12 else None,
                "notice_given": rng.random() < 0.97,
                "supporter_was_witness": witness,
                "_by": by,
            }
            if crit:
                fields["incident_ref"] = f"{prefix}-{start.year}-{start.month:02d}-CI"
            if rng.random() < 0.42:
                due = occurred.date() + timedelta(days=rng.choice([1, 2, 3, 7, 7, 14]))
                fields["follow_up_due"] = due
                owner = by
                if witness:
                    owner = rng.choice([u for u in supporters if u.user_id != by.user_id])
                    fields["follow_up_owner"] = owner.user_id
                fields["_owner"] = owner
                if rng.random() < 0.82:
                    # Most are done on or before the due day, some late.
                    late = rng.random() < 0.15
                    day = datetime(due.year, due.month, due.day, tzinfo=UTC)
                    when = (day + timedelta(days=rng.randrange(1, 6), hours=rng.randrange(8, 18))
                            if late else day - timedelta(hours=rng.randrange(1, 20)))
                    fields["_done_at"] = max(_ms(when), _ms(logged) + 60_000)
            events.append((_ms(logged), "encounter", fields))
    out: list[tuple[int, str, dict[str, Any]]] = []
    for i, (ts, kind, f) in enumerate(events):
        out.append((ts, kind, {**f, "_index": i}))
        done = f.get("_done_at")
        if done is not None and done <= now_ms:
            out.append((done, "complete", {"_index": i, "_owner": f["_owner"]}))
    out.sort(key=lambda e: (e[0], e[1] != "encounter"))
    return out


async def seed_node(
    server: Server, users: UserSet, net: DemoNetwork, months: list[date], per_month: int,
    seed: int,
) -> SeedResult:
    """Replay the node's synthetic history through its services (see module docstring)."""
    rng = random.Random(seed)
    now = net.clock.now_ms()
    fc = FakeClock(now)
    ctx = _context(server, fc)
    result = SeedResult()
    follow_up_of: dict[int, uuid.UUID] = {}
    for ts, kind, f in _plan(server, users, months, per_month, rng, now):
        fc.set(ts)
        if kind == "encounter":
            data = EncounterIn.model_validate(
                {k: v for k, v in f.items() if not k.startswith("_")}, strict=False
            )
            out = await create_encounter(ctx, f["_by"], data)
            result.encounters += 1
            month = f["occurred_at"].strftime("%Y-%m")
            result.by_month[month] = result.by_month.get(month, 0) + 1
            if out.follow_up_due is not None:
                result.follow_ups += 1
                follow_up_of[f["_index"]] = out.id
        else:
            from sqlalchemy import select

            from node.core.db import FollowUp, table_of

            fu = table_of(FollowUp)
            eid = follow_up_of.get(f["_index"])
            if eid is None:
                continue
            async with ctx.db.read() as conn:
                fid = (await conn.execute(
                    select(fu.c.id).where(fu.c.encounter_id == eid))).scalar_one()
            await complete(ctx, f["_owner"], fid, "done")
            result.follow_ups_done += 1
    return result
