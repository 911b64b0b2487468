"""OpenDP runs with the "contrib" feature only (DESIGN section 7): never
"honest-but-curious", "floating-point" or any other opt-in that weakens its guarantees."""

from __future__ import annotations

import json
import subprocess
import sys

# Every package and entry point that may touch OpenDP, imported in a fresh interpreter so
# no other test's state counts.
PROBE = """
import json
import node.privacy.release, node.web.app, node.cli, hub.app, hub.stats.estimates
import peernet.cli, bench.privacy
from opendp.mod import GLOBAL_FEATURES
print(json.dumps(sorted(GLOBAL_FEATURES)))
"""


def test_only_contrib_is_enabled() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["contrib"]
