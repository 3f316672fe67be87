/**
 * MWAA's wire shapes (rest-json, PascalCase members) and their conversion to and from airdock's
 * camelCase domain types. This is the only module that knows PascalCase member names
 * (DESIGN.md decision 2); everything else works with `EnvironmentSpec` and friends.
 *
 * Source of every member name: the botocore MWAA model `mwaa/2020-07-01/service-2.json`
 * (reference `mwaa-api-and-behaviour.md` §1–§2).
 */
import type { LogType } from '../domain/environment.js'
import type { EnvironmentView, InvokeRestApiResult } from '../services/environment-service-port.js'

/** One wire member: its camelCase name and, for a structure, the members inside it. */
export interface WireMember {
  /** camelCase name of the member in airdock's domain types (and in AWS's "at '…'" messages). */
  name: string
  /** Members of a nested structure; absent for scalars, lists and maps (maps keep their keys). */
  members?: WireShape
}

/** A structure's members, keyed by their PascalCase wire name. */
export type WireShape = Readonly<Record<string, WireMember>>

/** Builds a shape whose camelCase names are the wire names with a lower-case first letter. */
function shape(scalars: readonly string[], structures: Record<string, WireShape> = {}): WireShape {
  const out: Record<string, WireMember> = {}
  for (const wire of scalars) out[wire] = { name: lowerFirst(wire) }
  for (const [wire, members] of Object.entries(structures)) {
    out[wire] = { name: lowerFirst(wire), members }
  }
  return out
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1)
}

function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1)
}

/** `ModuleLoggingConfigurationInput`. */
const MODULE_LOGGING_CONFIGURATION_INPUT = shape(['Enabled', 'LogLevel'])

/** `LoggingConfigurationInput`: the five log types. */
const LOGGING_CONFIGURATION_INPUT = shape(
  [],
  Object.fromEntries(
    ['DagProcessingLogs', 'SchedulerLogs', 'WebserverLogs', 'WorkerLogs', 'TaskLogs'].map((t) => [
      t,
      MODULE_LOGGING_CONFIGURATION_INPUT,
    ]),
  ),
)

/** Members CreateEnvironment and UpdateEnvironment share (everything but the network). */
const COMMON_SPEC_MEMBERS = [
  'ExecutionRoleArn',
  'SourceBucketArn',
  'DagS3Path',
  'PluginsS3Path',
  'PluginsS3ObjectVersion',
  'RequirementsS3Path',
  'RequirementsS3ObjectVersion',
  'StartupScriptS3Path',
  'StartupScriptS3ObjectVersion',
  'AirflowConfigurationOptions',
  'EnvironmentClass',
  'MaxWorkers',
  'MinWorkers',
  'Schedulers',
  'MinWebservers',
  'MaxWebservers',
  'AirflowVersion',
  'WeeklyMaintenanceWindowStart',
  'WebserverAccessMode',
] as const

/** `CreateEnvironmentInput` body members (Name is the URI label). */
export const CREATE_ENVIRONMENT_INPUT: WireShape = shape(
  [...COMMON_SPEC_MEMBERS, 'KmsKey', 'Tags', 'EndpointManagement'],
  {
    NetworkConfiguration: shape(['SubnetIds', 'SecurityGroupIds']),
    LoggingConfiguration: LOGGING_CONFIGURATION_INPUT,
  },
)

/**
 * `UpdateEnvironmentInput` body members. `KmsKey`, `Tags` and `EndpointManagement` are not members
 * (they cannot change) and are ignored like any unknown member. `NetworkConfiguration` is
 * `UpdateNetworkConfigurationInput {SecurityGroupIds}`; `SubnetIds` is kept here only so that
 * validation can reject an attempt to change subnets.
 */
export const UPDATE_ENVIRONMENT_INPUT: WireShape = shape(
  [...COMMON_SPEC_MEMBERS, 'WorkerReplacementStrategy'],
  {
    NetworkConfiguration: shape(['SubnetIds', 'SecurityGroupIds']),
    LoggingConfiguration: LOGGING_CONFIGURATION_INPUT,
  },
)

/** `InvokeRestApiRequest` body members (Name is the URI label). */
export const INVOKE_REST_API_INPUT: WireShape = shape(['Path', 'Method', 'QueryParameters', 'Body'])

/** `TagResourceInput` body members (ResourceArn is the URI label). */
export const TAG_RESOURCE_INPUT: WireShape = shape(['Tags'])

/** Query-string parameter names, as the model spells them (`tagKeys` really is camelCase). */
export const WIRE_QUERY_PARAMETERS = {
  nextToken: 'NextToken',
  maxResults: 'MaxResults',
  tagKeys: 'tagKeys',
} as const

