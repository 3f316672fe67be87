/**
 * Validation of MWAA requests: turns parsed wire input into airdock's request types, or throws a
 * `ValidationError` whose message follows AWS's ValidationException wording.
 *
 * Rules come from the botocore MWAA model `mwaa/2020-07-01/service-2.json` (lengths, patterns,
 * enums, required members; reference `mwaa-api-and-behaviour.md` §1.1–§1.4), the MWAA API
 * reference and user guide (defaults, per-class counts, quotas; reference §1.2, §3, §11).
 *
 * Messages:
 * - a constraint failure reads like AWS's, naming the member by its camelCase path:
 *   `Value '6' at 'schedulers' failed to satisfy constraint: Member must have value less than or
 *   equal to 5` (list members as `networkConfiguration.subnetIds.1.member`, 1-based);
 * - a rule between fields, or one the model cannot express, is a sentence naming the wire field:
 *   `MinWorkers (5) must be less than or equal to MaxWorkers (2).`
 * All problems of a request are reported together: `2 validation errors detected: …; …`
 * (a single sentence is sent as is). Sensitive values (Airflow configuration values) are never
 * echoed.
 */
import { isOwnedAirflowOption } from './airflow-options.js'
import {
  fromWire,
  fromWireSpecFields,
  INVOKE_REST_API_INPUT,
  isJsonObject,
  wireName,
} from '../api/wire.js'
import {
  isSupportedAirflowVersion,
  SUPPORTED_AIRFLOW_VERSIONS,
  DEFAULT_AIRFLOW_VERSION,
} from './airflow-versions.js'
import {
  DEFAULT_ENVIRONMENT_CLASS,
  ENVIRONMENT_CLASSES,
  findEnvironmentClass,
} from './environment-classes.js'
import {
  ENDPOINT_MANAGEMENTS,
  LOG_TYPES,
  LOGGING_LEVELS,
  WEBSERVER_ACCESS_MODES,
  WORKER_REPLACEMENT_STRATEGIES,
  type EnvironmentSpec,
  type LoggingConfiguration,
  type ModuleLoggingConfiguration,
  type WorkerReplacementStrategy,
} from './environment.js'
import { ValidationError } from './errors.js'
import { bucketNameProblem } from '../storage/object-store.js'
import type {
  CreateEnvironmentRequest,
  InvokeRestApiRequest,
  UpdateEnvironmentRequest,
} from '../services/environment-service-port.js'

// ---------------------------------------------------------------------------------------------
// Constraints (botocore model shapes, anchored as in the AWS API reference)

/** `EnvironmentName`: 1–80 characters. */
export const ENVIRONMENT_NAME_PATTERN = /^[a-zA-Z][0-9a-zA-Z_-]*$/
/** `EnvironmentArn`: 1–1224 characters. */
export const ENVIRONMENT_ARN_PATTERN =
  /^arn:aws(-[a-z]+)?:airflow:[a-z0-9-]+:\d{12}:environment\/\w+.*$/
/** `IamRoleArn`: 1–1224 characters. */
export const IAM_ROLE_ARN_PATTERN = /^arn:aws(-[a-z]+)?:iam::\d{12}:role\/?[a-zA-Z_0-9+=,.@\-_/]+$/
/** `S3BucketArn`: 1–1224 characters. */
export const S3_BUCKET_ARN_PATTERN = /^arn:aws(-[a-z]+)?:s3:::[a-z0-9.-]+$/
/** `KmsKey`: a key id, key ARN, alias or alias ARN; 1–1224 characters. */
export const KMS_KEY_PATTERN =
  /^(((arn:aws(-[a-z]+)?:kms:[a-z]{2}-[a-z]+-\d:\d+:)?key\/)?[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}|(arn:aws(-[a-z]+)?:kms:[a-z]{2}-[a-z]+-\d:\d+:)?alias\/.+)$/
/** `AirflowVersion`: 1–32 characters. */
export const AIRFLOW_VERSION_PATTERN = /^[0-9a-z.]+$/
/** `ConfigKey` (an `AirflowConfigurationOptions` key): 1–64 characters. */
export const CONFIG_KEY_PATTERN = /^[a-z]+([a-z0-9._]*[a-z0-9_]+)?$/
/** `ConfigValue`: 1–65536 printable ASCII characters. */
export const CONFIG_VALUE_PATTERN = /^[ -~]+$/
/** `SubnetId`: 1–1024 characters. */
export const SUBNET_ID_PATTERN = /^subnet-[a-zA-Z0-9\-._]+$/
/** `SecurityGroupId`: 1–1024 characters. */
export const SECURITY_GROUP_ID_PATTERN = /^sg-[a-zA-Z0-9\-._]+$/
/** `WeeklyMaintenanceWindowStart`: `DAY:HH:MM` in UTC, 30-minute steps; 1–9 characters. */
export const WEEKLY_MAINTENANCE_WINDOW_START_PATTERN =
  /^(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):(00|30)$/
/** `TagKey` (1–128) and `TagValue` (1–256, botocore MWAA model): letters, spaces, digits and `_.:/=+-@` (Unicode). */
export const TAG_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u

/** MWAA quota: workers per environment (adjustable at AWS; reference §11). */
export const MAX_WORKERS_QUOTA = 25
/** MWAA quota: web servers per environment (reference §11). */
export const MAX_WEBSERVERS_QUOTA = 5
/** Schedulers per environment: the model's maximum (reference §1.1). */
export const MAX_SCHEDULERS = 5
/** Minimum schedulers and web servers for Celery classes (MWAA API reference: "2 to 5"). */
const MIN_CELERY_SCHEDULERS = 2
const MIN_CELERY_WEBSERVERS = 2
/** ListEnvironments `MaxResults` range and default (the model's 1–25; MWAA's default page). */
export const MAX_LIST_RESULTS = 25
/** Tags per resource (`TagMap` / `TagKeyList` max). */
export const MAX_TAGS = 50

