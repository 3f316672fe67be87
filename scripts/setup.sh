#!/usr/bin/env bash
# make setup: installs everything a fresh machine of this project's kind lacks. Idempotent.
#   - Debian packages: redis-server (the Celery broker of each Celery environment); for the
#     tests, chromium (web login in a real browser) and iproute2 (test network namespaces)
#   - uv (builds Airflow runtimes) from PyPI
#   - Node packages (npm ci, with the approved install scripts in package.json)
#   - .tools/venv: the AWS CLI, boto3 and moto's S3-compatible server (tests and the demo)
#   - the Airflow runtimes, one per supported version (runtimes/<version>/requirements.lock)
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

if ! command -v redis-server >/dev/null 2>&1; then
  step "installing redis-server (Debian)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  # Debian starts a system-wide Redis on 6379; airdock runs its own per environment.
  ($SUDO systemctl disable --now redis-server >/dev/null 2>&1 || $SUDO service redis-server stop >/dev/null 2>&1) || true
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (Debian; used by the tests)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
  step "installing uv (PyPI)"
  python3 -m pip install -q 'uv==0.13.9'
  hash -r
fi

stamp() { sha256sum "$@" | sha256sum | cut -c1-16; }

lock_stamp=$(stamp package-lock.json package.json)
if [ ! -f node_modules/.airdock-stamp ] || [ "$(cat node_modules/.airdock-stamp)" != "$lock_stamp" ]; then
  step "installing Node packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_stamp" > node_modules/.airdock-stamp
fi

tools_stamp=$(stamp tools/requirements.txt)
if [ ! -f .tools/venv/.airdock-stamp ] || [ "$(cat .tools/venv/.airdock-stamp)" != "$tools_stamp" ]; then
  step "installing the AWS CLI, boto3 and moto into .tools/venv"
  rm -rf .tools/venv
  PY=$(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$PY" ] || PY=$(command -v python3.12 || command -v python3)
  UV_PYTHON_DOWNLOADS=never uv venv -q --python "$PY" .tools/venv
  uv pip install -q --python .tools/venv/bin/python -r tools/requirements.txt
  echo "$tools_stamp" > .tools/venv/.airdock-stamp
fi

step "building the Airflow runtimes (once per version; shared by every environment)"
npx --no-install tsx src/cli.ts runtime build --all