/**
 * Converts a parsed JSON body from wire (PascalCase) to camelCase, following `wireShape`.
 * Members not in the shape are dropped (AWS ignores unknown members); `null` members are dropped
 * (rest-json treats them as absent); map members (`Tags`, `AirflowConfigurationOptions`,
 * `QueryParameters`, `Body`) are passed through with their keys untouched. A structure member
 * whose value is not a JSON object is passed through as is, so validation can report its type.
 * @param body - a JSON object (`JSON.parse` output)
 * @param wireShape - e.g. `CREATE_ENVIRONMENT_INPUT`
 * @returns a new object with own, camelCase properties only
 */
export function fromWire(
  body: Record<string, unknown>,
  wireShape: WireShape,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [wire, member] of Object.entries(wireShape)) {
    if (!Object.hasOwn(body, wire)) continue
    const value = body[wire]
    if (value === null || value === undefined) continue
    out[member.name] =
      member.members !== undefined && isJsonObject(value) ? fromWire(value, member.members) : value
  }
  return out
}

/**
 * Converts a CreateEnvironment or UpdateEnvironment body to camelCase spec fields (unvalidated).
 * @param body - the parsed JSON body of `PUT` / `PATCH /environments/{Name}`
 * @param operation - which input shape applies
 * @returns camelCase members, e.g. `{ maxWorkers: 5, networkConfiguration: { subnetIds: [...] } }`
 */
export function fromWireSpecFields(
  body: Record<string, unknown>,
  operation: 'create' | 'update',
): Record<string, unknown> {
  return fromWire(
    body,
    operation === 'create' ? CREATE_ENVIRONMENT_INPUT : UPDATE_ENVIRONMENT_INPUT,
  )
}

/**
 * The wire name of a camelCase member path, for messages that name a field as the caller sent it.
 * Every MWAA body member is its camelCase name with an upper-case first letter.
 * @example wireName('networkConfiguration.subnetIds') // 'NetworkConfiguration.SubnetIds'
 */
export function wireName(path: string): string {
  return path.split('.').map(upperFirst).join('.')
}

/** True for a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Seconds since the Unix epoch, fractional (rest-json's default timestamp format in bodies).
 * @param date - any instant
 */
export function epochSeconds(date: Date): number {
  return date.getTime() / 1000
}

/** The MWAA service-linked role every environment reports as `ServiceRoleArn`. */
export function serviceRoleArn(accountId: string): string {
  return `arn:aws:iam::${accountId}:role/aws-service-role/airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA`
}

/** Log type → wire member name in `LoggingConfiguration`. */
const LOG_TYPE_WIRE_NAMES: Record<LogType, string> = {
  dagProcessingLogs: 'DagProcessingLogs',
  schedulerLogs: 'SchedulerLogs',
  webserverLogs: 'WebserverLogs',
  workerLogs: 'WorkerLogs',
  taskLogs: 'TaskLogs',
}

/** Log type → suffix of its CloudWatch log group name (reference §6). */
const LOG_GROUP_SUFFIXES: Record<LogType, string> = {
  dagProcessingLogs: 'DAGProcessing',
  schedulerLogs: 'Scheduler',
  webserverLogs: 'WebServer',
  workerLogs: 'Worker',
  taskLogs: 'Task',
}

/**
 * The CloudWatch log group ARN MWAA reports for one log type:
 * `arn:aws:logs:{region}:{accountId}:log-group:airflow-{name}-{DAGProcessing|Scheduler|WebServer|Worker|Task}`
 * (reference §6; the execution-role policy pattern is `log-group:airflow-{name}-*`).
 */
export function cloudWatchLogGroupArn(
  region: string,
  accountId: string,
  name: string,
  logType: LogType,
): string {
  return `arn:aws:logs:${region}:${accountId}:log-group:airflow-${name}-${LOG_GROUP_SUFFIXES[logType]}`
}

/**
 * GetEnvironment's `Environment` object (reference §2) for one environment.
 *
 * Optional members (`KmsKey`, `Plugins*`, `Requirements*`, `StartupScript*`, `WebserverUrl`,
 * `CeleryExecutorQueue`, `LastUpdate.Error`, `LastUpdate.WorkerReplacementStrategy`) are omitted
 * while unset. `WebserverUrl` is a bare `host[:port]` without a scheme, as MWAA returns it (the
 * model's `https://.+` pattern is not what the service sends; clients build
 * `https://{WebserverUrl}/…` themselves). `CreatedAt` and `LastUpdate.CreatedAt` are epoch seconds.
 * `WebserverVpcEndpointService` and `DatabaseVpcEndpointService` are not sent: there are no VPC
 * endpoints locally.
 * @param view - the environment and its derived status
 * @param region - region the control plane reports (`AIRDOCK_REGION`)
 * @param accountId - account the control plane reports (`AIRDOCK_ACCOUNT_ID`)
 */
