#!/usr/bin/env bash
# Benchmarks: scripts/bench.sh [ARGS...] -> .venv/bin/python -m tests.bench ARGS...
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ ! -f tests/bench.py && ! -f tests/bench/__main__.py ]]; then
  echo "ERROR: the benchmark module tests.bench does not exist yet" \
    "(expected tests/bench.py or tests/bench/__main__.py); nothing to run." >&2
  exit 2
fi

if [[ "${AGC_SKIP_SETUP:-0}" != 1 ]]; then
  scripts/setup.sh python services docker image
fi
exec .venv/bin/python -m tests.bench "$@"
