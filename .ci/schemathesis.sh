#!/usr/bin/env bash
# Contract fuzzing: run schemathesis against /openapi.json of a real
# Gatehouse server (the debug binary built by `cargo test`, its embedded
# PostgreSQL), once authenticated as an organisation owner and once without
# credentials, and as the gateway on its own operations. Fails when
# schemathesis finds a failure.
#
# Usage: .ci/schemathesis.sh   (from anywhere; .ci/run calls it after the tests)
#
# Environment (all optional):
#   GATEHOUSE_BIN                 the server binary     (target/debug/gatehouse)
#   SCHEMATHESIS                  the schemathesis CLI  (target/ci-venv/bin/schemathesis)
#   SCHEMATHESIS_MAX_EXAMPLES     test cases per operation and phase (20)
#   SCHEMATHESIS_SEED             a seed, to reproduce a run (random otherwise; printed)
#   SCHEMATHESIS_TIMEOUT          seconds each of the two runs may take at most (110)
#
# Output (kept after the run): target/schemathesis/{openapi.json,server.log,
# owner.txt,anonymous.txt,owner/junit.xml,anonymous/junit.xml}; each failure
# in the .txt files comes with a curl command that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BIN=${GATEHOUSE_BIN:-$ROOT/target/debug/gatehouse}
ST=${SCHEMATHESIS:-$ROOT/target/ci-venv/bin/schemathesis}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-20}
RUN_TIMEOUT=${SCHEMATHESIS_TIMEOUT:-110}
OUT=$ROOT/target/schemathesis
DATA=$OUT/data
STEP=schemathesis.sh
# log, die, KEK, PASSWORD and the server's start and stop.
. "$ROOT/.ci/lib.sh"

[ -x "$BIN" ] || die "no server binary at $BIN (run cargo test --workspace --locked first)"
[ -x "$ST" ] || die "no schemathesis at $ST (.ci/run installs it)"
# Absolute: the runs below start it from another directory.
ST=$(cd "$(dirname "$ST")" && pwd)/$(basename "$ST")
command -v curl >/dev/null || die "curl is needed"
command -v jq >/dev/null || die "jq is needed"

prepare_server
rm -rf "$OUT/owner" "$OUT/anonymous" "$OUT/owner.txt" "$OUT/anonymous.txt"

ST_PID=
cleanup() {
  local rc=$?
  if [ -n "$ST_PID" ] && kill -0 "$ST_PID" 2>/dev/null; then
    kill -INT "$ST_PID" 2>/dev/null || true
    wait "$ST_PID" 2>/dev/null || true
  fi
  stop_server
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --read-wait-ms: schemathesis sends Gatehouse-Min-Position far past the log
# head; each such request waits this long before its 503.
# A gateway token, for the gateway's own run below.
GATEWAY_TOKEN=fuzz-gateway-$RANDOM$RANDOM
GATEHOUSE_GATEWAY_TOKEN=$GATEWAY_TOKEN start_server --read-wait-ms 500
curl -sf "$BASE/openapi.json" -o "$OUT/openapi.json" || die "GET /openapi.json failed"

# call METHOD PATH BODY [TOKEN]: prints the response body; fails unless 2xx.
call() {
  local method=$1 path=$2 body=$3 token=${4:-} out status
  local -a auth=()
  [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
  out=$(mktemp)
  status=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "${auth[@]}" \
    -H 'Content-Type: application/json' --data "$body" "$BASE$path")
  if [ "${status:0:1}" != 2 ]; then
    log "$method $path -> $status: $(cat "$out")"
    rm -f "$out"
    return 1
  fi
  cat "$out"
  rm -f "$out"
}
sign_up_and_in() {
  call POST /v1/users "$(jq -n --arg e "$1" --arg p "$PASSWORD" '{email: $e, name: "Fuzz", password: $p}')" >/dev/null
  call POST /v1/sessions "$(jq -n --arg e "$1" --arg p "$PASSWORD" '{email: $e, password: $p}')" | jq -er .token
}

# Proves EMAIL's address with the token of the verification mail the server
# wrote under its data directory (no --smtp-url: .eml files), signed in as
# the account (TOKEN), as the link requires.
verify_email() {
  local token= i
  for i in $(seq 200); do
    token=$(python3 "$ROOT/.ci/mail_token.py" "$DATA/mail" "$1")
    [ -n "$token" ] && break
    sleep 0.1
  done
  [ -n "$token" ] || die "no verification mail to $1 under $DATA/mail"
  call POST /v1/email-verifications "$(jq -n --arg t "$token" '{token: $t}')" "$2" >/dev/null
}

# Platform staff: sign up, prove the address, then `gatehouse admin
# create-staff` over the same data dir (it reuses the running cluster and
# leaves it running).
STAFF_EMAIL=staff@fuzz.example.com
STAFF_TOKEN=$(sign_up_and_in "$STAFF_EMAIL")
verify_email "$STAFF_EMAIL" "$STAFF_TOKEN"
"$BIN" admin --data-dir "$DATA" create-staff --email "$STAFF_EMAIL" >&2
for i in $(seq 200); do
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $STAFF_TOKEN" "$BASE/v1/staff/queue")
  [ "$status" = 200 ] && break
  [ "$i" = 200 ] && die "$STAFF_EMAIL did not become staff (GET /v1/staff/queue -> $status)"
  sleep 0.1
done

# The owner's workspace: an org with the developer terms accepted and
# platform.api on its plan (as TestServer::workspace does), and one app.
OWNER_TOKEN=$(sign_up_and_in owner@fuzz.example.com)
ORG=$(call POST /v1/orgs '{"slug": "fuzz-org", "name": "Fuzz org"}' "$OWNER_TOKEN" | jq -er .id)
TERMS=$(curl -sf "$BASE/v1/developer-terms" | jq -er .version)
call POST "/v1/orgs/$ORG/developer-terms/accept" "$(jq -n --arg v "$TERMS" '{version: $v}')" "$OWNER_TOKEN" >/dev/null
call PUT "/v1/orgs/$ORG/plan" '{
  "plan": "pro", "modules": ["platform.api"], "monthly_call_limit": 250000,
  "subscription_state": "active",
  "billing_window_start": "2026-11-01T00:00:00Z", "billing_window_end": "2026-12-01T00:00:00Z"
}' "$STAFF_TOKEN" >/dev/null
APP=$(call POST "/v1/orgs/$ORG/apps" '{"name": "Fuzz app", "slug": "fuzz-app"}' "$OWNER_TOKEN" | jq -er .id)
log "owner workspace: org $ORG, app $APP"

