#!/usr/bin/env bash
# make test runs this after `make setup`: what only the tests need. Idempotent.
#   - chromium (Debian): a real browser for the web-login tests (through playwright-core)
#   - iproute2 (Debian): `ip netns`, throwaway network namespaces for the listen-address tests
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
