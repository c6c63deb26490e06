# Shared by the CI steps that drive a real Gatehouse server (.ci/schemathesis.sh,
# .ci/client.sh): the debug binary with its embedded PostgreSQL cluster in a
# data directory of the step's own, started fresh and stopped at the end.
#
# Source it from the checkout root with these set:
#   STEP  the script's name, for log lines
#   BIN   the server binary
#   OUT   the step's output directory (server.log goes there)
#   DATA  the data directory to start afresh (under OUT)
# then: prepare_server; trap a cleanup that calls stop_server; start_server.
# Sets PORT, BASE, FALLBACK and SERVER_PID.

# The fixed test key of tests/src/server.rs (32 bytes of 0x07, base64).
KEK=BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=
PASSWORD="correct horse battery"

log() { echo "$STEP: $*" >&2; }
die() { log "$*"; exit 1; }

# The launcher keeps the cluster in <data-dir>/postgres, or, when the
# postgres user (as root) cannot reach the data directory, in
# /var/tmp/gatehouse-postgres-<first 6 bytes of sha256(data dir), hex>; a
# fresh run needs both gone.
short_hash() { printf '%s' "$1" | sha256sum | cut -c1-12; }
stop_stale_cluster() {
  local pid_file
  for pid_file in "$DATA/postgres/data/postmaster.pid" "$FALLBACK/data/postmaster.pid"; do
    [ -f "$pid_file" ] || continue
    local pid
    pid=$(head -n1 "$pid_file")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      log "stopping the cluster of an earlier run (postmaster $pid)"
      kill -INT "$pid" || true
      for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
  done
}

# The environment of the server and of `gatehouse admin`, an empty data
# directory (an earlier run's cluster stopped first) and a free port.
prepare_server() {
  # The embedded cluster, not a server someone configured; the key both the
  # server and `gatehouse admin` use; plain log lines.
  unset DATABASE_URL GATEHOUSE_LISTEN GATEHOUSE_DATA_DIR
  export GATEHOUSE_KEK=$KEK NO_COLOR=1

  mkdir -p "$OUT" "$DATA"
  DATA=$(cd "$DATA" && pwd -P)
  FALLBACK=/var/tmp/gatehouse-postgres-$(short_hash "$DATA")
  stop_stale_cluster
  rm -rf "$DATA" "$FALLBACK"
  mkdir -p "$DATA"

  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  BASE=http://127.0.0.1:$PORT
  SERVER_PID=
}

# start_server [serve options...]: starts `$BIN serve` in the background (its
# log in $OUT/server.log) and waits until /readyz answers.
start_server() {
  log "starting $BIN serve on $BASE (data dir $DATA)"
  "$BIN" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" --log-format text "$@" \
    >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!

  local i
  for i in $(seq 240); do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$OUT/server.log" >&2; die "the server exited"; }
    if curl -sf -o /dev/null "$BASE/readyz"; then break; fi
    [ "$i" = 240 ] && { tail -n 30 "$OUT/server.log" >&2; die "the server was not ready in 120 s"; }
    sleep 0.5
  done
  log "ready"
}

# For the EXIT trap: stops the server (which stops its cluster), then removes
# the data directory once the cluster is down.
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    # SIGTERM: the server drains, then stops the embedded cluster.
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 120); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "the server did not stop in 60 s; killing it (its watchdog stops PostgreSQL)"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  # Only when the cluster is down (otherwise leave it to the next run's check).
  if [ ! -f "$DATA/postgres/data/postmaster.pid" ] && [ ! -f "$FALLBACK/data/postmaster.pid" ]; then
    rm -rf "$DATA" "$FALLBACK"
  fi
}