/** Methods InvokeRestApi accepts (`RestApiMethod`). */
export const REST_API_METHODS = ['GET', 'PUT', 'POST', 'PATCH', 'DELETE'] as const

interface StringRule {
  min: number
  max: number
  pattern?: RegExp
}

const RULES = {
  environmentName: { min: 1, max: 80, pattern: ENVIRONMENT_NAME_PATTERN },
  environmentArn: { min: 1, max: 1224, pattern: ENVIRONMENT_ARN_PATTERN },
  iamRoleArn: { min: 1, max: 1224, pattern: IAM_ROLE_ARN_PATTERN },
  s3BucketArn: { min: 1, max: 1224, pattern: S3_BUCKET_ARN_PATTERN },
  relativePath: { min: 1, max: 1024 },
  s3ObjectVersion: { min: 1, max: 1024 },
  environmentClass: { min: 1, max: 1024 },
  airflowVersion: { min: 1, max: 32, pattern: AIRFLOW_VERSION_PATTERN },
  kmsKey: { min: 1, max: 1224, pattern: KMS_KEY_PATTERN },
  configKey: { min: 1, max: 64, pattern: CONFIG_KEY_PATTERN },
  configValue: { min: 1, max: 65536, pattern: CONFIG_VALUE_PATTERN },
  subnetId: { min: 1, max: 1024, pattern: SUBNET_ID_PATTERN },
  securityGroupId: { min: 1, max: 1024, pattern: SECURITY_GROUP_ID_PATTERN },
  weeklyMaintenanceWindowStart: {
    min: 1,
    max: 9,
    pattern: WEEKLY_MAINTENANCE_WINDOW_START_PATTERN,
  },
  tagKey: { min: 1, max: 128, pattern: TAG_PATTERN },
  tagValue: { min: 1, max: 256, pattern: TAG_PATTERN },
  nextToken: { min: 0, max: 2048 },
  restApiPath: { min: 1, max: 64 },
} satisfies Record<string, StringRule>

// ---------------------------------------------------------------------------------------------
// Defaults (MWAA API reference and console defaults; reference §1.2)

/** Default `LoggingConfiguration`: only task logs enabled, every level INFO (console default). */
export function defaultLoggingConfiguration(): LoggingConfiguration {
  const config = {} as LoggingConfiguration
  for (const logType of LOG_TYPES) {
    config[logType] = { enabled: logType === 'taskLogs', logLevel: 'INFO' }
  }
  return config
}

/** Default `WeeklyMaintenanceWindowStart` (UTC). */
export const DEFAULT_WEEKLY_MAINTENANCE_WINDOW_START = 'SUN:03:30'

/** The process counts of a spec. */
export type EnvironmentCounts = Pick<
  EnvironmentSpec,
  'schedulers' | 'minWorkers' | 'maxWorkers' | 'minWebservers' | 'maxWebservers'
>

const COUNT_FIELDS = [
  'schedulers',
  'minWorkers',
  'maxWorkers',
  'minWebservers',
  'maxWebservers',
] as const satisfies readonly (keyof EnvironmentCounts)[]

/**
 * MWAA's default counts for a class: `mw1.micro` fixes everything at 1 (one scheduler that runs
 * tasks itself, one web server); Celery classes default to 2 schedulers, 1–10 workers and 2 web
 * servers (MWAA API reference, CreateEnvironment).
 * @param environmentClass - a class name; unknown names get the Celery defaults
 */
export function defaultCounts(environmentClass: string): EnvironmentCounts {
  if (findEnvironmentClass(environmentClass)?.hybrid === true) {
    return { schedulers: 1, minWorkers: 1, maxWorkers: 1, minWebservers: 1, maxWebservers: 1 }
  }
  return { schedulers: 2, minWorkers: 1, maxWorkers: 10, minWebservers: 2, maxWebservers: 2 }
}

// ---------------------------------------------------------------------------------------------
// Problem collection and message formatting

type Json = Record<string, unknown>

interface Problem {
  text: string
  /** A sentence of ours rather than an AWS-style constraint line. */
  sentence: boolean
}

/** Collects every problem of one request, then throws them as one `ValidationError`. */
class Problems {
  readonly items: Problem[] = []

  get count(): number {
    return this.items.length
  }

  /** `Value 'x' at 'path' failed to satisfy constraint: <rule>` (`Value at …` when sensitive). */
  constraint(path: string, value: unknown, rule: string, sensitive = false): void {
    this.items.push({
      text: `${describeValue(value, sensitive)} at '${path}' failed to satisfy constraint: ${rule}`,
      sentence: false,
    })
  }

  /** A JSON value of the wrong type. */
  typeMismatch(path: string, value: unknown, expected: string, sensitive = false): void {
    this.constraint(
      path,
      value,
      `Member must be ${expected}, not ${jsonTypeName(value)}`,
      sensitive,
    )
  }

  sentence(text: string): void {
    this.items.push({ text, sentence: true })
  }

  throwIfAny(): void {
    if (this.items.length > 0) throw new ValidationError(formatProblems(this.items))
  }
}

function formatProblems(items: readonly Problem[]): string {
  const [only] = items
  if (items.length === 1 && only?.sentence === true) return only.text
  const parts = items.map((p) => (p.sentence ? p.text.replace(/\.$/, '') : p.text))
  const noun = items.length === 1 ? 'error' : 'errors'
  return `${items.length} validation ${noun} detected: ${parts.join('; ')}`
}

const MAX_ECHO = 256

function describeValue(value: unknown, sensitive: boolean): string {
  if (sensitive) return 'Value'
  if (value === null || value === undefined) return 'Value null'
  let text = render(value)
  if (text.length > MAX_ECHO) text = `${text.slice(0, MAX_ECHO)}...`
  return `Value '${text}'`
}

