# Sourced by scripts/demo and scripts/test: make .venv with peernet and its dev tools, from
# requirements/lock.txt (every package pinned with its hashes; pip refuses anything else),
# then peernet itself (editable, no dependencies of its own choosing). Re-installs only when
# pyproject.toml or the lock changed since the last install.
#
# Refresh the lock (newest versions pyproject.toml allows, with hashes; pip-tools from PyPI
# in a throwaway venv): bash scripts/setup.sh --lock
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
LOCK=requirements/lock.txt

if [ "${BASH_SOURCE[0]}" = "$0" ] && [ "${1:-}" = "--lock" ]; then
  tools="$(mktemp -d)"
  trap 'rm -rf "$tools"' EXIT
  "$PY" -m venv "$tools"
  "$tools/bin/python" -m pip install -q pip-tools
  CUSTOM_COMPILE_COMMAND="bash scripts/setup.sh --lock" "$tools/bin/pip-compile" -q --upgrade \
    --generate-hashes --extra dev --strip-extras --all-build-deps --allow-unsafe \
    --no-emit-index-url --no-emit-find-links -o "$LOCK" pyproject.toml
  echo "setup: wrote $LOCK; run ./scripts/test, then commit it" >&2
  exit 0
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.peernet-installed"
want="$(cat pyproject.toml "$LOCK" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing peernet and its tools into .venv (from $LOCK)" >&2
  .venv/bin/python -m pip install -q --require-hashes -r "$LOCK"
  # setuptools (the build backend) comes from the lock too, hence no build isolation.
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  if ! .venv/bin/python -m pip check >/dev/null; then
    .venv/bin/python -m pip check >&2 || true
    echo "setup: $LOCK does not cover pyproject.toml: run bash scripts/setup.sh --lock" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

apt_install() {
  # Debian packages the tests need; only possible as root.
  if [ "$(id -u)" = "0" ]; then
    if [ ! -f /tmp/.peernet-apt-updated ]; then
      apt-get update -qq >/dev/null && touch /tmp/.peernet-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "setup: please install: $*" >&2
    return 1
  fi
}

install_test_oidc_provider() {
  # Node.js and the real OpenID provider the sign-in tests start (tests/oidc_provider:
  # panva/oidc-provider from its committed package-lock.json). scripts/test only.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "setup: installing Node.js for the OpenID Connect tests" >&2
    apt_install nodejs npm || return 1
  fi
  local dir=tests/oidc_provider
  local stamp="$dir/node_modules/.peernet-installed"
  local want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing the test OpenID provider (npm ci in $dir)" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && echo "$want" > "$stamp"
  fi
}
