# Shared by scripts/setup.sh and scripts/test-setup.sh (sourced, not run).
#   step MESSAGE                  a heading for one install step
#   run_logged LOG COMMAND…       runs COMMAND with its whole output in LOG, printing a heartbeat
#                                 every 10 s; on failure prints the last lines of LOG and exits
#   apt_install PACKAGE…          apt-get install through run_logged (sudo unless root)
#   find_python                   prints the Python 3.12 to install tools with (pyenv, then
#                                 python3.12, then python3 on PATH)
# Logs of the install steps go to .tools/logs/ (kept until the step runs again).

LOG_DIR=.tools/logs
HEARTBEAT_S=10

step() { printf '\n==> %s\n' "$*"; }

run_logged() {
  local log=$1
  shift
  mkdir -p "$(dirname "$log")"
  local started=$SECONDS next=$((SECONDS + HEARTBEAT_S)) status=0
  "$@" >"$log" 2>&1 &
  local pid=$!
  # Ctrl-C stops the step too (by its recorded pid).
  trap 'kill "$pid" 2>/dev/null; exit 130' INT TERM
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ "$SECONDS" -ge "$next" ]; then
      local last
      last=$(tail -n 1 "$log" 2>/dev/null | tr -d '\r' | cut -c1-90)
      printf '    … %d s%s\n' "$((SECONDS - started))" "${last:+: $last}"
      next=$((SECONDS + HEARTBEAT_S))
    fi
  done
  wait "$pid" || status=$?
  trap - INT TERM
  if [ "$status" -ne 0 ]; then
    printf '    failed (exit %d) after %d s; the last lines of %s:\n' "$status" "$((SECONDS - started))" "$log" >&2
    tail -n 20 "$log" | sed 's/^/      /' >&2
    exit "$status"
  fi
  printf '    done in %d s (log: %s)\n' "$((SECONDS - started))" "$log"
}

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  run_logged "$LOG_DIR/apt-get.log" bash -c \
    "$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $*"
}

find_python() {
  local py
  py=$(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$py" ] || py=$(command -v python3.12 || command -v python3 || true)
  if [ -z "$py" ]; then
    echo "setup: no Python 3.12 found (pyenv, python3.12 or python3 on PATH); install it first" >&2
    exit 1
  fi
  echo "$py"
}