/** Java-like rendering, as AWS echoes values: lists `[a, b]`, maps `{k=v}`. */
function render(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (Array.isArray(value)) return `[${value.map(render).join(', ')}]`
  if (typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${k}=${render(v)}`)
      .join(', ')}}`
  }
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return typeof value
}

function jsonTypeName(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  const names: Record<string, string> = {
    string: 'a string',
    number: 'a number',
    boolean: 'a boolean',
    object: 'an object',
  }
  return names[typeof value] ?? typeof value
}

// ---------------------------------------------------------------------------------------------
// Readers: each reports its problems and returns the value only when it is valid

/** Checks a string against a rule; reports every failed constraint; true when valid. */
function checkString(p: Problems, path: string, value: string, rule: StringRule): boolean {
  const failures = stringRuleFailures(value, rule)
  for (const failure of failures) p.constraint(path, value, failure)
  return failures.length === 0
}

function readString(
  p: Problems,
  src: Json,
  key: string,
  path: string,
  rule: StringRule,
  required = false,
): string | undefined {
  const value = src[key]
  if (value === undefined || value === null) {
    if (required) p.constraint(path, null, 'Member must not be null')
    return undefined
  }
  if (typeof value !== 'string') {
    p.typeMismatch(path, value, 'a string')
    return undefined
  }
  return checkString(p, path, value, rule) ? value : undefined
}

function readInteger(
  p: Problems,
  src: Json,
  key: string,
  path: string,
  range: { min: number; max: number },
): number | undefined {
  const value = src[key]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    p.typeMismatch(path, value, 'an integer')
    return undefined
  }
  return checkIntegerRange(p, path, value, range) ? value : undefined
}

function checkIntegerRange(
  p: Problems,
  path: string,
  value: number,
  range: { min: number; max: number },
): boolean {
  if (value < range.min) {
    p.constraint(path, value, `Member must have value greater than or equal to ${range.min}`)
    return false
  }
  if (value > range.max) {
    p.constraint(path, value, `Member must have value less than or equal to ${range.max}`)
    return false
  }
  return true
}

function readBoolean(
  p: Problems,
  src: Json,
  key: string,
  path: string,
  required: boolean,
): boolean | undefined {
  const value = src[key]
  if (value === undefined || value === null) {
    if (required) p.constraint(path, null, 'Member must not be null')
    return undefined
  }
  if (typeof value !== 'boolean') {
    p.typeMismatch(path, value, 'a boolean')
    return undefined
  }
  return value
}

function readEnum<T extends string>(
  p: Problems,
  src: Json,
  key: string,
  path: string,
  values: readonly T[],
  required = false,
): T | undefined {
  const value = src[key]
  if (value === undefined || value === null) {
    if (required) p.constraint(path, null, 'Member must not be null')
    return undefined
  }
  if (typeof value !== 'string') {
    p.typeMismatch(path, value, 'a string')
    return undefined
  }
  if (!(values as readonly string[]).includes(value)) {
    p.constraint(path, value, `Member must satisfy enum value set: [${values.join(', ')}]`)
    return undefined
  }
  return value as T
}

function readObject(
  p: Problems,
  src: Json,
  key: string,
  path: string,
  required = false,
): Json | undefined {
  const value = src[key]
  if (value === undefined || value === null) {
    if (required) p.constraint(path, null, 'Member must not be null')
    return undefined
  }
  if (!isJsonObject(value)) {
    p.typeMismatch(path, value, 'an object')
    return undefined
  }
  return value
}

function readStringList(
  p: Problems,
  src: Json,
  key: string,
  path: string,
  list: { minItems: number; maxItems: number; member: StringRule },
  required = false,
): string[] | undefined {
  const value = src[key]
  if (value === undefined || value === null) {
    if (required) p.constraint(path, null, 'Member must not be null')
    return undefined
  }
  if (!Array.isArray(value)) {
    p.typeMismatch(path, value, 'a list')
    return undefined
  }
  return checkStringList(p, path, value, list)
}

function checkStringList(
  p: Problems,
  path: string,
  value: readonly unknown[],
  list: { minItems: number; maxItems: number; member: StringRule },
): string[] | undefined {
  const before = p.count
  if (value.length < list.minItems) {
    p.constraint(path, value, `Member must have length greater than or equal to ${list.minItems}`)
  }
  if (value.length > list.maxItems) {
    p.constraint(path, value, `Member must have length less than or equal to ${list.maxItems}`)
  }
  value.forEach((item, i) => {
    const memberPath = `${path}.${i + 1}.member`
    if (typeof item !== 'string') p.typeMismatch(memberPath, item, 'a string')
    else checkString(p, memberPath, item, list.member)
  })
  return p.count === before ? (value as string[]) : undefined
}

interface MapRule {
  maxEntries: number
  key: StringRule
  value: StringRule
  /** Values are secrets: never echo them (model trait `sensitive`). */
  sensitive: boolean
}

/**
 * Reads a string→string map. Key problems: `Value 'k' at 'path' failed to satisfy constraint:
 * Map keys must satisfy constraint: [...]`; value problems name the key and never echo a
 * sensitive value.
 */
function checkStringMap(
  p: Problems,
  path: string,
  value: unknown,
  rule: MapRule,
): Record<string, string> | undefined {
  if (!isJsonObject(value)) {
    p.typeMismatch(path, value, 'a map (JSON object)', rule.sensitive)
    return undefined
  }
  const before = p.count
  const entries = Object.entries(value)
  if (entries.length > rule.maxEntries) {
    p.constraint(
      path,
      value,
      `Member must have length less than or equal to ${rule.maxEntries}`,
      rule.sensitive,
    )
  }
  for (const [k, v] of entries) {
    const keyProblems = stringRuleFailures(k, rule.key)
    if (keyProblems.length > 0) {
      p.constraint(path, k, `Map keys must satisfy constraint: [${keyProblems.join(', ')}]`)
    }
    if (typeof v !== 'string') {
      p.constraint(
        path,
        v,
        `Map value for key '${k}' must be a string, not ${jsonTypeName(v)}`,
        rule.sensitive,
      )
      continue
    }
    const valueProblems = stringRuleFailures(v, rule.value)
    if (valueProblems.length > 0) {
      p.constraint(
        path,
        v,
        `Map value for key '${k}' must satisfy constraint: [${valueProblems.join(', ')}]`,
        rule.sensitive,
      )
    }
  }
  return p.count === before ? (Object.fromEntries(entries) as Record<string, string>) : undefined
}

