"""requirements/lock.txt (issue 13, item 15): scripts/setup.sh installs from it with
`--require-hashes`, so it must pin every dependency pyproject.toml names (runtime, the dev
extra and the build backend) at a version the specifier allows, each with hashes.
Refresh: `bash scripts/setup.sh --lock`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"


def _pins(text: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes), from pip-compile's output."""
    logical = re.sub(r"\\\n\s*", " ", text)
    pins: dict[str, tuple[str, int]] = {}
    for line in logical.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)(.*)$", line)
        assert m, f"not an exact pin: {line[:80]}"
        pins[canonicalize_name(m.group(1))] = (m.group(2), m.group(3).count("--hash=sha256:"))
    return pins


def _wanted() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = [*project["project"]["dependencies"],
             *project["project"]["optional-dependencies"]["dev"],
             *project["build-system"]["requires"]]
    return [Requirement(r) for r in names]


def test_lock_pins_every_dependency_with_hashes() -> None:
    pins = _pins(LOCK.read_text())
    assert pins, "empty lock"
    for name, (_, hashes) in pins.items():
        assert hashes >= 1, f"{name} has no hash"
    for req in _wanted():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in the lock: run bash scripts/setup.sh --lock"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"lock pins {req.name}=={pins[name][0]}, pyproject wants {req.specifier}"
        )


def test_a_stale_lock_is_caught() -> None:
    text = LOCK.read_text()
    stale = re.sub(r"(?m)^pynacl==\S+", "pynacl==1.5.0", text)
    pins = _pins(stale)
    req = next(r for r in _wanted() if r.name == "pynacl")
    assert not req.specifier.contains(pins["pynacl"][0])
    with pytest.raises(AssertionError, match="not an exact pin"):
        _pins("aiohttp>=3.9\n")


def test_setup_installs_from_the_lock_with_hashes() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "--require-hashes -r \"$LOCK\"" in setup
    assert "--no-deps" in setup
    assert 'cat pyproject.toml "$LOCK" | sha256sum' in setup  # a new lock re-installs
