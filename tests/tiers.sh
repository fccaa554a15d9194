#!/usr/bin/env bash
# `make test`: the suite's two tiers at once. The chaos tier (tests/integration/chaos), whose
# faults and soaks are timed, runs at the machine's normal priority; the unit and
# integration tiers run beside it on JOBS processes (pytest-xdist, a test file to each) at
# `nice 10`, so they take the CPU the chaos tier leaves and never the CPU it needs (it used
# 0.74 of a core on average, the first tier 1.7 of two: one after the other they took 28-29
# minutes on a 2-core machine, side by side 22). The chaos tier's output is printed after
# the first tier's; the exit status is non-zero when either failed; Ctrl-C stops both.
#
#     bash tests/tiers.sh PYTHON JOBS
set -uo pipefail
PY="${1:?usage: tests/tiers.sh PYTHON JOBS}"
JOBS="${2:?usage: tests/tiers.sh PYTHON JOBS}"
log="$(mktemp "${TMPDIR:-/tmp}/coord-chaos-tier.XXXXXX")"
"$PY" -m pytest --durations=25 tests/integration/chaos >"$log" 2>&1 &
chaos=$!
trap 'kill -INT "$chaos" 2>/dev/null; wait "$chaos"; cat "$log"; rm -f "$log"; exit 130' INT TERM
nice -n 10 "$PY" -m pytest -n "$JOBS" --dist loadfile --durations=25 \
  --ignore=tests/integration/chaos
first=$?
echo "== the chaos tier (tests/integration/chaos), run beside the first: its output =="
wait "$chaos"
second=$?
cat "$log"
rm -f "$log"
trap - INT TERM
echo "== first tier: exit $first; chaos tier: exit $second =="
[ "$first" -eq 0 ] && [ "$second" -eq 0 ]