function stringRuleFailures(value: string, rule: StringRule): string[] {
  const failures: string[] = []
  if (value.length < rule.min) {
    failures.push(`Member must have length greater than or equal to ${rule.min}`)
  }
  if (value.length > rule.max) {
    failures.push(`Member must have length less than or equal to ${rule.max}`)
  }
  if (rule.pattern !== undefined && value.length > 0 && !rule.pattern.test(value)) {
    failures.push(`Member must satisfy regular expression pattern: ${rule.pattern.source}`)
  }
  return failures
}

/** Reads the request body as a JSON object, or reports that it is not one. */
function bodyObject(p: Problems, body: unknown): Json | undefined {
  if (body === undefined || body === null) return {}
  if (!isJsonObject(body)) {
    p.sentence('The request body must be a JSON object.')
    return undefined
  }
  return body
}

// ---------------------------------------------------------------------------------------------
// Environment spec fields (shared by CreateEnvironment and UpdateEnvironment)

/**
 * The inputs read from the source bucket, each a `…S3Path` and its `…S3ObjectVersion`. An
 * omitted version means the version current when the request is accepted (the environment
 * service resolves it; MWAA's model makes the version members optional).
 */
export const ARTIFACTS = [
  { path: 'pluginsS3Path', version: 'pluginsS3ObjectVersion' },
  { path: 'requirementsS3Path', version: 'requirementsS3ObjectVersion' },
  { path: 'startupScriptS3Path', version: 'startupScriptS3ObjectVersion' },
] as const

interface SpecFields {
  spec: Partial<EnvironmentSpec>
  tags?: Record<string, string>
  workerReplacementStrategy?: WorkerReplacementStrategy
}

/**
 * Reads every spec member present in `src` (camelCase, from `fromWireSpecFields`).
 * `create` makes ExecutionRoleArn, SourceBucketArn, DagS3Path and NetworkConfiguration (both
 * lists) required; `update` makes NetworkConfiguration.SecurityGroupIds required when
 * NetworkConfiguration is sent and forbids SubnetIds.
 */
function readSpecFields(p: Problems, src: Json, operation: 'create' | 'update'): SpecFields {
  const create = operation === 'create'
  const spec: Partial<EnvironmentSpec> = {}
  const set = <K extends keyof EnvironmentSpec>(key: K, value: EnvironmentSpec[K] | undefined) => {
    if (value !== undefined) spec[key] = value
  }

  set(
    'executionRoleArn',
    readString(p, src, 'executionRoleArn', 'executionRoleArn', RULES.iamRoleArn, create),
  )
  set('sourceBucketArn', readSourceBucketArn(p, src, create))
  set('dagS3Path', readRelativePath(p, src, 'dagS3Path', create))
  for (const artifact of ARTIFACTS) {
    set(artifact.path, readRelativePath(p, src, artifact.path, false))
    // Optional in MWAA's model: an omitted version is resolved by the environment service.
    set(
      artifact.version,
      readString(p, src, artifact.version, artifact.version, RULES.s3ObjectVersion),
    )
  }

  set('networkConfiguration', readNetworkConfiguration(p, src, operation))

  if (src.airflowConfigurationOptions !== undefined) {
    set(
      'airflowConfigurationOptions',
      readAirflowConfigurationOptions(p, src.airflowConfigurationOptions),
    )
  }

  const environmentClass = readString(
    p,
    src,
    'environmentClass',
    'environmentClass',
    RULES.environmentClass,
  )
  if (environmentClass !== undefined && findEnvironmentClass(environmentClass) === undefined) {
    p.sentence(
      `${wireName('environmentClass')} '${environmentClass}' is not valid. Valid classes: ${ENVIRONMENT_CLASSES.map((c) => c.name).join(', ')}.`,
    )
  } else {
    set('environmentClass', environmentClass)
  }

  const airflowVersion = readString(
    p,
    src,
    'airflowVersion',
    'airflowVersion',
    RULES.airflowVersion,
  )
  if (airflowVersion !== undefined && !isSupportedAirflowVersion(airflowVersion)) {
    p.sentence(
      `${wireName('airflowVersion')} '${airflowVersion}' is not supported. Supported versions: ${SUPPORTED_AIRFLOW_VERSIONS.join(', ')}.`,
    )
  } else {
    set('airflowVersion', airflowVersion)
  }

  set(
    'maxWorkers',
    readInteger(p, src, 'maxWorkers', 'maxWorkers', { min: 1, max: MAX_WORKERS_QUOTA }),
  )
  set(
    'minWorkers',
    readInteger(p, src, 'minWorkers', 'minWorkers', { min: 1, max: MAX_WORKERS_QUOTA }),
  )
  set(
    'schedulers',
    readInteger(p, src, 'schedulers', 'schedulers', { min: 1, max: MAX_SCHEDULERS }),
  )
  const webservers = { min: 1, max: MAX_WEBSERVERS_QUOTA }
  set('minWebservers', readInteger(p, src, 'minWebservers', 'minWebservers', webservers))
  set('maxWebservers', readInteger(p, src, 'maxWebservers', 'maxWebservers', webservers))

  set('kmsKey', readString(p, src, 'kmsKey', 'kmsKey', RULES.kmsKey))
  set('loggingConfiguration', readLoggingConfiguration(p, src))
  set(
    'weeklyMaintenanceWindowStart',
    readString(
      p,
      src,
      'weeklyMaintenanceWindowStart',
      'weeklyMaintenanceWindowStart',
      RULES.weeklyMaintenanceWindowStart,
    ),
  )
  set(
    'webserverAccessMode',
    readEnum(p, src, 'webserverAccessMode', 'webserverAccessMode', WEBSERVER_ACCESS_MODES),
  )
  set(
    'endpointManagement',
    readEnum(p, src, 'endpointManagement', 'endpointManagement', ENDPOINT_MANAGEMENTS),
  )

  const fields: SpecFields = { spec }
  if (src.tags !== undefined) fields.tags = checkTags(p, src.tags)
  const strategy = readEnum(
    p,
    src,
    'workerReplacementStrategy',
    'workerReplacementStrategy',
    WORKER_REPLACEMENT_STRATEGIES,
  )
  if (strategy !== undefined) fields.workerReplacementStrategy = strategy
  return fields
}

