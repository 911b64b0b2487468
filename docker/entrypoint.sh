#!/bin/sh
# peernet container entrypoint. It runs exactly the commands of the README section
# "Running a real node and hub on PostgreSQL" (tests/docker checks that both name the same
# `peernet` commands, and runs this script against a real PostgreSQL).
#
#   entrypoint.sh setup           one-shot: board keys, hub and node init, node info, board
#                                 listing, threshold signatures, roster check and install
#   entrypoint.sh hub             serve the hub
#   entrypoint.sh node NODE_ID    serve one agency node
#   entrypoint.sh peernet ARGS... any other peernet command
#
# Configuration (environment):
#   PEERNET_DATA                  shared data directory (default /var/lib/peernet)
#   PEERNET_NODES                 "node-id:discipline:region ..." (setup)
#   PEERNET_HUB_DB_URL            hub database, postgresql://...
#   PEERNET_NODE_DB_TEMPLATE      node database URL with {db} for the node id (- becomes _)
#   PEERNET_HUB_PUBLIC_URL        where nodes reach the hub (default http://hub:8090)
#   PEERNET_NODE_URL_TEMPLATE     where peers reach a node, {node} for its id
#                                 (default http://{node}:8080)
#   PEERNET_LISTEN_HOST           bind address (default 0.0.0.0)
#   PEERNET_HUB_PORT, PEERNET_NODE_PORT   listen ports (default 8090, 8080)
#   PEERNET_BOARD_PASSPHRASE, PEERNET_HUB_PASSPHRASE, PEERNET_PASSPHRASE   key passphrases
#   PEERNET_ADMIN_PASSWORD        first admin password of each node (setup)
#   PEERNET_HUB_OPERATOR_TOKEN    the hub's break-glass operator token (hub)
#   PEERNET_BIN                   the peernet command (default: peernet)
set -eu

PEERNET="${PEERNET_BIN:-peernet}"
DATA="${PEERNET_DATA:-/var/lib/peernet}"
HOST="${PEERNET_LISTEN_HOST:-0.0.0.0}"
HUB_PORT="${PEERNET_HUB_PORT:-8090}"
NODE_PORT="${PEERNET_NODE_PORT:-8080}"
NODE_URL_TEMPLATE="${PEERNET_NODE_URL_TEMPLATE:-}"
[ -n "$NODE_URL_TEMPLATE" ] || NODE_URL_TEMPLATE='http://{node}:8080'
BOARD="$DATA/board"
ROSTER="$BOARD/rosters/roster-000001.json"

pn() {
  # shellcheck disable=SC2086  # PEERNET may be a command with arguments
  $PEERNET "$@"
}

need() {
  for name in "$@"; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
      echo "entrypoint: set $name" >&2
      exit 2
    fi
  done
}

setup() {
  need PEERNET_NODES PEERNET_HUB_DB_URL PEERNET_NODE_DB_TEMPLATE PEERNET_BOARD_PASSPHRASE \
    PEERNET_HUB_PASSPHRASE PEERNET_PASSPHRASE PEERNET_ADMIN_PASSWORD
  if [ -f "$ROSTER" ]; then
    echo "entrypoint: already set up ($ROSTER exists)"
    return 0
  fi
  mkdir -p "$DATA"

  # 1. The state board: keys sealed under PEERNET_BOARD_PASSPHRASE, threshold 2 of 3.
  pn board init --dir "$BOARD" --keys 3 --threshold 2

  # 2. The hub: keys, config (board keys pinned from board.json), hub-info.json.
  pn hub init --config "$DATA/hub/hub.toml" --hub-id state-hub --name "State hub" \
    --data-dir "$DATA/hub" --db-url "$PEERNET_HUB_DB_URL" \
    --host "$HOST" --port "$HUB_PORT" \
    --public-url "${PEERNET_HUB_PUBLIC_URL:-http://hub:8090}" --board "$BOARD/board.json"
  pn board add-node --dir "$BOARD" --info "$DATA/hub/hub-info.json"

  # 3. Each agency node: pinned to the board, pointed at the hub, listed by the board.
  keys="$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["keys"]))' "$BOARD/board.json")"
  threshold="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["threshold"])' "$BOARD/board.json")"
  for spec in $PEERNET_NODES; do
    node_id="${spec%%:*}"; rest="${spec#*:}"
    discipline="${rest%%:*}"; region="${rest#*:}"
    db="$(echo "$node_id" | tr '-' '_')"
    db_url="$(echo "$PEERNET_NODE_DB_TEMPLATE" | sed "s|{db}|$db|g")"
    public_url="$(echo "$NODE_URL_TEMPLATE" | sed "s|{node}|$node_id|g")"
    mkdir -p "$DATA/$node_id"
    printf '%s\n' "$PEERNET_ADMIN_PASSWORD" | \
      PEERNET_PUBLIC_URL="$public_url" \
      PEERNET_HUB_URL="${PEERNET_HUB_PUBLIC_URL:-http://hub:8090}" \
      PEERNET_BOARD_KEYS="$keys" PEERNET_BOARD_THRESHOLD="$threshold" \
      pn node init --config "$DATA/$node_id/node.toml" --node-id "$node_id" \
        --name "$node_id" --data-dir "$DATA/$node_id" --db-url "$db_url" \
        --discipline "$discipline" --region "$region" \
        --host "$HOST" --port "$NODE_PORT" --admin admin --password-stdin
    pn node public-info --config "$DATA/$node_id/node.toml" --out "$DATA/$node_id/node-info.json"
    pn board add-node --dir "$BOARD" --info "$DATA/$node_id/node-info.json"
  done

  # 4. Two of the three board key holders sign; combine checks before it writes.
  pn board sign --dir "$BOARD" --key "$BOARD/keys/board-key-1.json" --out "$BOARD/signature-1.json"
  pn board sign --dir "$BOARD" --key "$BOARD/keys/board-key-2.json" --out "$BOARD/signature-2.json"
  pn board combine --dir "$BOARD" "$BOARD/signature-1.json" "$BOARD/signature-2.json"

  # 5. Check the roster against the pinned board, then distribute it: the hub installs it,
  #    nodes fetch it from the hub when they start.
  pn roster verify "$ROSTER" --pin "$BOARD/board.json"
  pn hub install-roster --config "$DATA/hub/hub.toml" "$ROSTER"
}

case "${1:-}" in
  setup)
    setup
    ;;
  hub)
    exec $PEERNET hub serve --config "$DATA/hub/hub.toml"
    ;;
  node)
    [ -n "${2:-}" ] || { echo "entrypoint: node needs a node id" >&2; exit 2; }
    exec $PEERNET node serve --config "$DATA/$2/node.toml"
    ;;
  peernet)
    shift
    exec $PEERNET "$@"
    ;;
  *)
    echo "usage: entrypoint.sh setup | hub | node NODE_ID | peernet ARGS..." >&2
    exit 2
    ;;
esac
