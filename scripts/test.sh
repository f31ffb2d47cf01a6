#!/usr/bin/env bash
# Full test run: set up everything the tests need, then lint, type check and pytest.
#   scripts/test.sh [PYTEST ARGS...]
# AGC_SKIP_SETUP=1 skips scripts/setup.sh (when you know everything is in place).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${AGC_SKIP_SETUP:-0}" != 1 ]]; then
  # platform: the caches `docker compose build` needs (tests/e2e/test_compose.py)
  scripts/setup.sh python services docker image web browser platform
fi

section() { printf '\n==> %s\n' "$*"; }

section "ruff format --check ."
.venv/bin/ruff format --check .
section "ruff check ."
.venv/bin/ruff check .
section "mypy"
.venv/bin/mypy
# The tests and scripts too (a second run: mypy takes packages or paths, not both).
section "mypy tests scripts"
.venv/bin/mypy tests scripts

section "web: typecheck + unit tests"
(cd web && npm run --silent typecheck && npm test --silent)

section "pytest $*"
rc=0
.venv/bin/pytest "$@" || rc=$?
if [[ $rc == 5 ]]; then
  echo "ERROR: pytest collected no tests (exit 5); a test run that tests nothing is a failure." >&2
  exit 5
fi
exit "$rc"
