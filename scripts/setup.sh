#!/usr/bin/env bash
# make setup: installs what airdock (and `make demo`) needs on a fresh machine of this project's
# kind. Idempotent: a step whose result is in place is skipped. What the tests need on top is in
# scripts/test-setup.sh (`make test` runs it).
#   - Debian packages: redis-server (the Celery broker of each Celery environment) — the only
#     thing installed outside this folder
#   - .tools/uv: uv (builds Airflow runtimes, installs requirements) from PyPI, in its own virtual
#     environment made with the machine's Python 3.12; airdock finds it there
#   - node_modules: the Node packages (npm ci, with the approved install scripts in package.json)
#   - .tools/venv: the AWS CLI and boto3 (moto and schemathesis: scripts/test-setup.sh)
#   - the Airflow runtimes, one per supported version (runtimes/<version>/requirements.lock), in
#     .airdock/runtimes (or AIRDOCK_RUNTIME_DIR); each build's output in <runtime>.build.log there
# Every step that takes more than a few seconds prints a heartbeat; its whole output goes to
# .tools/logs/ (printed in part when it fails).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup-lib.sh
. scripts/setup-lib.sh

UV_VERSION=0.13.9
UV=.tools/uv/bin/uv

if ! command -v redis-server >/dev/null 2>&1; then
  step "installing redis-server (Debian)"
  apt_install redis-server
  # Debian starts a system-wide Redis on 6379; airdock runs its own per environment.
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  ($SUDO systemctl disable --now redis-server >/dev/null 2>&1 || $SUDO service redis-server stop >/dev/null 2>&1) || true
fi

if [ ! -x "$UV" ] || [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  step "installing uv $UV_VERSION (PyPI) into .tools/uv"
  PY=$(find_python)
  rm -rf .tools/uv
  run_logged "$LOG_DIR/uv.log" bash -c \
    '"$1" -m venv .tools/uv && .tools/uv/bin/python -m pip install --disable-pip-version-check "uv==$2"' \
    _ "$PY" "$UV_VERSION"
fi

stamp() { sha256sum "$@" | sha256sum | cut -c1-16; }

lock_stamp=$(stamp package-lock.json package.json)
if [ ! -f node_modules/.airdock-stamp ] || [ "$(cat node_modules/.airdock-stamp)" != "$lock_stamp" ]; then
  step "installing Node packages (npm ci; about a minute on a fresh machine)"
  run_logged "$LOG_DIR/npm-ci.log" npm ci --no-audit --no-fund
  echo "$lock_stamp" > node_modules/.airdock-stamp
fi

tools_stamp=$(stamp tools/requirements.txt)
if [ ! -f .tools/venv/.airdock-stamp ] || [ "$(cat .tools/venv/.airdock-stamp)" != "$tools_stamp" ]; then
  step "installing the AWS CLI and boto3 into .tools/venv"
  rm -rf .tools/venv
  PY=$(find_python)
  run_logged "$LOG_DIR/tools-venv.log" bash -c \
    'UV_PYTHON_DOWNLOADS=never "$1" venv --python "$2" .tools/venv && "$1" pip install --python .tools/venv/bin/python -r tools/requirements.txt' \
    _ "$UV" "$PY"
  echo "$tools_stamp" > .tools/venv/.airdock-stamp
fi

step "building the Airflow runtimes (once per version; shared by every environment)"
npx --no-install tsx src/cli.ts runtime build --all

printf '\nsetup done. The AWS CLI is in .tools/venv/bin; for the README'"'"'s examples:\n'
printf '  export PATH="%s/.tools/venv/bin:$PATH"\n' "$PWD"
