import { sampleSpec } from '../../test/support/sample-spec.js'
import { describe, expect, it } from 'vitest'
import { environmentArn } from '../domain/arns.js'
import type { EnvironmentRecord, EnvironmentSpec } from '../domain/environment.js'
import type { EnvironmentView } from '../services/environment-service-port.js'
import {
  cloudWatchLogGroupArn,
  epochSeconds,
  fromWire,
  fromWireSpecFields,
  INVOKE_REST_API_INPUT,
  toWireArnOutput,
  toWireEnvironment,
  toWireGetEnvironmentOutput,
  toWireInvokeRestApiOutput,
  toWireListEnvironmentsOutput,
  toWireListTagsOutput,
  wireName,
} from './wire.js'

const REGION = 'eu-west-1'
const ACCOUNT = '123456789012'

function spec(overrides: Partial<EnvironmentSpec> = {}): EnvironmentSpec {
  return sampleSpec({
    airflowConfigurationOptions: { 'core.parallelism': '32' },
    maxWebservers: 3,
    loggingConfiguration: {
      dagProcessingLogs: { enabled: false, logLevel: 'INFO' },
      schedulerLogs: { enabled: true, logLevel: 'WARNING' },
      webserverLogs: { enabled: false, logLevel: 'ERROR' },
      workerLogs: { enabled: true, logLevel: 'DEBUG' },
      taskLogs: { enabled: true, logLevel: 'INFO' },
    },
    ...overrides,
  })
}

function view(
  overrides: { spec?: Partial<EnvironmentSpec>; view?: Partial<EnvironmentView> } = {},
): EnvironmentView {
  const record: EnvironmentRecord = {
    name: 'MyEnv',
    arn: environmentArn(REGION, ACCOUNT, 'MyEnv'),
    id: 'a1b2c3',
    createdAt: new Date('2026-01-02T03:04:05.678Z'),
    spec: spec(overrides.spec),
    generation: 1,
    tags: { team: 'data' },
    lastUpdateRequest: {
      createdAt: new Date('2026-01-02T03:04:05.678Z'),
      source: 'CreateEnvironment',
    },
    portBlock: 0,
    observation: {
      phase: 'creating',
      observedGeneration: 0,
      healthy: false,
      crashLooping: false,
      progressing: true,
      components: [],
    },
  }
  return {
    record,
    status: 'CREATING',
    lastUpdate: {
      status: 'PENDING',
      createdAt: new Date('2026-01-02T03:04:05.678Z'),
      source: 'CreateEnvironment',
    },
    ...overrides.view,
  }
}

