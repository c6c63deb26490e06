#!/usr/bin/env bash
# Generated client: generate a Python client from /openapi.json of a real
# Gatehouse server (the debug binary built by `cargo test`, its embedded
# PostgreSQL) with openapi-python-client, then drive a short flow through it
# (.ci/client_flow.py). What users of the document will do first, so it
# fails when:
#   - the generator prints any warning or error (a schema or an operation
#     it could not map is left out of the client with only a warning);
#   - the document names an operationId twice, or a documented operation is
#     missing from the client (the generator drops an operation whose
#     module name another one took, without a word);
#   - the flow fails.
#
# Usage: .ci/client.sh   (from anywhere; .ci/run calls it after schemathesis)
#
# Environment (all optional):
#   GATEHOUSE_BIN   the server binary                                (target/debug/gatehouse)
#   CI_VENV         the virtual environment holding openapi-python-client
#                   (.ci/run installs it); its bin/python runs the flow (target/ci-venv)
#
# Output (kept after the run): target/client/{openapi.json,server.log,
# generate.txt,gatehouse_client/}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BIN=${GATEHOUSE_BIN:-$ROOT/target/debug/gatehouse}
VENV=${CI_VENV:-$ROOT/target/ci-venv}
OUT=$ROOT/target/client
DATA=$OUT/data
PKG=$OUT/gatehouse_client
STEP=client.sh
# log, die, KEK, PASSWORD and the server's start and stop.
. "$ROOT/.ci/lib.sh"

[ -x "$BIN" ] || die "no server binary at $BIN (run cargo build -p api --bin gatehouse first)"
[ -x "$VENV/bin/python" ] || die "no virtual environment at $VENV (.ci/run makes it)"
[ -x "$VENV/bin/openapi-python-client" ] || die "no openapi-python-client in $VENV (.ci/run installs it)"
# Absolute: the generator runs from another directory.
VENV=$(cd "$VENV" && pwd)
command -v curl >/dev/null || die "curl is needed"

prepare_server
rm -rf "$PKG" "$OUT/openapi.json" "$OUT/generate.txt"

cleanup() {
  local rc=$?
  stop_server
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_server
curl -sf "$BASE/openapi.json" -o "$OUT/openapi.json" || die "GET /openapi.json failed"

# Each check below records its failure and the run goes on, so that one run
# reports every problem; the step fails at the end.
failed=0

# Generate. --fail-on-warning: exit 1 on any warning. The venv's bin first
# on PATH: the generator formats its output with ruff, looked up on PATH
# (and only warns, "ruff is not in PATH", when it is not there). A success
# prints one line, "Generating <dir>"; anything else is a warning, a skipped
# part of the document or a failed hook.
log "openapi-python-client $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openapi-python-client"))'): generating $PKG"
rc=0
(cd "$OUT" && PATH="$VENV/bin:$PATH" exec "$VENV/bin/openapi-python-client" generate \
  --path openapi.json --output-path "$PKG" --meta none \
  --config "$ROOT/.ci/client-config.yaml" --fail-on-warning) >"$OUT/generate.txt" 2>&1 || rc=$?
if [ "$rc" != 0 ] || grep -qvx "Generating $PKG" "$OUT/generate.txt"; then
  echo "--- openapi-python-client (exit $rc):"
  cat "$OUT/generate.txt"
  echo "---"
  log "the generator warned or failed (above; also in $OUT/generate.txt)"
  failed=1
fi

# Every documented operation in the client, under an operationId of its own.
# The generator names a module after the operationId and lets a second
# operation with the same name (in the same tag) overwrite the first, and
# prints nothing; so each (method, path) of the document is looked for in the
# generated modules' request code ("method": ..., "url": ...), path
# parameters' names aside (the generator renames some, e.g. {client}).
if [ -d "$PKG/api" ]; then
  log "checking that every operation of the document is in the client"
  "$VENV/bin/python" - "$OUT/openapi.json" "$PKG" <<'PY' || { log "the client misses operations (above)"; failed=1; }
import collections, json, pathlib, re, sys

doc = json.loads(pathlib.Path(sys.argv[1]).read_text())
pkg = pathlib.Path(sys.argv[2])
methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
ops = [
    (method.upper(), path, op.get("operationId"))
    for path, item in doc["paths"].items()
    for method, op in item.items()
    if method in methods
]

def shape(path):
    return re.sub(r"\{[^}]*\}", "{}", path)

generated = set()
for module in (pkg / "api").rglob("*.py"):
    for method, url in re.findall(r'"method": "(\w+)",\s*"url": "([^"]*)"', module.read_text()):
        generated.add((method.upper(), shape(url)))

problems = []
counts = collections.Counter(op_id for _, _, op_id in ops)
for op_id, n in sorted(counts.items(), key=lambda c: str(c[0])):
    if op_id is None:
        problems += [f"{m} {p}: no operationId" for m, p, i in ops if i is None]
    elif n > 1:
        problems.append(
            f"operationId {op_id!r} names {n} operations: "
            + ", ".join(f"{m} {p}" for m, p, i in ops if i == op_id)
        )
problems += [f"{m} {p} ({i}): not in the generated client" for m, p, i in ops if (m, shape(p)) not in generated]
for problem in problems:
    print(f"client.sh: {problem}", file=sys.stderr)
print(f"client.sh: {len(ops)} operations in the document, {len(generated)} in the client", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
else
  log "no client was generated (no $PKG/api)"
  failed=1
fi

# The flow, when there is a client to run it with. Bounded: each request has
# the client's timeout (5 s), but a stuck flow must not hold CI.
if [ -f "$PKG/__init__.py" ]; then
  log "the flow: $VENV/bin/python .ci/client_flow.py $BASE"
  # No __pycache__ in .ci/ (the flow imports .ci/mail_token.py).
  PYTHONDONTWRITEBYTECODE=1 timeout --signal=INT --kill-after=10 300 \
    "$VENV/bin/python" "$ROOT/.ci/client_flow.py" "$BASE" "$OUT" "$DATA/mail" ||
    { log "the flow failed (above; the server's log is $OUT/server.log)"; failed=1; }
fi

[ "$failed" = 0 ] || die "failed; the document is $OUT/openapi.json, the client $PKG"
log "ok: the client generated without a warning, with every operation, and the flow passed"
