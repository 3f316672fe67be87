/**
 * The Airflow configuration options airdock owns: AirflowConfigurationOptions may not set them
 * (CreateEnvironment and UpdateEnvironment answer ValidationException naming the option). This
 * is MWAA's list of "essential" configurations that a customer cannot override (reference
 * `mwaa-api-and-behaviour.md` §8: executor, database, broker, fernet key, webserver secret,
 * logging config class, auth manager, JWT secret and algorithm, execution API URL, multi-team;
 * MWAA's forced `metrics.*` are left to the user because airdock sets none), adapted to
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
  // Per component, from LoggingConfiguration.
  'logging.logging_level',
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
  /^api_auth\.jwt_(secret|algorithm|audience)(_cmd|_secret)?$/,
]

/**
 * The `section.option` an AirflowConfigurationOptions key sets: dots after the first become
 * underscores (`foo.bar.baz` sets `[foo] bar_baz`, `AIRFLOW__FOO__BAR_BAZ`), as MWAA converts them.
 */
export function normalizeAirflowOptionKey(key: string): string {
  const dot = key.indexOf('.')
  if (dot <= 0) return key
  return `${key.slice(0, dot)}.${key.slice(dot + 1).replace(/\./g, '_')}`
}

/** True when `key` (an AirflowConfigurationOptions key) sets an option airdock owns. */
export function isOwnedAirflowOption(key: string): boolean {
  const normalized = normalizeAirflowOptionKey(key.toLowerCase())
  return OWNED_KEYS.has(normalized) || OWNED_PATTERNS.some((pattern) => pattern.test(normalized))
}