describe('toWireEnvironment', () => {
  it('renders every member of a fresh environment, omitting unset ones', () => {
    expect(toWireEnvironment(view(), REGION, ACCOUNT)).toEqual({
      Name: 'MyEnv',
      Status: 'CREATING',
      Arn: 'arn:aws:airflow:eu-west-1:123456789012:environment/MyEnv',
      CreatedAt: 1767323045.678,
      ExecutionRoleArn: 'arn:aws:iam::123456789012:role/exec',
      ServiceRoleArn:
        'arn:aws:iam::123456789012:role/aws-service-role/airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA',
      AirflowVersion: '3.3.2',
      SourceBucketArn: 'arn:aws:s3:::bucket',
      DagS3Path: 'dags',
      AirflowConfigurationOptions: { 'core.parallelism': '32' },
      EnvironmentClass: 'mw1.small',
      MaxWorkers: 10,
      MinWorkers: 1,
      Schedulers: 2,
      MinWebservers: 2,
      MaxWebservers: 3,
      NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] },
      LoggingConfiguration: {
        DagProcessingLogs: {
          Enabled: false,
          LogLevel: 'INFO',
          CloudWatchLogGroupArn:
            'arn:aws:logs:eu-west-1:123456789012:log-group:airflow-MyEnv-DAGProcessing',
        },
        SchedulerLogs: {
          Enabled: true,
          LogLevel: 'WARNING',
          CloudWatchLogGroupArn:
            'arn:aws:logs:eu-west-1:123456789012:log-group:airflow-MyEnv-Scheduler',
        },
        WebserverLogs: {
          Enabled: false,
          LogLevel: 'ERROR',
          CloudWatchLogGroupArn:
            'arn:aws:logs:eu-west-1:123456789012:log-group:airflow-MyEnv-WebServer',
        },
        WorkerLogs: {
          Enabled: true,
          LogLevel: 'DEBUG',
          CloudWatchLogGroupArn:
            'arn:aws:logs:eu-west-1:123456789012:log-group:airflow-MyEnv-Worker',
        },
        TaskLogs: {
          Enabled: true,
          LogLevel: 'INFO',
          CloudWatchLogGroupArn: 'arn:aws:logs:eu-west-1:123456789012:log-group:airflow-MyEnv-Task',
        },
      },
      LastUpdate: { Status: 'PENDING', CreatedAt: 1767323045.678, Source: 'CreateEnvironment' },
      WeeklyMaintenanceWindowStart: 'SUN:03:30',
      Tags: { team: 'data' },
      WebserverAccessMode: 'PRIVATE_ONLY',
      EndpointManagement: 'SERVICE',
    })
  })

  it('includes optional members once they are set', () => {
    const wire = toWireEnvironment(
      view({
        spec: {
          kmsKey: 'alias/k',
          pluginsS3Path: 'plugins.zip',
          pluginsS3ObjectVersion: 'p1',
          requirementsS3Path: 'requirements.txt',
          requirementsS3ObjectVersion: 'r1',
          startupScriptS3Path: 'startup.sh',
          startupScriptS3ObjectVersion: 's1',
        },
        view: {
          status: 'UPDATE_FAILED',
          webserverUrl: 'localhost:8781',
          celeryExecutorQueue: 'arn:aws:sqs:eu-west-1:123456789012:airflow-celery-a1b2c3',
          lastUpdate: {
            status: 'FAILED',
            createdAt: new Date(2000),
            source: 'UpdateEnvironment',
            error: { errorCode: 'RUNTIME_BUILD_FAILED', errorMessage: 'pip failed' },
            workerReplacementStrategy: 'GRACEFUL',
          },
        },
      }),
      REGION,
      ACCOUNT,
    )
    expect(wire).toMatchObject({
      Status: 'UPDATE_FAILED',
      WebserverUrl: 'localhost:8781',
      KmsKey: 'alias/k',
      PluginsS3Path: 'plugins.zip',
      PluginsS3ObjectVersion: 'p1',
      RequirementsS3Path: 'requirements.txt',
      RequirementsS3ObjectVersion: 'r1',
      StartupScriptS3Path: 'startup.sh',
      StartupScriptS3ObjectVersion: 's1',
      CeleryExecutorQueue: 'arn:aws:sqs:eu-west-1:123456789012:airflow-celery-a1b2c3',
      LastUpdate: {
        Status: 'FAILED',
        CreatedAt: 2,
        Source: 'UpdateEnvironment',
        Error: { ErrorCode: 'RUNTIME_BUILD_FAILED', ErrorMessage: 'pip failed' },
        WorkerReplacementStrategy: 'GRACEFUL',
      },
    })
  })

  it('never shares arrays or maps with the record', () => {
    const v = view()
    const wire = toWireEnvironment(v, REGION, ACCOUNT) as {
      Tags: Record<string, string>
      NetworkConfiguration: { SubnetIds: string[] }
    }
    wire.Tags.extra = 'x'
    wire.NetworkConfiguration.SubnetIds.push('subnet-c')
    expect(v.record.tags).toEqual({ team: 'data' })
    expect(v.record.spec.networkConfiguration.subnetIds).toEqual(['subnet-a', 'subnet-b'])
  })

  it('serialises to JSON with epoch-second timestamps', () => {
    const json = JSON.parse(
      JSON.stringify(toWireGetEnvironmentOutput(view(), REGION, ACCOUNT)),
    ) as { Environment: { CreatedAt: unknown } }
    expect(json.Environment.CreatedAt).toBe(1767323045.678)
  })
})

