#!/usr/bin/env bash
# make demo: starts airdock (if it is not already running), creates the environment `demo`
# whose folder bucket holds examples/dags/, triggers the example ETL DAG, waits for it to
# succeed, and prints where to look. Uses the real AWS CLI from .tools/venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export AIRDOCK_DATA_DIR="${AIRDOCK_DATA_DIR:-$PWD/.airdock}"
PORT="${AIRDOCK_PORT:-8780}"
ENDPOINT="http://127.0.0.1:$PORT"
# airdock writes its administrator's key here on first start (profile `airdock`).
export AWS_SHARED_CREDENTIALS_FILE="$AIRDOCK_DATA_DIR/credentials" AWS_PROFILE=airdock
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export AWS_DEFAULT_REGION="${AIRDOCK_REGION:-us-east-1}" AWS_DISABLE_HOST_PREFIX_INJECTION=true AWS_PAGER=""
AWS=".tools/venv/bin/aws"
mwaa() { "$AWS" mwaa "$@" --endpoint-url "$ENDPOINT" --output json; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

# Every call needs a signature: an unsigned one is answered 403, which is enough to know it is up.
up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/environments" 2>/dev/null)" = 403 ]; }
if ! up; then
  echo "==> starting airdock on $ENDPOINT (log: $AIRDOCK_DATA_DIR/airdock.log)"
  mkdir -p "$AIRDOCK_DATA_DIR"
  nohup npx --no-install tsx src/main.ts >>"$AIRDOCK_DATA_DIR/airdock.log" 2>&1 &
  for _ in $(seq 1 120); do up && break; sleep 1; done
  for _ in $(seq 1 30); do [ -f "$AWS_SHARED_CREDENTIALS_FILE" ] && break; sleep 1; done
fi

echo "==> putting examples/dags/ into the bucket demo-bucket (folder $AIRDOCK_DATA_DIR/buckets/demo-bucket/dags)"
mkdir -p "$AIRDOCK_DATA_DIR/buckets/demo-bucket/dags"
cp -r examples/dags/. "$AIRDOCK_DATA_DIR/buckets/demo-bucket/dags/"

if ! mwaa get-environment --name demo >/dev/null 2>&1; then
  echo "==> aws mwaa create-environment --name demo"
  mwaa create-environment --name demo --environment-class mw1.micro \
    --execution-role-arn arn:aws:iam::000000000000:role/airdock-demo \
    --source-bucket-arn arn:aws:s3:::demo-bucket --dag-s3-path dags \
    --network-configuration SubnetIds=subnet-demo-a,subnet-demo-b,SecurityGroupIds=sg-demo >/dev/null
fi
started=$(date +%s)
while :; do
  status=$(mwaa get-environment --name demo | field "['Environment']['Status']")
  printf '\r    status: %-14s (%ss)' "$status" "$(( $(date +%s) - started ))"
  [ "$status" = AVAILABLE ] && break
  if [ "$status" = CREATE_FAILED ]; then echo; mwaa get-environment --name demo; exit 1; fi
  sleep 2
done
echo

invoke() { mwaa invoke-rest-api --name demo --method "$1" --path "$2" ${3:+--body "$3"}; }
echo "==> waiting for the DAG daily_sales_etl to be parsed"
until invoke GET /dags/daily_sales_etl >/dev/null 2>&1; do sleep 1; done
invoke PATCH /dags/daily_sales_etl '{"is_paused": false}' >/dev/null
# MWAA limits InvokeRestApi's Path to 64 characters: give the run a short id.
run_id="demo-$(date +%s)"
invoke POST /dags/daily_sales_etl/dagRuns "{\"logical_date\": null, \"dag_run_id\": \"$run_id\"}" >/dev/null
echo "==> triggered DAG run $run_id"
encoded="$run_id"
while :; do
  state=$(invoke GET "/dags/daily_sales_etl/dagRuns/$encoded" | field "['RestApiResponse']['state']")
  printf '\r    DAG run state: %-10s' "$state"
  [ "$state" = success ] && break
  [ "$state" = failed ] && { echo; echo "DAG run failed"; exit 1; }
  sleep 2
done
echo
invoke GET "/dags/daily_sales_etl/dagRuns/$encoded/taskInstances" |
  python3 -c "import json,sys; [print('    %-10s %s' % (t['task_id'], t['state'])) for t in json.load(sys.stdin)['RestApiResponse']['task_instances']]"

login=$(mwaa create-web-login-token --name demo)
host=$(echo "$login" | field "['WebServerHostname']")
cat <<INFO

airdock is running.
  MWAA API endpoint : $ENDPOINT   (aws mwaa ... --endpoint-url $ENDPOINT, with AWS_DISABLE_HOST_PREFIX_INJECTION=true)
  Credentials       : $AWS_SHARED_CREDENTIALS_FILE   (AWS_SHARED_CREDENTIALS_FILE=… AWS_PROFILE=airdock)
  Airflow UI        : http://$host/aws_mwaa/aws-console-sso?login=true#$(echo "$login" | field "['WebToken']")
                      (valid 60 s, once; a new link: npm run airdock -- web-login demo)
  DAG bucket        : $AIRDOCK_DATA_DIR/buckets/demo-bucket/dags  (drop a .py file here; it is listed within seconds)
  Status            : npm run airdock -- status demo
  Stop airdock      : kill \$(pgrep -f 'tsx src/main.ts')   (environments keep running and are adopted on the next start)
INFO
