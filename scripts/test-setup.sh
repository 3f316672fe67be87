#!/usr/bin/env bash
# make test runs this after `make setup`: what only the tests need. Idempotent.
#   - chromium (Debian): a real browser for the web-login tests (through playwright-core)
#   - iproute2 (Debian): `ip netns`, throwaway network namespaces for the listen-address tests
#   - moto (S3-compatible server) and schemathesis (API fuzzer) into .tools/venv
#     (tools/test-requirements.txt)
# Output of the install in .tools/logs/apt-get.log (its last lines printed when it fails).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup-lib.sh
. scripts/setup-lib.sh

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (Debian; used by the tests only)"
  apt_install "${missing[@]}"
fi

test_stamp=$(sha256sum tools/test-requirements.txt | cut -c1-16)
# make setup recreates .tools/venv (and so drops this stamp) when tools/requirements.txt changes.
if [ ! -f .tools/venv/.airdock-test-stamp ] || [ "$(cat .tools/venv/.airdock-test-stamp)" != "$test_stamp" ]; then
  step "installing moto and schemathesis into .tools/venv (used by the tests only)"
  run_logged "$LOG_DIR/test-tools.log" .tools/uv/bin/uv pip install --python .tools/venv/bin/python \
    -r tools/test-requirements.txt
  echo "$test_stamp" > .tools/venv/.airdock-test-stamp
fi