# Path parameters {org} and {app} are pinned to the workspace in the owner
# run (so handlers run past the lookup); everything else is generated.
export GATEHOUSE_FUZZ_ORG=$ORG GATEHOUSE_FUZZ_APP=$APP

SEED=${SCHEMATHESIS_SEED:-$(python3 -c 'import random; print(random.getrandbits(64))')}
COMMON=(
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
  --phases examples,coverage,fuzzing
  --max-examples "$MAX_EXAMPLES"
  --seed "$SEED"
  # One worker: several threads trip a CPython 3.11 ast.parse race inside
  # Hypothesis ("AST constructor recursion depth mismatch").
  --workers 1
  # A Hypothesis health check about the generator, not the API: on a plain
  # string path parameter it can trip at random and fail the operation.
  --suppress-health-check filter_too_much
  --request-timeout 10
  --generation-database none
  --no-color
  --continue-on-failure
)

failed=0
run_st() {
  local name=$1 config=$2
  shift 2
  local -a global=()
  [ -n "$config" ] && global=(--config-file "$config")
  mkdir -p "$OUT/$name"
  # (The owner's and the gateway's tokens are not printed.)
  local shown=${*//$OWNER_TOKEN/<owner token>}
  shown=${shown//$GATEWAY_TOKEN/<gateway token>}
  log "schemathesis ($name): $ST ${global[*]} run $BASE/openapi.json ${COMMON[*]} --report junit --report-junit-path $OUT/$name/junit.xml $shown"
  local start=$SECONDS rc=0
  # In its own directory, so nothing it writes lands in the checkout; in the
  # background, so a signal to this script is handled at once (see cleanup).
  (cd "$OUT/$name" && exec timeout --signal=INT --kill-after=15 "$RUN_TIMEOUT" \
    "$ST" "${global[@]}" run "$BASE/openapi.json" "${COMMON[@]}" \
      --report junit --report-junit-path "$OUT/$name/junit.xml" "$@") \
    >"$OUT/$name.txt" 2>&1 &
  ST_PID=$!
  wait "$ST_PID" || rc=$?
  ST_PID=
  if [ "$rc" != 0 ]; then
    # Which operation failed which check with what; the requests (as curl
    # commands) and responses are in the file.
    echo "--- schemathesis ($name) failures, in short:"
    grep -E '^_{3,} .* _{3,}$|^- ST[0-9]+ |^    Received: ' "$OUT/$name.txt" || true
  fi
  sed -n '/= SUMMARY =/,$p' "$OUT/$name.txt"
  log "schemathesis ($name): exit $rc in $((SECONDS - start)) s; details in $OUT/$name.txt"
  [ "$rc" = 124 ] && log "schemathesis ($name) hit the $RUN_TIMEOUT s timeout"
  [ "$rc" = 0 ] || failed=1
}

# As the owner. Signing out (here, or everywhere) would end the owner's
# session halfway through the run, so /v1/sessions is left to the anonymous
# run.
run_st owner "$ROOT/.ci/schemathesis-owner.toml" \
  -H "Authorization: Bearer $OWNER_TOKEN" \
  --exclude-path /v1/sessions/current \
  --exclude-path /v1/sessions
# As the platform's gateway, on the gateway's operations.
run_st gateway "" \
  -H "Authorization: Bearer $GATEWAY_TOKEN" \
  --include-tag gateway
# Without credentials.
run_st anonymous ""

[ "$failed" = 0 ] || die "schemathesis found failures (seed $SEED; rerun with SCHEMATHESIS_SEED=$SEED)"
log "no failures (seed $SEED)"
