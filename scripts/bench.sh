#!/usr/bin/env bash
# Benchmarks: scripts/bench.sh [NAME...] [OPTIONS...]  ->  .venv/bin/python -m tests.bench ...
#
#   make bench                                   every benchmark (tests/bench/*.py with a main)
#   make bench ARGS="agents --launches 5"        one benchmark, with its own options
#   make bench ARGS="agents -h"                  that benchmark's options
#
# Sets up what the benchmarks need first (venv, services, dockerd, agent image; quick when
# already done). AGC_SKIP_SETUP=1 skips that. Reports go to $AGC_STATE_DIR/bench/ (.agc/bench/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${AGC_SKIP_SETUP:-0}" != 1 ]]; then
  scripts/setup.sh python services docker image
fi
exec .venv/bin/python -m tests.bench "$@"