/**
 * `SourceBucketArn`: the model's `S3BucketArn` (1–1224, `arn:aws(-[a-z]+)?:s3:::[a-z0-9.-]+`),
 * and a bucket name that S3's naming rules allow ({@link bucketNameProblem}: 3–63 characters,
 * no `..`, not an IP address, no reserved prefix or suffix) — MWAA refuses a bucket that cannot
 * exist, and a folder bucket needs a safe folder name.
 */
function readSourceBucketArn(p: Problems, src: Json, required: boolean): string | undefined {
  const arn = readString(p, src, 'sourceBucketArn', 'sourceBucketArn', RULES.s3BucketArn, required)
  if (arn === undefined) return undefined
  const bucket = arn.slice(arn.indexOf(':::') + 3)
  const problem = bucketNameProblem(bucket)
  if (problem !== undefined) {
    p.sentence(
      `${wireName('sourceBucketArn')} '${arn}' does not name a valid S3 bucket: '${bucket}' ${problem}.`,
    )
    return undefined
  }
  return arn
}

/**
 * A `RelativePath` (1–1024). airdock also refuses `..` segments: a folder bucket maps the path
 * onto the file system, and no S3 key MWAA users rely on needs them.
 */
function readRelativePath(
  p: Problems,
  src: Json,
  key: string,
  required: boolean,
): string | undefined {
  const value = readString(p, src, key, key, RULES.relativePath, required)
  if (value === undefined) return undefined
  if (value.split(/[\\/]/).some((segment) => segment === '..')) {
    p.sentence(`${wireName(key)} must be a path inside the bucket: '..' segments are not allowed.`)
    return undefined
  }
  return value
}

function readNetworkConfiguration(
  p: Problems,
  src: Json,
  operation: 'create' | 'update',
): EnvironmentSpec['networkConfiguration'] | undefined {
  const path = 'networkConfiguration'
  const network = readObject(p, src, 'networkConfiguration', path, operation === 'create')
  if (network === undefined) return undefined
  const securityGroupIds = readStringList(
    p,
    network,
    'securityGroupIds',
    `${path}.securityGroupIds`,
    { minItems: 1, maxItems: 5, member: RULES.securityGroupId },
    true,
  )
  if (operation === 'update') {
    if (network.subnetIds !== undefined) {
      p.sentence(
        `${wireName(`${path}.subnetIds`)} cannot be changed: an environment keeps the subnets it was created with.`,
      )
      return undefined
    }
    // Subnets never change; `mergeEnvironmentSpec` keeps the current ones.
    return securityGroupIds === undefined ? undefined : { subnetIds: [], securityGroupIds }
  }
  const subnetIds = readStringList(
    p,
    network,
    'subnetIds',
    `${path}.subnetIds`,
    { minItems: 2, maxItems: 2, member: RULES.subnetId },
    true,
  )
  if (subnetIds === undefined || securityGroupIds === undefined) return undefined
  return { subnetIds, securityGroupIds }
}

function readAirflowConfigurationOptions(
  p: Problems,
  value: unknown,
): Record<string, string> | undefined {
  const path = 'airflowConfigurationOptions'
  const options = checkStringMap(p, path, value, {
    maxEntries: Number.POSITIVE_INFINITY,
    key: RULES.configKey,
    value: RULES.configValue,
    sensitive: true,
  })
  if (options === undefined) return undefined
  const before = p.count
  for (const key of Object.keys(options)) {
    if (!key.includes('.')) {
      p.sentence(
        `${wireName(path)} key '${key}' must have the form section.option (for example core.parallelism).`,
      )
    } else if (isOwnedAirflowOption(key)) {
      p.sentence(
        `${wireName(path)} key '${key}' cannot be set: airdock manages it (executor, database, broker, fernet/JWT/API secret keys, folders, logging, auth and execution API settings are fixed).`,
      )
    }
  }
  return p.count === before ? options : undefined
}

/**
 * Reads `LoggingConfiguration`. Every log type sent must carry `Enabled` and `LogLevel`
 * (`ModuleLoggingConfigurationInput`); log types not sent take their defaults, so the result is
 * always a whole configuration.
 */
function readLoggingConfiguration(p: Problems, src: Json): LoggingConfiguration | undefined {
  const path = 'loggingConfiguration'
  const logging = readObject(p, src, 'loggingConfiguration', path)
  if (logging === undefined) return undefined
  const before = p.count
  const config = defaultLoggingConfiguration()
  for (const logType of LOG_TYPES) {
    const modulePath = `${path}.${logType}`
    const module = readObject(p, logging, logType, modulePath)
    if (module === undefined) continue
    const enabled = readBoolean(p, module, 'enabled', `${modulePath}.enabled`, true)
    const logLevel = readEnum(p, module, 'logLevel', `${modulePath}.logLevel`, LOGGING_LEVELS, true)
    if (enabled !== undefined && logLevel !== undefined) {
      config[logType] = { enabled, logLevel } satisfies ModuleLoggingConfiguration
    }
  }
  return p.count === before ? config : undefined
}

