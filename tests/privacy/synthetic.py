"""Synthetic encounter columns for the privacy tests and the benchmark (no real records)."""

from __future__ import annotations

import numpy as np

from node.privacy.noise import EncounterColumns
from node.privacy.schema import FAMILIES

N_ENC = len(FAMILIES[0].keys)  # 180
_PER_DISC_ENC = N_ENC // 6


def synthetic_columns(n: int, people: int, seed: int = 0) -> EncounterColumns:
    """`n` encounters of `people` responders in one month: about 20% refer out, half have a
    follow-up, 70% of those done on time."""
    rng = np.random.default_rng(seed)
    person = rng.integers(0, max(people, 1), n, dtype=np.int64)
    order = rng.integers(0, 2_592_000_000, n, dtype=np.int64)
    enc = rng.integers(0, N_ENC, n, dtype=np.int64)
    disc = enc // _PER_DISC_ENC
    ref = np.where(rng.random(n) < 0.2, disc * 5 + rng.integers(0, 5, n), -1).astype(np.int64)
    fu = np.where(rng.random(n) < 0.5, disc, -1).astype(np.int64)
    fok = np.where((fu >= 0) & (rng.random(n) < 0.7), disc, -1).astype(np.int64)
    return EncounterColumns(person, order, enc, ref, fu, fok)
