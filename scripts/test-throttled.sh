#!/usr/bin/env bash
# The test suite on a throttled CPU: finds tests that wait on time instead of on conditions.
#
#   scripts/test-throttled.sh [PYTEST ARGS...]          (make test-slow ARGS="...")
#   AGC_CPU=0.25 scripts/test-throttled.sh tests/unit tests/integration
#
# Everything the tests start (pytest, nats-server, redis-server, the API, the workers, the
# runners and CLIs they spawn on the host) shares AGC_CPU cores in total (default 0.5): a
# cgroup's CPU quota (v2 cpu.max, or v1 cpu.cfs_quota_us), so the machine is uniformly slower,
# as a slow or busy machine is. Agent containers run under dockerd's cgroup with their own
# limits. Without a writable cgroup (not root, read-only /sys/fs/cgroup) everything is pinned to
# one core with taskset instead. Setup as in scripts/test.sh (AGC_SKIP_SETUP=1 skips it); no
# lint here: this run is about timing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CPU="${AGC_CPU:-0.5}"
PERIOD=100000
QUOTA="$(awk -v c="$CPU" -v p="$PERIOD" 'BEGIN { q = int(c * p); if (q < 1000) q = 1000; print q }')"

if [[ "${AGC_SKIP_SETUP:-0}" != 1 ]]; then
  scripts/setup.sh python services docker image web browser
fi

# Leave the cgroup (and remove it) however the run ends.
CG=""
cleanup() {
  if [[ -n "$CG" && -d "$CG" ]]; then
    # Our own shell moves back to the root group first, or the directory stays busy.
    echo $$ >"$(dirname "$CG")/cgroup.procs" 2>/dev/null || true
    rmdir "$CG" 2>/dev/null || true
  fi
}
trap cleanup EXIT

name="agc-throttled-$$"
if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && mkdir "/sys/fs/cgroup/$name" 2>/dev/null; then
  CG="/sys/fs/cgroup/$name"  # cgroup v2
  echo "$QUOTA $PERIOD" >"$CG/cpu.max"
elif [[ -w /sys/fs/cgroup/cpu ]] && mkdir "/sys/fs/cgroup/cpu/$name" 2>/dev/null; then
  CG="/sys/fs/cgroup/cpu/$name"  # cgroup v1
  echo "$PERIOD" >"$CG/cpu.cfs_period_us"
  echo "$QUOTA" >"$CG/cpu.cfs_quota_us"
fi

rc=0
if [[ -n "$CG" ]]; then
  echo "==> pytest $* on ${CPU} CPU (cgroup $CG: quota ${QUOTA} us per ${PERIOD} us)"
  # A child shell joins the cgroup and becomes pytest: all it starts inherits the quota.
  bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec .venv/bin/pytest "$@"' _ "$CG" "$@" || rc=$?
else
  echo "==> pytest $* pinned to one core (no writable cgroup: taskset -c 0)"
  taskset -c 0 .venv/bin/pytest "$@" || rc=$?
fi
if [[ $rc == 5 ]]; then
  echo "ERROR: pytest collected no tests (exit 5); a test run that tests nothing is a failure." >&2
fi
exit "$rc"
