#!/usr/bin/env bash
# make demo: starts airdock (if it is not already running), creates the environment `demo`
# whose folder bucket holds examples/dags/, triggers the example ETL DAG, waits for it to
# succeed, and prints where to look. Uses the real AWS CLI from .tools/venv.
#
# Built to succeed on a busy machine: it waits until the environment is really ready (AVAILABLE,
# then the Airflow REST API answers through InvokeRestApi and the DAG is parsed), retries the
# calls that are safe to repeat (reads; CreateEnvironment only after a retryable error and once
# GetEnvironment says there is none), and triggers the run with an id of its own, so a trigger
# that times out (InvokeRestApi's 10 s limit, MWAA's own) is checked for the run it may well have
# created instead of failing, and repeating it cannot create a second run (Airflow answers 409).
#
# Environment:
#   AIRDOCK_DATA_DIR      data dir (default ./.airdock): credentials, buckets, the log
#   AIRDOCK_PORT          port of the control plane it starts (default: the installation's,
#                         8780 or the next free port, recorded at its first start)
#   AIRDOCK_ENDPOINT      MWAA endpoint of a control plane that is already running (default:
#                         the one this data dir's control plane recorded in control-plane.pid);
#                         when set, the demo never starts one
#   AIRDOCK_REGION        region (default us-east-1)
#   AIRDOCK_DEMO_TIMEOUT_S  how long each wait may take (default 1200)
set -euo pipefail
cd "$(dirname "$0")/.."
export AIRDOCK_DATA_DIR="${AIRDOCK_DATA_DIR:-$PWD/.airdock}"
# The endpoint this data dir's control plane recorded, while that process (same pid and kernel
# start time) lives; empty when none runs or it is still starting.
recorded_endpoint() {
  python3 - "$AIRDOCK_DATA_DIR/control-plane.pid" 2>/dev/null <<'PY' || true
import json, sys
cp = json.load(open(sys.argv[1]))
stat = open(f"/proc/{cp['pid']}/stat").read()
if stat[stat.rindex(")") + 2:].split()[19] == cp["startTimeTicks"]:
    print(cp.get("endpoint", ""))
PY
}
ENDPOINT="${AIRDOCK_ENDPOINT:-$(recorded_endpoint)}"
TIMEOUT_S="${AIRDOCK_DEMO_TIMEOUT_S:-1200}"
DAG=daily_sales_etl
# airdock writes its administrator's key here on first start (profile `airdock`).
export AWS_SHARED_CREDENTIALS_FILE="$AIRDOCK_DATA_DIR/credentials" AWS_PROFILE=airdock
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export AWS_DEFAULT_REGION="${AIRDOCK_REGION:-us-east-1}" AWS_DISABLE_HOST_PREFIX_INJECTION=true AWS_PAGER=""
AWS=".tools/venv/bin/aws"
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
mwaa() { "$AWS" mwaa "$@" --endpoint-url "$ENDPOINT" --output json; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }
invoke() { mwaa invoke-rest-api --name demo --method "$1" --path "$2" ${3:+--body "$3"}; }
elapsed() { echo $(($(date +%s) - started)); }
fail() { echo; echo "demo failed: $*" >&2; exit 1; }

# An error that repeating the same call cannot fix: bad input, no permission, or Airflow's own
# 4xx (RestApiClientException: not found, conflict, …). Anything else (5xx, throttling, a
# timeout, a connection refused while the machine is busy) is retried.
final_error() {
  grep -qE '\((ValidationException|AccessDeniedException|RestApiClientException|ResourceNotFoundException|UnrecognizedClientException|InvalidSignatureException)\)' "$errors"
}

# retry CMD...: runs a call that is safe to repeat until it succeeds (stdout is its answer),
# backing off from 1 s to 10 s, for at most TIMEOUT_S; an error no retry can fix ends it at once.
retry() {
  local deadline=$(($(date +%s) + TIMEOUT_S)) delay=1
  while :; do
    if "$@" 2>"$errors"; then return 0; fi
    if final_error || [ "$(date +%s)" -ge "$deadline" ]; then cat "$errors" >&2; return 1; fi
    sleep "$delay"
    delay=$((delay < 10 ? delay * 2 : 10))
  done
}

