/**
 * The Airflow configuration options airdock owns: AirflowConfigurationOptions may not set them
 * (CreateEnvironment and UpdateEnvironment answer ValidationException naming the option). This
 * is MWAA's list of "essential" configurations that a customer cannot override (reference
 * `mwaa-api-and-behaviour.md` §7: executor, database, broker, fernet key, webserver secret,
 * logging config class, metrics, auth manager, JWT, execution API URL, multi-team), adapted to
 * what airdock sets itself in `src/airflow/components.ts` (folders, the SimpleAuthManager users,
 * Celery settings that autoscaling and draining rely on). A test there checks that every option
 * airdock forces is in this list.
 */

/** Exact `section.option` keys. */
const OWNED_KEYS = new Set([
  'core.executor',
  'core.dags_folder',
  'core.plugins_folder',
  'core.load_examples',
  'core.auth_manager',
  'core.simple_auth_manager_users',
  'core.simple_auth_manager_passwords_file',
  'core.simple_auth_manager_all_admins',
  'core.execution_api_server_url',
  'core.multi_team',
  'api.base_url',
  'api.secret_key',
  'webserver.secret_key',
  'webserver.base_url',
  'logging.base_log_folder',
  'logging.logging_config_class',
  'celery.worker_concurrency',
  'celery.worker_prefetch_multiplier',
  'celery.task_acks_late',
  'celery.celery_config_options',
])

/** Whole sections, and options with their `_cmd` / `_secret` variants. */
const OWNED_PATTERNS = [
  /^core\.fernet_key(_cmd|_secret)?$/,
  /^database\.sql_alchemy_conn(_cmd|_secret|_async)?$/,
  /^celery\.(broker_url|result_backend)(_cmd|_secret)?$/,
  /^celery_broker_transport_options\./,
  /^api_auth\./,
  /^metrics\./,
]

/** True when `key` (`section.option`, lowercase) is an option airdock owns. */
export function isOwnedAirflowOption(key: string): boolean {
  return OWNED_KEYS.has(key) || OWNED_PATTERNS.some((pattern) => pattern.test(key))
}