function checkTags(p: Problems, value: unknown): Record<string, string> | undefined {
  const tags = checkStringMap(p, 'tags', value, {
    maxEntries: MAX_TAGS,
    key: RULES.tagKey,
    value: RULES.tagValue,
    sensitive: false,
  })
  if (tags === undefined) return undefined
  const before = p.count
  for (const key of Object.keys(tags)) {
    if (key.toLowerCase().startsWith('aws:')) {
      p.sentence(`Tag key '${key}' is not allowed: the 'aws:' prefix is reserved for AWS use.`)
    }
  }
  return p.count === before ? tags : undefined
}

function checkEnvironmentName(p: Problems, name: unknown): string | undefined {
  return readString(p, { name }, 'name', 'name', RULES.environmentName, true)
}

/** Test-and-narrow for a value the readers have already checked. */
function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new ValidationError(`${what} is required.`)
  return value
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Validates an environment name (`EnvironmentName`: 1–80, `^[a-zA-Z][0-9a-zA-Z_-]*$`).
 * @returns the name unchanged
 * @throws ValidationError naming `name`
 */
export function validateEnvironmentName(name: string): string {
  const p = new Problems()
  const valid = checkEnvironmentName(p, name)
  p.throwIfAny()
  return present(valid, 'Name')
}

/**
 * Validates an environment ARN from the `{ResourceArn}` label (already percent-decoded once):
 * `EnvironmentArn`, 1–1224, `^arn:aws(-[a-z]+)?:airflow:[a-z0-9-]+:\d{12}:environment/\w+.*$`.
 * @returns the ARN unchanged
 * @throws ValidationError naming `resourceArn`
 */
export function validateEnvironmentArn(arn: string): string {
  const p = new Problems()
  const valid = readString(p, { arn }, 'arn', 'resourceArn', RULES.environmentArn, true)
  p.throwIfAny()
  return present(valid, 'ResourceArn')
}

/**
 * Validates a `TagMap` (TagResource's `Tags`, CreateEnvironment's `Tags`): at most 50 entries
 * (an empty map is accepted), keys 1–128 and values 0–256 characters of letters, spaces, digits
 * and `_.:/=+-@`; keys must not start with the reserved `aws:` prefix (any case; AWS tagging
 * rules).
 * @param tags - the JSON value of `Tags`
 * @param required - true for TagResource, where `Tags` is a required member
 * @returns a copy of the tags
 * @throws ValidationError naming `tags`
 */
export function validateTags(tags: unknown, required = false): Record<string, string> {
  const p = new Problems()
  let valid: Record<string, string> | undefined = {}
  if (tags === undefined || tags === null) {
    if (required) p.constraint('tags', null, 'Member must not be null')
  } else {
    valid = checkTags(p, tags)
  }
  p.throwIfAny()
  return present(valid, 'Tags')
}

/**
 * Validates UntagResource's `tagKeys` (`TagKeyList`: 0–50 keys, each a `TagKey`).
 * @returns a copy of the keys
 * @throws ValidationError naming `tagKeys` or `tagKeys.N.member`
 */
export function validateTagKeys(keys: readonly string[]): string[] {
  const p = new Problems()
  const valid = checkStringList(p, 'tagKeys', keys, {
    minItems: 0,
    maxItems: MAX_TAGS,
    member: RULES.tagKey,
  })
  p.throwIfAny()
  return [...present(valid, 'tagKeys')]
}

/**
 * Validates ListEnvironments' query parameters.
 * @param maxResults - raw `MaxResults` query value: an integer 1–25; default 25
 * @param nextToken - raw `NextToken` query value: 0–2048 characters, opaque
 * @throws ValidationError naming `maxResults` / `nextToken`
 */
export function validateListEnvironments(
  maxResults?: string,
  nextToken?: string,
): { maxResults: number; nextToken?: string } {
  const p = new Problems()
  let max: number | undefined = MAX_LIST_RESULTS
  if (maxResults !== undefined) {
    max = undefined
    if (!/^[+-]?\d{1,15}$/.test(maxResults.trim())) {
      p.typeMismatch('maxResults', maxResults, 'an integer')
    } else {
      const parsed = Number(maxResults.trim())
      if (checkIntegerRange(p, 'maxResults', parsed, { min: 1, max: MAX_LIST_RESULTS })) {
        max = parsed
      }
    }
  }
  const token = readString(p, { nextToken }, 'nextToken', 'nextToken', RULES.nextToken)
  p.throwIfAny()
  const result: { maxResults: number; nextToken?: string } = {
    maxResults: present(max, 'MaxResults'),
  }
  if (token !== undefined && token !== '') result.nextToken = token
  return result
}

/**
 * Validates a CreateEnvironment request and fills in MWAA's defaults: AirflowVersion = latest
 * supported, EnvironmentClass `mw1.small`, counts per class (see {@link defaultCounts}),
 * LoggingConfiguration with only task logs enabled (INFO), WeeklyMaintenanceWindowStart
 * `SUN:03:30`, WebserverAccessMode `PRIVATE_ONLY`, EndpointManagement `SERVICE`, no Airflow
 * configuration options, no tags. Unknown members are ignored, as AWS does.
 * @param name - the `{Name}` URI label (decoded)
 * @param body - the parsed JSON body (PascalCase wire shape, §1.2)
 * @returns the name, the full spec and the tags
 * @throws ValidationError listing every field problem; then cross-field problems
 *   ({@link validateMergedSpec})
 */