# Every call needs a signature: an unsigned one is answered 403, which is enough to know it is up.
up() {
  [ -n "$ENDPOINT" ] &&
    [ "$(curl -s -o /dev/null -m 10 -w '%{http_code}' "$ENDPOINT/environments" 2>/dev/null)" = 403 ]
}
if ! up; then
  if [ -n "${AIRDOCK_ENDPOINT:-}" ]; then
    echo "==> waiting for airdock at $ENDPOINT (AIRDOCK_ENDPOINT)"
  else
    echo "==> starting airdock (log: $AIRDOCK_DATA_DIR/airdock.log)"
    mkdir -p "$AIRDOCK_DATA_DIR"
    nohup npx --no-install tsx src/main.ts >>"$AIRDOCK_DATA_DIR/airdock.log" 2>&1 &
  fi
  for _ in $(seq 1 120); do
    [ -n "${AIRDOCK_ENDPOINT:-}" ] || ENDPOINT=$(recorded_endpoint)
    up && break
    sleep 1
  done
  up || fail "airdock does not answer at ${ENDPOINT:-its endpoint} (see $AIRDOCK_DATA_DIR/airdock.log)"
fi
echo "==> airdock answers at $ENDPOINT"

for _ in $(seq 1 30); do [ -f "$AWS_SHARED_CREDENTIALS_FILE" ] && break; sleep 1; done

echo "==> putting examples/dags/ into the bucket demo-bucket (folder $AIRDOCK_DATA_DIR/buckets/demo-bucket/dags)"
mkdir -p "$AIRDOCK_DATA_DIR/buckets/demo-bucket/dags"
cp -r examples/dags/. "$AIRDOCK_DATA_DIR/buckets/demo-bucket/dags/"

# CreateEnvironment is not idempotent: create only when GetEnvironment says there is none, and
# after a retryable error ask again first (the create may have been done anyway).
started=$(date +%s)
while :; do
  if mwaa get-environment --name demo >/dev/null 2>"$errors"; then break; fi
  if ! grep -q '(ResourceNotFoundException)' "$errors"; then
    final_error && { cat "$errors" >&2; fail "GetEnvironment failed"; }
  else
    echo "==> aws mwaa create-environment --name demo"
    if mwaa create-environment --name demo --environment-class mw1.micro \
      --execution-role-arn arn:aws:iam::000000000000:role/airdock-demo \
      --source-bucket-arn arn:aws:s3:::demo-bucket --dag-s3-path dags \
      --network-configuration SubnetIds=subnet-demo-a,subnet-demo-b,SecurityGroupIds=sg-demo \
      >/dev/null 2>"$errors"; then
      break
    fi
    final_error && { cat "$errors" >&2; fail "CreateEnvironment failed"; }
  fi
  [ "$(elapsed)" -ge "$TIMEOUT_S" ] && { cat "$errors" >&2; fail "no environment after ${TIMEOUT_S} s"; }
  echo "    retrying: $(tail -n 1 "$errors")"
  sleep 2
done

while :; do
  status=$(retry mwaa get-environment --name demo | field "['Environment']['Status']")
  printf '\r    status: %-14s (%ss)' "$status" "$(elapsed)"
  [ "$status" = AVAILABLE ] && break
  case "$status" in
    CREATE_FAILED | DELETING | DELETED) echo; mwaa get-environment --name demo; fail "environment demo is $status" ;;
  esac
  [ "$(elapsed)" -ge "$TIMEOUT_S" ] && fail "environment demo not AVAILABLE after ${TIMEOUT_S} s"
  sleep 2
done
echo

# AVAILABLE means the components run; the api-server may still be warming up and the DAG not
# parsed yet: wait until InvokeRestApi answers 200 for the DAG itself.
echo "==> waiting for the Airflow REST API to list the DAG $DAG"
started=$(date +%s)
until invoke GET "/dags/$DAG" >/dev/null 2>"$errors"; do
  # 404 (RestApiClientException) until the dag-processor has parsed the file.
  if final_error && ! grep -q '(RestApiClientException)' "$errors"; then
    cat "$errors" >&2
    fail "InvokeRestApi refused"
  fi
  [ "$(elapsed)" -ge "$TIMEOUT_S" ] && { cat "$errors" >&2; fail "DAG $DAG not listed after ${TIMEOUT_S} s"; }
  sleep 2
