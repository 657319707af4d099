#!/usr/bin/env bash
# The Python client's checks: a virtualenv with the pinned dev dependencies and this
# package (editable), the type check (`mypy --strict` over the sources, the tests and the
# examples), then pytest, which starts its own `leasehold dev` servers from
# $LEASEHOLD_BIN (default: the workspace's target/debug/leasehold) and stops them.
#
#   clients/python/test.sh [pytest arguments...]
#
# VENV: where the virtualenv lives (default: a directory under the system's temp dir,
# kept and reused between runs). LEASEHOLD_URL: run the conformance scenarios against
# that server instead of the tests' own.
set -euo pipefail
cd "$(dirname "$0")"

venv="${VENV:-${TMPDIR:-/tmp}/leasehold-python-venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .

export LEASEHOLD_BIN="${LEASEHOLD_BIN:-$(cd ../.. && pwd)/target/debug/leasehold}"

echo "== mypy --strict"
"$venv/bin/python" -m mypy --strict src tests examples
echo "== pytest"
"$venv/bin/python" -m pytest -q "$@"