export function validateCreateEnvironment(name: string, body: unknown): CreateEnvironmentRequest {
  const p = new Problems()
  const validName = checkEnvironmentName(p, name)
  const wire = bodyObject(p, body)
  const fields =
    wire === undefined
      ? { spec: {} }
      : readSpecFields(p, fromWireSpecFields(wire, 'create'), 'create')
  p.throwIfAny()

  const given = fields.spec
  const environmentClass = given.environmentClass ?? DEFAULT_ENVIRONMENT_CLASS
  const counts = defaultCounts(environmentClass)
  const spec: EnvironmentSpec = {
    executionRoleArn: present(given.executionRoleArn, 'ExecutionRoleArn'),
    sourceBucketArn: present(given.sourceBucketArn, 'SourceBucketArn'),
    dagS3Path: present(given.dagS3Path, 'DagS3Path'),
    networkConfiguration: present(given.networkConfiguration, 'NetworkConfiguration'),
    airflowConfigurationOptions: given.airflowConfigurationOptions ?? {},
    environmentClass,
    maxWorkers: given.maxWorkers ?? counts.maxWorkers,
    minWorkers: given.minWorkers ?? counts.minWorkers,
    schedulers: given.schedulers ?? counts.schedulers,
    minWebservers: given.minWebservers ?? counts.minWebservers,
    maxWebservers: given.maxWebservers ?? counts.maxWebservers,
    airflowVersion: given.airflowVersion ?? DEFAULT_AIRFLOW_VERSION,
    loggingConfiguration: given.loggingConfiguration ?? defaultLoggingConfiguration(),
    weeklyMaintenanceWindowStart:
      given.weeklyMaintenanceWindowStart ?? DEFAULT_WEEKLY_MAINTENANCE_WINDOW_START,
    webserverAccessMode: given.webserverAccessMode ?? 'PRIVATE_ONLY',
    endpointManagement: given.endpointManagement ?? 'SERVICE',
  }
  for (const key of ['kmsKey', ...ARTIFACTS.flatMap((a) => [a.path, a.version])] as const) {
    const value = given[key]
    if (value !== undefined) spec[key] = value
  }
  validateMergedSpec(spec)
  return { name: present(validName, 'Name'), spec, tags: fields.tags ?? {} }
}

/**
 * Validates an UpdateEnvironment request. Every member is optional and no default is applied:
 * `changes` holds exactly the members sent, in camelCase. Semantics of the members that are
 * structures or maps:
 * - `AirflowConfigurationOptions` replaces the whole map (`{}` clears it);
 * - `LoggingConfiguration` replaces the whole configuration; log types not sent take their
 *   defaults (disabled, INFO; task logs enabled);
 * - `NetworkConfiguration` is `{SecurityGroupIds}` only: `changes.networkConfiguration.subnetIds`
 *   is always `[]` (subnets never change; {@link mergeEnvironmentSpec} keeps the current ones),
 *   and sending `SubnetIds` is a ValidationError.
 * `KmsKey`, `Tags` and `EndpointManagement` are not members of `UpdateEnvironmentInput` and are
 * ignored, like any unknown member. Rules between fields need the current spec: callers merge
 * with {@link mergeEnvironmentSpec}, which runs {@link validateMergedSpec}.
 * @param name - the `{Name}` URI label (decoded)
 * @param body - the parsed JSON body (PascalCase wire shape, §1.3)
 * @throws ValidationError listing every field problem
 */
export function validateUpdateEnvironment(name: string, body: unknown): UpdateEnvironmentRequest {
  const p = new Problems()
  const validName = checkEnvironmentName(p, name)
  const wire = bodyObject(p, body)
  const fields =
    wire === undefined
      ? { spec: {} }
      : readSpecFields(p, fromWireSpecFields(wire, 'update'), 'update')
  p.throwIfAny()
  const request: UpdateEnvironmentRequest = {
    name: present(validName, 'Name'),
    changes: fields.spec,
  }
  if (fields.workerReplacementStrategy !== undefined) {
    request.workerReplacementStrategy = fields.workerReplacementStrategy
  }
  return request
}

/**
 * Applies an update's `changes` to the current spec and validates the result.
 * - Subnets are always the current ones (they cannot change).
 * - A `…S3Path` sent without its `…S3ObjectVersion` leaves the version unset (it is not
 *   inherited): the environment service resolves it to the version current at the request.
 * - When the class changes between `mw1.micro` and a Celery class, counts not in `changes` take
 *   the new class's defaults ({@link defaultCounts}): MWAA fixes every count of `mw1.micro` at 1.
 * @param current - the environment's spec now
 * @param changes - `UpdateEnvironmentRequest.changes`
 * @returns the new spec (a new object; neither input is modified)
 * @throws ValidationError from {@link validateMergedSpec}
 */
export function mergeEnvironmentSpec(
  current: EnvironmentSpec,
  changes: Partial<EnvironmentSpec>,
): EnvironmentSpec {
  const defined = Object.fromEntries(
    Object.entries(changes).filter(([, v]) => v !== undefined),
  ) as Partial<EnvironmentSpec>
  const merged: EnvironmentSpec = {
    ...current,
    ...defined,
    networkConfiguration: {
      subnetIds: [...current.networkConfiguration.subnetIds],
      securityGroupIds: [
        ...(defined.networkConfiguration?.securityGroupIds ??
          current.networkConfiguration.securityGroupIds),
      ],
    },
  }
  for (const artifact of ARTIFACTS) {
    if (defined[artifact.path] !== undefined && defined[artifact.version] === undefined) {
      delete merged[artifact.version]
    }
  }
  if (defined.environmentClass !== undefined) {
    const wasHybrid = findEnvironmentClass(current.environmentClass)?.hybrid === true
    const isHybrid = findEnvironmentClass(defined.environmentClass)?.hybrid === true
    if (wasHybrid !== isHybrid) {
      const counts = defaultCounts(defined.environmentClass)
      for (const key of COUNT_FIELDS) {
        if (defined[key] === undefined) merged[key] = counts[key]
      }
    }
  }
  validateMergedSpec(merged)
  return merged
}