export function toWireEnvironment(
  view: EnvironmentView,
  region: string,
  accountId: string,
): Record<string, unknown> {
  const { record } = view
  const { spec } = record
  const loggingConfiguration: Record<string, unknown> = {}
  for (const [logType, wire] of Object.entries(LOG_TYPE_WIRE_NAMES) as [LogType, string][]) {
    const module = spec.loggingConfiguration[logType]
    loggingConfiguration[wire] = {
      Enabled: module.enabled,
      LogLevel: module.logLevel,
      CloudWatchLogGroupArn: cloudWatchLogGroupArn(region, accountId, record.name, logType),
    }
  }
  const { lastUpdate } = view
  return withoutUndefined({
    Name: record.name,
    Status: view.status,
    Arn: record.arn,
    CreatedAt: epochSeconds(record.createdAt),
    WebserverUrl: view.webserverUrl,
    ExecutionRoleArn: spec.executionRoleArn,
    ServiceRoleArn: serviceRoleArn(accountId),
    KmsKey: spec.kmsKey,
    AirflowVersion: spec.airflowVersion,
    SourceBucketArn: spec.sourceBucketArn,
    DagS3Path: spec.dagS3Path,
    PluginsS3Path: spec.pluginsS3Path,
    PluginsS3ObjectVersion: spec.pluginsS3ObjectVersion,
    RequirementsS3Path: spec.requirementsS3Path,
    RequirementsS3ObjectVersion: spec.requirementsS3ObjectVersion,
    StartupScriptS3Path: spec.startupScriptS3Path,
    StartupScriptS3ObjectVersion: spec.startupScriptS3ObjectVersion,
    AirflowConfigurationOptions: { ...spec.airflowConfigurationOptions },
    EnvironmentClass: spec.environmentClass,
    MaxWorkers: spec.maxWorkers,
    MinWorkers: spec.minWorkers,
    Schedulers: spec.schedulers,
    MinWebservers: spec.minWebservers,
    MaxWebservers: spec.maxWebservers,
    NetworkConfiguration: {
      SubnetIds: [...spec.networkConfiguration.subnetIds],
      SecurityGroupIds: [...spec.networkConfiguration.securityGroupIds],
    },
    LoggingConfiguration: loggingConfiguration,
    LastUpdate: withoutUndefined({
      Status: lastUpdate.status,
      CreatedAt: epochSeconds(lastUpdate.createdAt),
      Source: lastUpdate.source,
      Error:
        lastUpdate.error === undefined
          ? undefined
          : {
              ErrorCode: lastUpdate.error.errorCode,
              ErrorMessage: lastUpdate.error.errorMessage,
            },
      WorkerReplacementStrategy: lastUpdate.workerReplacementStrategy,
    }),
    WeeklyMaintenanceWindowStart: spec.weeklyMaintenanceWindowStart,
    Tags: { ...record.tags },
    WebserverAccessMode: spec.webserverAccessMode,
    EndpointManagement: spec.endpointManagement,
    CeleryExecutorQueue: view.celeryExecutorQueue,
  })
}

/** GetEnvironment output: `{ Environment }`. See {@link toWireEnvironment}. */
export function toWireGetEnvironmentOutput(
  view: EnvironmentView,
  region: string,
  accountId: string,
): Record<string, unknown> {
  return { Environment: toWireEnvironment(view, region, accountId) }
}

/** CreateEnvironment / UpdateEnvironment output: `{ Arn }`. */
export function toWireArnOutput(arn: string): Record<string, unknown> {
  return { Arn: arn }
}

/** ListEnvironments output: `{ Environments: [names], NextToken? }`. */
export function toWireListEnvironmentsOutput(
  names: readonly string[],
  nextToken?: string,
): Record<string, unknown> {
  return withoutUndefined({ Environments: [...names], NextToken: nextToken })
}

/** ListTagsForResource output: `{ Tags }`. */
export function toWireListTagsOutput(tags: Record<string, string>): Record<string, unknown> {
  return { Tags: { ...tags } }
}

/** InvokeRestApi output: `{ RestApiStatusCode, RestApiResponse }`. */
export function toWireInvokeRestApiOutput(result: InvokeRestApiResult): Record<string, unknown> {
  return { RestApiStatusCode: result.restApiStatusCode, RestApiResponse: result.restApiResponse }
}

function withoutUndefined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined))
}
