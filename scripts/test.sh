#!/usr/bin/env bash
# The project's tests: static checks, then every test (unit, harness, boot,
# persistence, k8s) under pytest -n auto. Exit status is pytest's, except
# that "no tests collected" (5) is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

set -e
echo "[test] ruff check"
.venv/bin/ruff check harness tests conftest.py
echo "[test] ruff format --check"
.venv/bin/ruff format --check harness tests conftest.py
echo "[test] lint-imports (the layers of docs/architecture.md)"
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
echo "[test] mypy harness"
.venv/bin/mypy harness
set +e

# The upgrade check boots the previous commit's image, then this one, on one
# data disk (docs/architecture.md "Upgrades"); KUBESOLO_UPGRADE_FROM names
# another previous release. Without history (a shallow clone) it skips.
upgrade_from=${KUBESOLO_UPGRADE_FROM:-$(git rev-parse --verify -q HEAD~1 || true)}

echo "[test] pytest -n auto"
.venv/bin/pytest -n auto -p no:cacheprovider -ra --durations=15 \
    ${upgrade_from:+--upgrade-from "$upgrade_from"} "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "[test] pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