/**
 * Checks the rules between fields of a whole spec (after CreateEnvironment's defaults, or after
 * merging an update):
 * - EnvironmentClass is one MWAA offers;
 * - NetworkConfiguration.SubnetIds lists exactly 2 subnets;
 * - MinWorkers ≤ MaxWorkers and MinWebservers ≤ MaxWebservers;
 * - `mw1.micro`: Schedulers, Min/MaxWorkers and Min/MaxWebservers are all 1 (MWAA user guide,
 *   "Environment class");
 * - Celery classes: Schedulers 2–5 and Min/MaxWebservers 2–5 (MWAA API reference);
 * - Plugins, Requirements and StartupScript: an object version needs its path (a path without
 *   a version is allowed here; the environment service resolves the version).
 * @throws ValidationError listing every broken rule, each a sentence naming the wire fields
 */
export function validateMergedSpec(spec: EnvironmentSpec): void {
  const p = new Problems()
  const cls = findEnvironmentClass(spec.environmentClass)
  if (cls === undefined) {
    p.sentence(
      `${wireName('environmentClass')} '${spec.environmentClass}' is not valid. Valid classes: ${ENVIRONMENT_CLASSES.map((c) => c.name).join(', ')}.`,
    )
  }
  if (spec.networkConfiguration.subnetIds.length !== 2) {
    p.sentence(
      `${wireName('networkConfiguration.subnetIds')} must list exactly 2 subnets (got ${spec.networkConfiguration.subnetIds.length}).`,
    )
  }
  checkMinMax(p, spec, 'minWorkers', 'maxWorkers')
  checkMinMax(p, spec, 'minWebservers', 'maxWebservers')
  if (cls?.hybrid === true) {
    for (const key of COUNT_FIELDS) {
      if (spec[key] !== 1) {
        p.sentence(`${wireName(key)} (${spec[key]}) must be 1 for environment class ${cls.name}.`)
      }
    }
  } else if (cls !== undefined) {
    const ranges = [
      ['schedulers', MIN_CELERY_SCHEDULERS, MAX_SCHEDULERS],
      ['minWebservers', MIN_CELERY_WEBSERVERS, MAX_WEBSERVERS_QUOTA],
      ['maxWebservers', MIN_CELERY_WEBSERVERS, MAX_WEBSERVERS_QUOTA],
    ] as const
    for (const [key, min, max] of ranges) {
      if (spec[key] < min || spec[key] > max) {
        p.sentence(
          `${wireName(key)} (${spec[key]}) must be between ${min} and ${max} for environment class ${cls.name}.`,
        )
      }
    }
  }
  for (const artifact of ARTIFACTS) {
    if (spec[artifact.version] !== undefined && spec[artifact.path] === undefined) {
      p.sentence(`${wireName(artifact.version)} is set but ${wireName(artifact.path)} is not.`)
    }
  }
  p.throwIfAny()
}

function checkMinMax(
  p: Problems,
  spec: EnvironmentSpec,
  minKey: keyof EnvironmentCounts,
  maxKey: keyof EnvironmentCounts,
): void {
  if (spec[minKey] > spec[maxKey]) {
    p.sentence(
      `${wireName(minKey)} (${spec[minKey]}) must be less than or equal to ${wireName(maxKey)} (${spec[maxKey]}).`,
    )
  }
}

/**
 * Validates an InvokeRestApi request (reference §1.4).
 * - `Path` (required, 1–64): relative to the Airflow REST API root (`/api/v2`), must start with
 *   a single `/`, and must not contain `://` or `.`/`..` segments (also percent-encoded, also with `\`),
 *   so it can never leave the Airflow API;
 * - `Method` (required): GET, PUT, POST, PATCH or DELETE;
 * - `QueryParameters` (optional): a JSON object;
 * - `Body` (optional): any JSON document.
 * @param name - the `{Name}` URI label (decoded)
 * @param body - the parsed JSON body
 * @throws ValidationError naming `path`, `method`, `queryParameters` or `name`
 */
export function validateInvokeRestApi(name: string, body: unknown): InvokeRestApiRequest {
  const p = new Problems()
  const validName = checkEnvironmentName(p, name)
  const wire = bodyObject(p, body)
  const src = wire === undefined ? {} : fromWire(wire, INVOKE_REST_API_INPUT)
  const path =
    wire === undefined ? undefined : readString(p, src, 'path', 'path', RULES.restApiPath, true)
  if (path !== undefined) checkRestApiPath(p, path)
  const method =
    wire === undefined ? undefined : readEnum(p, src, 'method', 'method', REST_API_METHODS, true)
  const queryParameters = readObject(p, src, 'queryParameters', 'queryParameters')
  p.throwIfAny()
  const request: InvokeRestApiRequest = {
    name: present(validName, 'Name'),
    path: present(path, 'Path'),
    method: present(method, 'Method'),
  }
  if (queryParameters !== undefined) request.queryParameters = queryParameters
  if (src.body !== undefined) request.body = src.body
  return request
}

function checkRestApiPath(p: Problems, path: string): void {
  if (!path.startsWith('/')) {
    p.sentence(
      `${wireName('path')} '${path}' must start with '/' (it is relative to the Airflow REST API root).`,
    )
    return
  }
  if (path.includes('://') || path.startsWith('//')) {
    p.sentence(`${wireName('path')} '${path}' must be a path, not a URL.`)
    return
  }
  // URL parsers drop tabs and newlines, which would hide a '..' segment from the check below.
  if ([...path].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    p.sentence(`${wireName('path')} must not contain control characters.`)
    return
  }
  const pathOnly = path.split(/[?#]/)[0] ?? ''
  const dotSegment = pathOnly.split(/[\\/]/).some((segment) => {
    let decoded = segment
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      // keep the raw segment: it cannot be a dot segment after decoding anyway
    }
    return decoded === '.' || decoded === '..'
  })
  if (dotSegment) {
    p.sentence(`${wireName('path')} '${path}' must not contain '.' or '..' segments.`)
  }
}