describe('output shapes', () => {
  it('wraps results in their MWAA members', () => {
    expect(toWireArnOutput('arn:x')).toEqual({ Arn: 'arn:x' })
    expect(toWireListEnvironmentsOutput(['a', 'b'])).toEqual({ Environments: ['a', 'b'] })
    expect(toWireListEnvironmentsOutput([], 'tok')).toEqual({ Environments: [], NextToken: 'tok' })
    expect(toWireListTagsOutput({ a: 'b' })).toEqual({ Tags: { a: 'b' } })
    expect(
      toWireInvokeRestApiOutput({ restApiStatusCode: 200, restApiResponse: { dags: [] } }),
    ).toEqual({ RestApiStatusCode: 200, RestApiResponse: { dags: [] } })
  })
})

describe('fromWireSpecFields', () => {
  it('converts known members to camelCase, nested structures included, maps untouched', () => {
    expect(
      fromWireSpecFields(
        {
          MaxWorkers: 3,
          NetworkConfiguration: { SubnetIds: ['subnet-a'], SecurityGroupIds: ['sg-1'], Vpc: 'x' },
          LoggingConfiguration: { TaskLogs: { Enabled: true, LogLevel: 'INFO' } },
          AirflowConfigurationOptions: { 'Core.X': 'v' },
          Tags: { Team: 'A' },
          KmsKey: 'alias/k',
        },
        'create',
      ),
    ).toEqual({
      maxWorkers: 3,
      networkConfiguration: { subnetIds: ['subnet-a'], securityGroupIds: ['sg-1'] },
      loggingConfiguration: { taskLogs: { enabled: true, logLevel: 'INFO' } },
      airflowConfigurationOptions: { 'Core.X': 'v' },
      tags: { Team: 'A' },
      kmsKey: 'alias/k',
    })
  })

  it('drops unknown, null and non-update members', () => {
    expect(fromWireSpecFields({ Foo: 1, maxWorkers: 2, DagS3Path: null }, 'create')).toEqual({})
    expect(
      fromWireSpecFields(
        {
          KmsKey: 'k',
          Tags: {},
          EndpointManagement: 'CUSTOMER',
          WorkerReplacementStrategy: 'FORCED',
        },
        'update',
      ),
    ).toEqual({ workerReplacementStrategy: 'FORCED' })
    expect(fromWireSpecFields({ WorkerReplacementStrategy: 'FORCED' }, 'create')).toEqual({})
  })

  it('passes a structure of the wrong type through for validation to report', () => {
    expect(fromWireSpecFields({ NetworkConfiguration: 'x' }, 'create')).toEqual({
      networkConfiguration: 'x',
    })
  })

  it('does not let a __proto__ member change prototypes', () => {
    const body = JSON.parse(
      '{"__proto__": {"polluted": true}, "Tags": {"__proto__": "v"}}',
    ) as Record<string, unknown>
    const out = fromWireSpecFields(body, 'create')
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.keys(out)).toEqual(['tags'])
  })
})

describe('helpers', () => {
  it('fromWire follows the InvokeRestApi shape', () => {
    expect(
      fromWire(
        { Path: '/dags', Method: 'GET', QueryParameters: { A: 1 }, Body: [1] },
        INVOKE_REST_API_INPUT,
      ),
    ).toEqual({ path: '/dags', method: 'GET', queryParameters: { A: 1 }, body: [1] })
  })

  it('wireName capitalises every segment', () => {
    expect(wireName('networkConfiguration.subnetIds')).toBe('NetworkConfiguration.SubnetIds')
    expect(wireName('minWorkers')).toBe('MinWorkers')
  })

  it('epochSeconds keeps milliseconds as a fraction', () => {
    expect(epochSeconds(new Date(1500))).toBe(1.5)
  })

  it('builds ARNs', () => {
    expect(environmentArn('us-east-1', ACCOUNT, 'E')).toBe(
      'arn:aws:airflow:us-east-1:123456789012:environment/E',
    )
    expect(cloudWatchLogGroupArn('us-east-1', ACCOUNT, 'E', 'dagProcessingLogs')).toBe(
      'arn:aws:logs:us-east-1:123456789012:log-group:airflow-E-DAGProcessing',
    )
  })
})