done
retry invoke PATCH "/dags/$DAG" '{"is_paused": false}' >/dev/null

# MWAA limits InvokeRestApi's Path to 64 characters: give the run a short id, chosen here so a
# trigger whose answer is lost can be checked exactly and repeated safely.
run_id="demo-$(date +%s)"
run_path="/dags/$DAG/dagRuns/$run_id"
# 0: the run exists; 1: Airflow says it does not (404); 2: cannot tell now.
run_exists() {
  if invoke GET "$run_path" >/dev/null 2>"$errors"; then return 0; fi
  if grep -q '(RestApiClientException)' "$errors"; then return 1; fi
  return 2
}
trigger_errors=$(mktemp)
trap 'rm -f "$errors" "$trigger_errors"' EXIT
started=$(date +%s)
delay=1
until invoke POST "/dags/$DAG/dagRuns" "{\"logical_date\": null, \"dag_run_id\": \"$run_id\"}" >/dev/null 2>"$trigger_errors"; do
  answer=$(grep . "$trigger_errors" | tail -n 1)
  # A timeout, a lost answer, or a 409 for an earlier attempt of ours: the run may well exist.
  rc=2
  for _ in 1 2 3 4 5; do
    rc=0
    run_exists || rc=$?
    [ "$rc" -ne 2 ] && break
    sleep 2
  done
  if [ "$rc" -eq 0 ]; then
    echo "    the trigger answered \"$answer\", but the run $run_id exists"
    break
  fi
  # No run, and an answer that repeating cannot change (bad request, no permission).
  cp "$trigger_errors" "$errors"
  if [ "$rc" -eq 1 ] && final_error; then fail "triggering $DAG: $answer"; fi
  [ "$(elapsed)" -ge "$TIMEOUT_S" ] && fail "triggering $DAG: $answer"
  echo "    retrying the trigger of $run_id: $answer"
  sleep "$delay"
  delay=$((delay < 10 ? delay * 2 : 10))
done
echo "==> triggered DAG run $run_id"

started=$(date +%s)
while :; do
  state=$(retry invoke GET "$run_path" | field "['RestApiResponse']['state']")
  printf '\r    DAG run state: %-10s (%ss)' "$state" "$(elapsed)"
  [ "$state" = success ] && break
  [ "$state" = failed ] && fail "DAG run $run_id failed"
  [ "$(elapsed)" -ge "$TIMEOUT_S" ] && fail "DAG run $run_id still $state after ${TIMEOUT_S} s"
  sleep 2
done
echo
echo "==> DAG run $run_id: success"
retry invoke GET "$run_path/taskInstances" |
  python3 -c "import json,sys; [print('    %-10s %s' % (t['task_id'], t['state'])) for t in json.load(sys.stdin)['RestApiResponse']['task_instances']]"

login=$(retry mwaa create-web-login-token --name demo)
host=$(echo "$login" | field "['WebServerHostname']")
cat <<INFO

airdock is running.
  MWAA API endpoint : $ENDPOINT
  AWS CLI / SDKs    : export PATH="\$PWD/.tools/venv/bin:\$PATH" AWS_CONFIG_FILE=$AIRDOCK_DATA_DIR/config \\
                        AWS_SHARED_CREDENTIALS_FILE=$AWS_SHARED_CREDENTIALS_FILE AWS_PROFILE=airdock
                      then: aws mwaa list-environments   (the config file names the endpoint)
  Airflow UI        : http://$host/aws_mwaa/aws-console-sso?login=true#$(echo "$login" | field "['WebToken']")
                      (valid 60 s, once; a new link: npm run airdock -- web-login demo)
  DAG bucket        : $AIRDOCK_DATA_DIR/buckets/demo-bucket/dags  (drop a .py file here; it is listed within seconds)
  Status            : npm run airdock -- status demo
  Stop              : make stop   (the control plane, every environment and PostgreSQL of this data dir)
                      npm run -s airdock -- stop   (the control plane only; environments keep running
                      and are adopted on the next start)
INFO
