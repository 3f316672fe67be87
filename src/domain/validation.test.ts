import { describe, expect, it } from 'vitest'
import { DEFAULT_AIRFLOW_VERSION } from './airflow-versions.js'
import type { EnvironmentSpec } from './environment.js'
import { ValidationError } from './errors.js'
import {
  defaultCounts,
  defaultLoggingConfiguration,
  mergeEnvironmentSpec,
  validateCreateEnvironment,
  validateEnvironmentArn,
  validateEnvironmentName,
  validateInvokeRestApi,
  validateListEnvironments,
  validateMergedSpec,
  validateTagKeys,
  validateTags,
  validateUpdateEnvironment,
} from './validation.js'

const ROLE = 'arn:aws:iam::123456789012:role/mwaa-execution'
const BUCKET = 'arn:aws:s3:::my-airflow-bucket'

/** The smallest valid CreateEnvironment body. */
function minimal(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ExecutionRoleArn: ROLE,
    SourceBucketArn: BUCKET,
    DagS3Path: 'dags',
    NetworkConfiguration: { SubnetIds: ['subnet-a1', 'subnet-b2'], SecurityGroupIds: ['sg-1'] },
    ...extra,
  }
}

/** Runs `fn`, expects a ValidationError, returns its message. */
function messageOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError)
    return (err as ValidationError).message
  }
  throw new Error('expected a ValidationError, nothing was thrown')
}

function createMessage(extra: Record<string, unknown>, name = 'MyEnv'): string {
  return messageOf(() => validateCreateEnvironment(name, minimal(extra)))
}

/** A full, valid spec (what create produces for `minimal()`). */
function currentSpec(overrides: Partial<EnvironmentSpec> = {}): EnvironmentSpec {
  return { ...validateCreateEnvironment('MyEnv', minimal()).spec, ...overrides }
}

describe('validateCreateEnvironment', () => {
  it('fills in every MWAA default for a minimal body', () => {
    const request = validateCreateEnvironment('MyEnv', minimal())
    expect(request).toEqual({
      name: 'MyEnv',
      tags: {},
      spec: {
        executionRoleArn: ROLE,
        sourceBucketArn: BUCKET,
        dagS3Path: 'dags',
        networkConfiguration: { subnetIds: ['subnet-a1', 'subnet-b2'], securityGroupIds: ['sg-1'] },
        airflowConfigurationOptions: {},
        environmentClass: 'mw1.small',
        maxWorkers: 10,
        minWorkers: 1,
        schedulers: 2,
        minWebservers: 2,
        maxWebservers: 2,
        airflowVersion: DEFAULT_AIRFLOW_VERSION,
        loggingConfiguration: {
          dagProcessingLogs: { enabled: false, logLevel: 'INFO' },
          schedulerLogs: { enabled: false, logLevel: 'INFO' },
          webserverLogs: { enabled: false, logLevel: 'INFO' },
          workerLogs: { enabled: false, logLevel: 'INFO' },
          taskLogs: { enabled: true, logLevel: 'INFO' },
        },
        weeklyMaintenanceWindowStart: 'SUN:03:30',
        webserverAccessMode: 'PRIVATE_ONLY',
        endpointManagement: 'SERVICE',
      },
    })
  })

  it('defaults every count of mw1.micro to 1', () => {
    const { spec } = validateCreateEnvironment('Micro', minimal({ EnvironmentClass: 'mw1.micro' }))
    expect(spec).toMatchObject({
      environmentClass: 'mw1.micro',
      schedulers: 1,
      minWorkers: 1,
      maxWorkers: 1,
      minWebservers: 1,
      maxWebservers: 1,
    })
  })

  it('maps every wire member to the spec', () => {
    const request = validateCreateEnvironment(
      'Full_env-1',
      minimal({
        PluginsS3Path: 'plugins.zip',
        PluginsS3ObjectVersion: 'v-plugins',
        RequirementsS3Path: 'requirements.txt',
        RequirementsS3ObjectVersion: 'v-req',
        StartupScriptS3Path: 'startup.sh',
        StartupScriptS3ObjectVersion: 'v-start',
        AirflowConfigurationOptions: { 'core.parallelism': '64', 'celery.worker_autoscale': '5,5' },
        EnvironmentClass: 'mw1.large',
        MaxWorkers: 25,
        MinWorkers: 3,
        Schedulers: 5,
        MinWebservers: 3,
        MaxWebservers: 5,
        KmsKey: 'alias/my-key',
        AirflowVersion: DEFAULT_AIRFLOW_VERSION,
        LoggingConfiguration: {
          DagProcessingLogs: { Enabled: true, LogLevel: 'DEBUG' },
          SchedulerLogs: { Enabled: true, LogLevel: 'WARNING' },
          WebserverLogs: { Enabled: false, LogLevel: 'ERROR' },
          WorkerLogs: { Enabled: true, LogLevel: 'CRITICAL' },
          TaskLogs: { Enabled: false, LogLevel: 'INFO' },
        },
        WeeklyMaintenanceWindowStart: 'TUE:23:30',
        WebserverAccessMode: 'PUBLIC_ONLY',
        EndpointManagement: 'CUSTOMER',
        Tags: { team: 'data', 'cost-center': '42' },
      }),
    )
    expect(request.name).toBe('Full_env-1')
    expect(request.tags).toEqual({ team: 'data', 'cost-center': '42' })
    expect(request.spec).toEqual({
      executionRoleArn: ROLE,
      sourceBucketArn: BUCKET,
      dagS3Path: 'dags',
      networkConfiguration: { subnetIds: ['subnet-a1', 'subnet-b2'], securityGroupIds: ['sg-1'] },
      pluginsS3Path: 'plugins.zip',
      pluginsS3ObjectVersion: 'v-plugins',
      requirementsS3Path: 'requirements.txt',
      requirementsS3ObjectVersion: 'v-req',
      startupScriptS3Path: 'startup.sh',
      startupScriptS3ObjectVersion: 'v-start',
      airflowConfigurationOptions: { 'core.parallelism': '64', 'celery.worker_autoscale': '5,5' },
      environmentClass: 'mw1.large',
      maxWorkers: 25,
      minWorkers: 3,
      schedulers: 5,
      minWebservers: 3,
      maxWebservers: 5,
      kmsKey: 'alias/my-key',
      airflowVersion: DEFAULT_AIRFLOW_VERSION,
      loggingConfiguration: {
        dagProcessingLogs: { enabled: true, logLevel: 'DEBUG' },
        schedulerLogs: { enabled: true, logLevel: 'WARNING' },
        webserverLogs: { enabled: false, logLevel: 'ERROR' },
        workerLogs: { enabled: true, logLevel: 'CRITICAL' },
        taskLogs: { enabled: false, logLevel: 'INFO' },
      },
      weeklyMaintenanceWindowStart: 'TUE:23:30',
      webserverAccessMode: 'PUBLIC_ONLY',
      endpointManagement: 'CUSTOMER',
    })
  })

  it('ignores unknown members, camelCase look-alikes and null members', () => {
    const { spec } = validateCreateEnvironment(
      'MyEnv',
      minimal({ Bogus: 1, maxWorkers: 'not read', MaxWorkers: null, KmsKey: null }),
    )
    expect(spec.maxWorkers).toBe(10)
    expect(spec).not.toHaveProperty('kmsKey')
    expect(spec).not.toHaveProperty('bogus')
  })

  it('reports every missing required member at once, AWS-style', () => {
    const message = messageOf(() => validateCreateEnvironment('MyEnv', {}))
    expect(message).toBe(
      '4 validation errors detected: ' +
        "Value null at 'executionRoleArn' failed to satisfy constraint: Member must not be null; " +
        "Value null at 'sourceBucketArn' failed to satisfy constraint: Member must not be null; " +
        "Value null at 'dagS3Path' failed to satisfy constraint: Member must not be null; " +
        "Value null at 'networkConfiguration' failed to satisfy constraint: Member must not be null",
    )
  })

  it('treats a missing body like an empty one', () => {
    expect(messageOf(() => validateCreateEnvironment('MyEnv', undefined))).toMatch(
      /^4 validation errors detected/,
    )
  })

  it.each([[[]], ['text'], [42]])('rejects a body that is not a JSON object (%j)', (body) => {
    expect(messageOf(() => validateCreateEnvironment('MyEnv', body))).toBe(
      'The request body must be a JSON object.',
    )
  })

  it('reports name problems together with body problems', () => {
    const message = messageOf(() => validateCreateEnvironment('1bad', minimal({ Schedulers: 6 })))
    expect(message).toBe(
      '2 validation errors detected: ' +
        "Value '1bad' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z][0-9a-zA-Z_-]*$; " +
        "Value '6' at 'schedulers' failed to satisfy constraint: Member must have value less than or equal to 5",
    )
  })

  it('gives the exact AWS message for one constraint failure', () => {
    expect(createMessage({ Schedulers: 6 })).toBe(
      "1 validation error detected: Value '6' at 'schedulers' failed to satisfy constraint: Member must have value less than or equal to 5",
    )
  })

  it.each([
    [{ ExecutionRoleArn: 'arn:aws:iam::12345:role/x' }, "at 'executionRoleArn'"],
    [{ ExecutionRoleArn: 'not-an-arn' }, 'regular expression pattern'],
    [{ SourceBucketArn: 'arn:aws:s3:::My_Bucket' }, "at 'sourceBucketArn'"],
    [{ SourceBucketArn: 'arn:aws:s3:::b/prefix' }, "at 'sourceBucketArn'"],
    [
      { SourceBucketArn: 'arn:aws:s3:::b' },
      "SourceBucketArn 'arn:aws:s3:::b' does not name a valid S3 bucket: 'b' must be 3-63 characters long (it has 1).",
    ],
    [
      { SourceBucketArn: `arn:aws:s3:::${'a'.repeat(64)}` },
      'must be 3-63 characters long (it has 64)',
    ],
    [{ SourceBucketArn: 'arn:aws:s3:::my..bucket' }, "'my..bucket' must not contain two adjacent"],
    [{ SourceBucketArn: 'arn:aws:s3:::-bucket' }, 'start and end with a letter or digit'],
    [{ SourceBucketArn: 'arn:aws:s3:::10.0.0.1' }, 'must not be formatted as an IP address'],
    [{ SourceBucketArn: 'arn:aws:s3:::xn--bucket' }, 'must not start with "xn--"'],
    [{ SourceBucketArn: 'arn:aws:s3:::bucket-s3alias' }, 'must not end with "-s3alias"'],
    [
      { DagS3Path: '' },
      "Value '' at 'dagS3Path' failed to satisfy constraint: Member must have length greater than or equal to 1",
    ],
    [
      { DagS3Path: 'x'.repeat(1025) },
      "at 'dagS3Path' failed to satisfy constraint: Member must have length less than or equal to 1024",
    ],
    [{ PluginsS3ObjectVersion: '', PluginsS3Path: 'p.zip' }, "at 'pluginsS3ObjectVersion'"],
    [{ KmsKey: 'my-key' }, "at 'kmsKey'"],
    [{ KmsKey: 'key/1234' }, "at 'kmsKey'"],
    [{ WeeklyMaintenanceWindowStart: 'TUE:03:15' }, "at 'weeklyMaintenanceWindowStart'"],
    [{ WeeklyMaintenanceWindowStart: 'tue:03:30' }, "at 'weeklyMaintenanceWindowStart'"],
    [{ WeeklyMaintenanceWindowStart: 'TUE:24:00' }, "at 'weeklyMaintenanceWindowStart'"],
    [{ WeeklyMaintenanceWindowStart: 'TUESDAY:03:30' }, 'length less than or equal to 9'],
    [
      { AirflowVersion: '3.3.2-rc1' },
      "at 'airflowVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9a-z.]+$",
    ],
    [{ AirflowVersion: '1'.repeat(33) }, 'length less than or equal to 32'],
    [
      { WebserverAccessMode: 'PUBLIC' },
      "Value 'PUBLIC' at 'webserverAccessMode' failed to satisfy constraint: Member must satisfy enum value set: [PRIVATE_ONLY, PUBLIC_ONLY, PUBLIC_AND_PRIVATE]",
    ],
    [{ EndpointManagement: 'ME' }, 'Member must satisfy enum value set: [CUSTOMER, SERVICE]'],
  ])('rejects %j', (extra, expected) => {
    expect(createMessage(extra)).toContain(expected)
  })

  it.each([
    'c9f1a5e2-1234-4abc-9def-0123456789ab',
    'key/c9f1a5e2-1234-4abc-9def-0123456789ab',
    'arn:aws:kms:us-east-1:123456789012:key/c9f1a5e2-1234-4abc-9def-0123456789ab',
    'alias/my-key',
    'arn:aws:kms:eu-west-1:123456789012:alias/my-key',
  ])('accepts the KmsKey form %s', (kmsKey) => {
    expect(validateCreateEnvironment('MyEnv', minimal({ KmsKey: kmsKey })).spec.kmsKey).toBe(kmsKey)
  })

  it('accepts every day and both half hours in WeeklyMaintenanceWindowStart', () => {
    for (const value of ['MON:00:00', 'WED:12:30', 'SAT:23:30', 'SUN:09:00']) {
      expect(
        validateCreateEnvironment('MyEnv', minimal({ WeeklyMaintenanceWindowStart: value })).spec
          .weeklyMaintenanceWindowStart,
      ).toBe(value)
    }
  })

  describe('names', () => {
    it.each([
      [
        '',
        "Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1",
      ],
      [
        'a'.repeat(81),
        "at 'name' failed to satisfy constraint: Member must have length less than or equal to 80",
      ],
      [
        '_env',
        "Value '_env' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern",
      ],
      ['my env', 'regular expression pattern'],
      ['my.env', 'regular expression pattern'],
    ])('rejects %j', (name, expected) => {
      expect(createMessage({}, name)).toContain(expected)
    })

    it('accepts letters, digits, - and _', () => {
      expect(validateCreateEnvironment('a'.repeat(80), minimal()).name).toHaveLength(80)
      expect(validateEnvironmentName('My_Env-2')).toBe('My_Env-2')
    })
  })

  describe('network configuration', () => {
    it('needs exactly two subnets', () => {
      const one = createMessage({
        NetworkConfiguration: { SubnetIds: ['subnet-a'], SecurityGroupIds: ['sg-1'] },
      })
      expect(one).toBe(
        "1 validation error detected: Value '[subnet-a]' at 'networkConfiguration.subnetIds' failed to satisfy constraint: Member must have length greater than or equal to 2",
      )
      const three = createMessage({
        NetworkConfiguration: {
          SubnetIds: ['subnet-a', 'subnet-b', 'subnet-c'],
          SecurityGroupIds: ['sg-1'],
        },
      })
      expect(three).toContain(
        "at 'networkConfiguration.subnetIds' failed to satisfy constraint: Member must have length less than or equal to 2",
      )
    })

    it('names a bad list member by its 1-based position', () => {
      const message = createMessage({
        NetworkConfiguration: { SubnetIds: ['subnet-a', 'vpc-b'], SecurityGroupIds: ['sg-1', 7] },
      })
      expect(message).toContain(
        "Value 'vpc-b' at 'networkConfiguration.subnetIds.2.member' failed to satisfy constraint: Member must satisfy regular expression pattern: ^subnet-[a-zA-Z0-9\\-._]+$",
      )
      expect(message).toContain(
        "Value '7' at 'networkConfiguration.securityGroupIds.2.member' failed to satisfy constraint: Member must be a string, not a number",
      )
    })

    it('needs 1 to 5 security groups', () => {
      expect(
        createMessage({
          NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: [] },
        }),
      ).toContain(
        "at 'networkConfiguration.securityGroupIds' failed to satisfy constraint: Member must have length greater than or equal to 1",
      )
      const six = ['sg-1', 'sg-2', 'sg-3', 'sg-4', 'sg-5', 'sg-6']
      expect(
        createMessage({
          NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: six },
        }),
      ).toContain('Member must have length less than or equal to 5')
      expect(
        createMessage({ NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'] } }),
      ).toContain(
        "Value null at 'networkConfiguration.securityGroupIds' failed to satisfy constraint: Member must not be null",
      )
    })

    it('reports wrong JSON types by field', () => {
      expect(createMessage({ NetworkConfiguration: 'subnet-a,subnet-b' })).toContain(
        "at 'networkConfiguration' failed to satisfy constraint: Member must be an object, not a string",
      )
      expect(
        createMessage({
          NetworkConfiguration: { SubnetIds: 'subnet-a', SecurityGroupIds: ['sg-1'] },
        }),
      ).toContain(
        "at 'networkConfiguration.subnetIds' failed to satisfy constraint: Member must be a list, not a string",
      )
    })
  })

  describe('counts', () => {
    it.each([
      [
        { MaxWorkers: 0 },
        "Value '0' at 'maxWorkers' failed to satisfy constraint: Member must have value greater than or equal to 1",
      ],
      [
        { MaxWorkers: 26 },
        "Value '26' at 'maxWorkers' failed to satisfy constraint: Member must have value less than or equal to 25",
      ],
      [
        { MinWorkers: -1 },
        "at 'minWorkers' failed to satisfy constraint: Member must have value greater than or equal to 1",
      ],
      [
        { MinWebservers: 6 },
        "at 'minWebservers' failed to satisfy constraint: Member must have value less than or equal to 5",
      ],
      [
        { MaxWebservers: 0 },
        "at 'maxWebservers' failed to satisfy constraint: Member must have value greater than or equal to 1",
      ],
      [
        { Schedulers: 0 },
        "at 'schedulers' failed to satisfy constraint: Member must have value greater than or equal to 1",
      ],
      [
        { MaxWorkers: '5' },
        "Value '5' at 'maxWorkers' failed to satisfy constraint: Member must be an integer, not a string",
      ],
      [
        { MaxWorkers: 2.5 },
        "Value '2.5' at 'maxWorkers' failed to satisfy constraint: Member must be an integer, not a number",
      ],
      [
        { Schedulers: true },
        "at 'schedulers' failed to satisfy constraint: Member must be an integer, not a boolean",
      ],
    ])('rejects %j', (extra, expected) => {
      expect(createMessage(extra)).toContain(expected)
    })

    it('wants MinWorkers ≤ MaxWorkers and MinWebservers ≤ MaxWebservers', () => {
      expect(createMessage({ MinWorkers: 5, MaxWorkers: 2 })).toBe(
        'MinWorkers (5) must be less than or equal to MaxWorkers (2).',
      )
      expect(createMessage({ MinWorkers: 11 })).toBe(
        'MinWorkers (11) must be less than or equal to MaxWorkers (10).',
      )
      expect(createMessage({ MinWebservers: 4, MaxWebservers: 3 })).toBe(
        'MinWebservers (4) must be less than or equal to MaxWebservers (3).',
      )
    })

    it('wants 2–5 schedulers and web servers for Celery classes', () => {
      expect(createMessage({ Schedulers: 1 })).toBe(
        'Schedulers (1) must be between 2 and 5 for environment class mw1.small.',
      )
      expect(createMessage({ EnvironmentClass: 'mw1.medium', MinWebservers: 1 })).toBe(
        'MinWebservers (1) must be between 2 and 5 for environment class mw1.medium.',
      )
    })

    it('fixes every count of mw1.micro at 1', () => {
      expect(createMessage({ EnvironmentClass: 'mw1.micro', MaxWorkers: 2 })).toBe(
        'MaxWorkers (2) must be 1 for environment class mw1.micro.',
      )
      expect(
        createMessage({ EnvironmentClass: 'mw1.micro', Schedulers: 2, MaxWebservers: 2 }),
      ).toBe(
        '2 validation errors detected: Schedulers (2) must be 1 for environment class mw1.micro; ' +
          'MaxWebservers (2) must be 1 for environment class mw1.micro',
      )
      expect(
        validateCreateEnvironment(
          'Micro',
          minimal({ EnvironmentClass: 'mw1.micro', Schedulers: 1, MaxWorkers: 1 }),
        ).spec.schedulers,
      ).toBe(1)
    })
  })

  it('names the valid environment classes', () => {
    expect(createMessage({ EnvironmentClass: 'mw1.huge' })).toBe(
      "EnvironmentClass 'mw1.huge' is not valid. Valid classes: mw1.micro, mw1.small, mw1.medium, mw1.large, mw1.xlarge, mw1.2xlarge.",
    )
  })

  it('names the supported Airflow versions', () => {
    expect(createMessage({ AirflowVersion: '2.0.2' })).toBe(
      "AirflowVersion '2.0.2' is not supported. Supported versions: 3.3.2, 3.2.1.",
    )
  })

  describe('plugins, requirements and startup script', () => {
    it.each([
      ['Plugins', 'plugins.zip'],
      ['Requirements', 'requirements.txt'],
      ['StartupScript', 'startup.sh'],
    ])(
      '%s takes its path without an object version (resolved later), never a version without its path',
      (kind, file) => {
        const { spec } = validateCreateEnvironment('MyEnv', minimal({ [`${kind}S3Path`]: file }))
        expect(spec).toMatchObject({ [`${kind[0]!.toLowerCase()}${kind.slice(1)}S3Path`]: file })
        expect(Object.keys(spec).filter((k) => k.endsWith('S3ObjectVersion'))).toEqual([])
        expect(createMessage({ [`${kind}S3ObjectVersion`]: 'v1' })).toBe(
          `${kind}S3ObjectVersion is set but ${kind}S3Path is not.`,
        )
      },
    )

    it('refuses .. segments in bucket paths', () => {
      expect(createMessage({ DagS3Path: 'dags/../../etc' })).toBe(
        "DagS3Path must be a path inside the bucket: '..' segments are not allowed.",
      )
      expect(
        createMessage({ RequirementsS3Path: '..\\req.txt', RequirementsS3ObjectVersion: 'v' }),
      ).toContain('RequirementsS3Path must be a path inside the bucket')
      expect(
        validateCreateEnvironment('MyEnv', minimal({ DagS3Path: 'a..b/dags' })).spec.dagS3Path,
      ).toBe('a..b/dags')
    })
  })

  describe('AirflowConfigurationOptions', () => {
    it('checks keys against ConfigKey and the section.option form', () => {
      expect(createMessage({ AirflowConfigurationOptions: { 'Core.Parallelism': '1' } })).toBe(
        "1 validation error detected: Value 'Core.Parallelism' at 'airflowConfigurationOptions' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: ^[a-z]+([a-z0-9._]*[a-z0-9_]+)?$]",
      )
      expect(createMessage({ AirflowConfigurationOptions: { parallelism: '1' } })).toBe(
        "AirflowConfigurationOptions key 'parallelism' must have the form section.option (for example core.parallelism).",
      )
      expect(
        createMessage({ AirflowConfigurationOptions: { [`core.${'a'.repeat(60)}`]: '1' } }),
      ).toContain(
        'Map keys must satisfy constraint: [Member must have length less than or equal to 64]',
      )
    })

    it('refuses the options airdock owns, naming each, without echoing values', () => {
      for (const key of [
        'core.executor',
        'core.fernet_key',
        'database.sql_alchemy_conn',
        'database.sql_alchemy_conn_cmd',
        'celery.broker_url',
        'celery_broker_transport_options.visibility_timeout',
        'api_auth.jwt_secret',
        'core.dags_folder',
        // Extra dots become underscores: this sets [core] auth_manager.
        'core.auth.manager',
      ]) {
        const message = createMessage({ AirflowConfigurationOptions: { [key]: 'value-xyz' } })
        expect(message, key).toBe(
          `AirflowConfigurationOptions key '${key}' cannot be set: airdock manages it (executor, database, broker, fernet/JWT/API secret keys, folders, logging, auth and execution API settings are fixed).`,
        )
      }
      // What MWAA lets users set stays allowed.
      for (const key of [
        'core.parallelism',
        'celery.worker_autoscale',
        'secrets.backend',
        'metrics.metrics_allow_list',
        'api_auth.jwt_expiration_time',
        'core.default_task_retries',
        'scheduler.task_instance_heartbeat_timeout',
      ]) {
        expect(
          () =>
            validateCreateEnvironment(
              'MyEnv',
              minimal({ AirflowConfigurationOptions: { [key]: '1' } }),
            ),
          key,
        ).not.toThrow()
      }
    })

    it('checks values without echoing them', () => {
      const message = createMessage({
        AirflowConfigurationOptions: { 'smtp.smtp_password': 'hunter2\n', 'core.x': '' },
      })
      expect(message).toContain(
        "Value at 'airflowConfigurationOptions' failed to satisfy constraint: Map value for key 'smtp.smtp_password' must satisfy constraint: [Member must satisfy regular expression pattern: ^[ -~]+$]",
      )
      expect(message).toContain(
        "Map value for key 'core.x' must satisfy constraint: [Member must have length greater than or equal to 1]",
      )
      expect(message).not.toContain('hunter2')
      expect(createMessage({ AirflowConfigurationOptions: { 'core.x': 5 } })).toContain(
        "Map value for key 'core.x' must be a string, not a number",
      )
    })

    it('must be a map', () => {
      expect(createMessage({ AirflowConfigurationOptions: ['core.x=1'] })).toContain(
        "at 'airflowConfigurationOptions' failed to satisfy constraint: Member must be a map (JSON object), not a list",
      )
    })

    it('accepts printable ASCII values up to 65536 characters', () => {
      const value = ' ~'.repeat(32768)
      const { spec } = validateCreateEnvironment(
        'MyEnv',
        minimal({ AirflowConfigurationOptions: { 'core.x_1': value } }),
      )
      expect(spec.airflowConfigurationOptions['core.x_1']).toHaveLength(65536)
    })
  })

  describe('LoggingConfiguration', () => {
    it('fills log types not sent with their defaults', () => {
      const { spec } = validateCreateEnvironment(
        'MyEnv',
        minimal({ LoggingConfiguration: { WorkerLogs: { Enabled: true, LogLevel: 'DEBUG' } } }),
      )
      expect(spec.loggingConfiguration).toEqual({
        ...defaultLoggingConfiguration(),
        workerLogs: { enabled: true, logLevel: 'DEBUG' },
      })
    })

    it('requires Enabled and LogLevel of every log type sent', () => {
      const message = createMessage({
        LoggingConfiguration: {
          TaskLogs: { LogLevel: 'LOUD' },
          DagProcessingLogs: { Enabled: 'yes', LogLevel: 'INFO' },
        },
      })
      expect(message).toBe(
        '3 validation errors detected: ' +
          "Value 'yes' at 'loggingConfiguration.dagProcessingLogs.enabled' failed to satisfy constraint: Member must be a boolean, not a string; " +
          "Value null at 'loggingConfiguration.taskLogs.enabled' failed to satisfy constraint: Member must not be null; " +
          "Value 'LOUD' at 'loggingConfiguration.taskLogs.logLevel' failed to satisfy constraint: Member must satisfy enum value set: [CRITICAL, ERROR, WARNING, INFO, DEBUG]",
      )
    })
  })

  describe('Tags', () => {
    it('accepts Unicode letters, the allowed punctuation and an empty map', () => {
      expect(
        validateCreateEnvironment(
          'MyEnv',
          minimal({ Tags: { Équipe: 'données', 'k:/=+-@_.': 'v 1' } }),
        ).tags,
      ).toEqual({ Équipe: 'données', 'k:/=+-@_.': 'v 1' })
      expect(validateCreateEnvironment('MyEnv', minimal({ Tags: {} })).tags).toEqual({})
    })

    it('rejects an empty tag value (TagValue is 1–256 in the botocore model)', () => {
      expect(createMessage({ Tags: { k: '' } })).toContain(
        "Map value for key 'k' must satisfy constraint: [Member must have length greater than or equal to 1]",
      )
    })

    it('rejects reserved, malformed and too many tags', () => {
      expect(createMessage({ Tags: { 'aws:owner': 'me' } })).toBe(
        "Tag key 'aws:owner' is not allowed: the 'aws:' prefix is reserved for AWS use.",
      )
      expect(createMessage({ Tags: { 'AWS:owner': 'me' } })).toContain("the 'aws:' prefix")
      expect(createMessage({ Tags: { 'a#b': 'x' } })).toContain(
        "Value 'a#b' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern",
      )
      expect(createMessage({ Tags: { k: 'v'.repeat(257) } })).toContain(
        "Map value for key 'k' must satisfy constraint: [Member must have length less than or equal to 256]",
      )
      expect(createMessage({ Tags: { '': 'v' } })).toContain(
        'Map keys must satisfy constraint: [Member must have length greater than or equal to 1]',
      )
      const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']))
      expect(createMessage({ Tags: many })).toContain(
        "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
      )
    })
  })

  it('truncates long echoed values', () => {
    const message = createMessage({ ExecutionRoleArn: 'x'.repeat(2000) })
    expect(message).toContain(`Value '${'x'.repeat(256)}...' at 'executionRoleArn'`)
    expect(message).toMatch(/^2 validation errors detected/)
    expect(message.length).toBeLessThan(1000)
  })
})

describe('validateUpdateEnvironment', () => {
  it('returns only the members sent, without defaults', () => {
    expect(validateUpdateEnvironment('MyEnv', {})).toEqual({ name: 'MyEnv', changes: {} })
    expect(
      validateUpdateEnvironment('MyEnv', {
        MaxWorkers: 20,
        AirflowConfigurationOptions: {},
        DagS3Path: 'new-dags',
        WorkerReplacementStrategy: 'GRACEFUL',
      }),
    ).toEqual({
      name: 'MyEnv',
      changes: { maxWorkers: 20, airflowConfigurationOptions: {}, dagS3Path: 'new-dags' },
      workerReplacementStrategy: 'GRACEFUL',
    })
  })

  it('ignores members UpdateEnvironmentInput does not have', () => {
    expect(
      validateUpdateEnvironment('MyEnv', {
        KmsKey: 'alias/x',
        Tags: { a: 'b' },
        EndpointManagement: 'CUSTOMER',
        Name: 'Other',
      }),
    ).toEqual({ name: 'MyEnv', changes: {} })
  })

  it('takes security groups but refuses subnets', () => {
    expect(
      validateUpdateEnvironment('MyEnv', { NetworkConfiguration: { SecurityGroupIds: ['sg-9'] } })
        .changes,
    ).toEqual({ networkConfiguration: { subnetIds: [], securityGroupIds: ['sg-9'] } })
    expect(
      messageOf(() =>
        validateUpdateEnvironment('MyEnv', {
          NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-9'] },
        }),
      ),
    ).toBe(
      'NetworkConfiguration.SubnetIds cannot be changed: an environment keeps the subnets it was created with.',
    )
    expect(
      messageOf(() => validateUpdateEnvironment('MyEnv', { NetworkConfiguration: {} })),
    ).toContain(
      "Value null at 'networkConfiguration.securityGroupIds' failed to satisfy constraint: Member must not be null",
    )
  })

  it('applies the same field rules as create', () => {
    expect(
      messageOf(() =>
        validateUpdateEnvironment('MyEnv', {
          Schedulers: 6,
          WorkerReplacementStrategy: 'NOW',
          AirflowVersion: '2.0.2',
          SourceBucketArn: 'arn:aws:s3:::b',
        }),
      ),
    ).toBe(
      '4 validation errors detected: ' +
        "SourceBucketArn 'arn:aws:s3:::b' does not name a valid S3 bucket: 'b' must be 3-63 characters long (it has 1); " +
        "AirflowVersion '2.0.2' is not supported. Supported versions: 3.3.2, 3.2.1; " +
        "Value '6' at 'schedulers' failed to satisfy constraint: Member must have value less than or equal to 5; " +
        "Value 'NOW' at 'workerReplacementStrategy' failed to satisfy constraint: Member must satisfy enum value set: [FORCED, GRACEFUL]",
    )
  })

  it('takes a path alone: its object version is resolved at the request', () => {
    expect(validateUpdateEnvironment('MyEnv', { RequirementsS3Path: 'r.txt' }).changes).toEqual({
      requirementsS3Path: 'r.txt',
    })
  })

  it('takes an object version alone (the path is already set)', () => {
    expect(
      validateUpdateEnvironment('MyEnv', { RequirementsS3ObjectVersion: 'v2' }).changes,
    ).toEqual({ requirementsS3ObjectVersion: 'v2' })
  })

  it('replaces the whole LoggingConfiguration', () => {
    expect(
      validateUpdateEnvironment('MyEnv', {
        LoggingConfiguration: { SchedulerLogs: { Enabled: true, LogLevel: 'ERROR' } },
      }).changes.loggingConfiguration,
    ).toEqual({
      ...defaultLoggingConfiguration(),
      schedulerLogs: { enabled: true, logLevel: 'ERROR' },
    })
  })

  it('validates the name', () => {
    expect(messageOf(() => validateUpdateEnvironment('bad name', {}))).toContain("at 'name'")
  })
})

describe('mergeEnvironmentSpec', () => {
  it('applies changes, keeps subnets and does not touch its inputs', () => {
    const current = currentSpec()
    const before = structuredClone(current)
    const { changes } = validateUpdateEnvironment('MyEnv', {
      NetworkConfiguration: { SecurityGroupIds: ['sg-new'] },
      MaxWorkers: 4,
    })
    const merged = mergeEnvironmentSpec(current, changes)
    expect(merged.networkConfiguration).toEqual({
      subnetIds: ['subnet-a1', 'subnet-b2'],
      securityGroupIds: ['sg-new'],
    })
    expect(merged.maxWorkers).toBe(4)
    expect(current).toEqual(before)
  })

  it('checks rules between fields after merging', () => {
    const current = currentSpec({ minWorkers: 3, maxWorkers: 5 })
    expect(messageOf(() => mergeEnvironmentSpec(current, { maxWorkers: 2 }))).toBe(
      'MinWorkers (3) must be less than or equal to MaxWorkers (2).',
    )
    expect(
      messageOf(() => mergeEnvironmentSpec(currentSpec(), { pluginsS3ObjectVersion: 'v1' })),
    ).toBe('PluginsS3ObjectVersion is set but PluginsS3Path is not.')
  })

  it('keeps the path when only the object version changes', () => {
    const current = currentSpec({ requirementsS3Path: 'r.txt', requirementsS3ObjectVersion: 'v1' })
    const merged = mergeEnvironmentSpec(current, { requirementsS3ObjectVersion: 'v2' })
    expect(merged.requirementsS3Path).toBe('r.txt')
    expect(merged.requirementsS3ObjectVersion).toBe('v2')
  })

  it('drops the current object version when a path is sent without one (not inherited)', () => {
    const current = currentSpec({ requirementsS3Path: 'r.txt', requirementsS3ObjectVersion: 'v1' })
    const same = mergeEnvironmentSpec(current, { requirementsS3Path: 'r.txt' })
    expect(same.requirementsS3Path).toBe('r.txt')
    expect(same).not.toHaveProperty('requirementsS3ObjectVersion')
    const other = mergeEnvironmentSpec(current, { requirementsS3Path: 'r2.txt' })
    expect(other).not.toHaveProperty('requirementsS3ObjectVersion')
    // Changes that name no input keep every version.
    expect(mergeEnvironmentSpec(current, { maxWorkers: 4 }).requirementsS3ObjectVersion).toBe('v1')
  })

  it('moves counts to the new class defaults when switching to or from mw1.micro', () => {
    const small = currentSpec({ maxWorkers: 8, schedulers: 3 })
    const micro = mergeEnvironmentSpec(small, { environmentClass: 'mw1.micro' })
    expect(micro).toMatchObject({ environmentClass: 'mw1.micro', ...defaultCounts('mw1.micro') })
    const back = mergeEnvironmentSpec(micro, { environmentClass: 'mw1.medium', maxWorkers: 6 })
    expect(back).toMatchObject({ ...defaultCounts('mw1.medium'), maxWorkers: 6 })
    expect(
      messageOf(() =>
        mergeEnvironmentSpec(small, { environmentClass: 'mw1.micro', schedulers: 2 }),
      ),
    ).toBe('Schedulers (2) must be 1 for environment class mw1.micro.')
  })

  it('keeps counts when the class stays on the Celery side', () => {
    const merged = mergeEnvironmentSpec(currentSpec({ maxWorkers: 8 }), {
      environmentClass: 'mw1.xlarge',
    })
    expect(merged.maxWorkers).toBe(8)
  })
})

describe('validateMergedSpec', () => {
  it('accepts a valid spec', () => {
    expect(() => validateMergedSpec(currentSpec())).not.toThrow()
  })

  it('catches a naive merge that lost the subnets', () => {
    const spec = currentSpec()
    const naive = { ...spec, networkConfiguration: { subnetIds: [], securityGroupIds: ['sg-1'] } }
    expect(messageOf(() => validateMergedSpec(naive))).toBe(
      'NetworkConfiguration.SubnetIds must list exactly 2 subnets (got 0).',
    )
  })

  it('reports every broken rule together', () => {
    const spec = currentSpec({
      minWorkers: 9,
      maxWorkers: 3,
      schedulers: 1,
      environmentClass: 'mw9',
    })
    expect(messageOf(() => validateMergedSpec(spec))).toBe(
      "2 validation errors detected: EnvironmentClass 'mw9' is not valid. Valid classes: mw1.micro, mw1.small, mw1.medium, mw1.large, mw1.xlarge, mw1.2xlarge; " +
        'MinWorkers (9) must be less than or equal to MaxWorkers (3)',
    )
  })
})

describe('validateEnvironmentArn', () => {
  it('accepts environment ARNs of any partition', () => {
    for (const arn of [
      'arn:aws:airflow:us-east-1:123456789012:environment/MyEnv',
      'arn:aws-cn:airflow:cn-north-1:123456789012:environment/My_Env-2',
    ]) {
      expect(validateEnvironmentArn(arn)).toBe(arn)
    }
  })

  it.each([
    'arn%3Aaws%3Aairflow%3Aus-east-1%3A123456789012%3Aenvironment%2FMyEnv',
    'arn:aws:s3:us-east-1:123456789012:environment/MyEnv',
    'arn:aws:airflow:us-east-1:1234:environment/MyEnv',
    'arn:aws:airflow:us-east-1:123456789012:role/MyEnv/Admin',
    'MyEnv',
  ])('rejects %s', (arn) => {
    expect(messageOf(() => validateEnvironmentArn(arn))).toContain(
      `Value '${arn}' at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern`,
    )
  })
})

describe('validateTags and validateTagKeys', () => {
  it('requires Tags for TagResource', () => {
    expect(messageOf(() => validateTags(undefined, true))).toBe(
      "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
    )
    expect(validateTags(undefined)).toEqual({})
    expect(validateTags({ a: 'b' }, true)).toEqual({ a: 'b' })
    expect(messageOf(() => validateTags(['a']))).toContain(
      'Member must be a map (JSON object), not a list',
    )
  })

  it('takes 0 to 50 valid keys', () => {
    expect(validateTagKeys([])).toEqual([])
    expect(validateTagKeys(['team', 'Équipe'])).toEqual(['team', 'Équipe'])
    expect(messageOf(() => validateTagKeys(['ok', 'bad#key']))).toContain(
      "Value 'bad#key' at 'tagKeys.2.member' failed to satisfy constraint: Member must satisfy regular expression pattern",
    )
    expect(
      messageOf(() => validateTagKeys(Array.from({ length: 51 }, (_, i) => `k${i}`))),
    ).toContain(
      "at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50",
    )
  })
})

describe('validateListEnvironments', () => {
  it('defaults MaxResults to 25 and drops an empty NextToken', () => {
    expect(validateListEnvironments()).toEqual({ maxResults: 25 })
    expect(validateListEnvironments(undefined, '')).toEqual({ maxResults: 25 })
    expect(validateListEnvironments('7', 'abc')).toEqual({ maxResults: 7, nextToken: 'abc' })
  })

  it.each([
    [
      '0',
      "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1",
    ],
    [
      '26',
      "Value '26' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 25",
    ],
    [
      'abc',
      "Value 'abc' at 'maxResults' failed to satisfy constraint: Member must be an integer, not a string",
    ],
    ['1.5', "at 'maxResults' failed to satisfy constraint: Member must be an integer"],
    ['', "at 'maxResults' failed to satisfy constraint: Member must be an integer"],
  ])('rejects MaxResults %j', (maxResults, expected) => {
    expect(messageOf(() => validateListEnvironments(maxResults))).toContain(expected)
  })

  it('limits NextToken to 2048 characters', () => {
    expect(validateListEnvironments('1', 't'.repeat(2048)).nextToken).toHaveLength(2048)
    expect(messageOf(() => validateListEnvironments('1', 't'.repeat(2049)))).toContain(
      "at 'nextToken' failed to satisfy constraint: Member must have length less than or equal to 2048",
    )
  })
})

describe('validateInvokeRestApi', () => {
  it('returns the request with optional members only when sent', () => {
    expect(validateInvokeRestApi('MyEnv', { Path: '/dags', Method: 'GET' })).toEqual({
      name: 'MyEnv',
      path: '/dags',
      method: 'GET',
    })
    expect(
      validateInvokeRestApi('MyEnv', {
        Path: '/dags/d1/dagRuns',
        Method: 'POST',
        QueryParameters: { limit: 5 },
        Body: { conf: { a: 1 } },
      }),
    ).toEqual({
      name: 'MyEnv',
      path: '/dags/d1/dagRuns',
      method: 'POST',
      queryParameters: { limit: 5 },
      body: { conf: { a: 1 } },
    })
    expect(
      validateInvokeRestApi('MyEnv', { Path: '/x', Method: 'PUT', Body: [1, 'a'] }).body,
    ).toEqual([1, 'a'])
  })

  it('requires Path and Method', () => {
    expect(messageOf(() => validateInvokeRestApi('MyEnv', {}))).toBe(
      '2 validation errors detected: ' +
        "Value null at 'path' failed to satisfy constraint: Member must not be null; " +
        "Value null at 'method' failed to satisfy constraint: Member must not be null",
    )
    expect(
      messageOf(() => validateInvokeRestApi('MyEnv', { Path: '/dags', Method: 'HEAD' })),
    ).toContain(
      "Value 'HEAD' at 'method' failed to satisfy constraint: Member must satisfy enum value set: [GET, PUT, POST, PATCH, DELETE]",
    )
  })

  it.each([
    ['dags', "Path 'dags' must start with '/' (it is relative to the Airflow REST API root)."],
    ['/../auth/token', "Path '/../auth/token' must not contain '.' or '..' segments."],
    [
      '/dags/%2e%2e/%2E%2E/x',
      "Path '/dags/%2e%2e/%2E%2E/x' must not contain '.' or '..' segments.",
    ],
    ['/dags/..\\x', "Path '/dags/..\\x' must not contain '.' or '..' segments."],
    ['/./dags', "Path '/./dags' must not contain '.' or '..' segments."],
    ['//evil.example/x', "Path '//evil.example/x' must be a path, not a URL."],
    ['/x?u=http://evil', "Path '/x?u=http://evil' must be a path, not a URL."],
  ])('rejects Path %j', (path, expected) => {
    expect(messageOf(() => validateInvokeRestApi('MyEnv', { Path: path, Method: 'GET' }))).toBe(
      expected,
    )
  })

  it('limits Path to 64 characters and QueryParameters to an object', () => {
    expect(
      messageOf(() =>
        validateInvokeRestApi('MyEnv', { Path: `/${'a'.repeat(64)}`, Method: 'GET' }),
      ),
    ).toContain(
      "at 'path' failed to satisfy constraint: Member must have length less than or equal to 64",
    )
    expect(
      messageOf(() =>
        validateInvokeRestApi('MyEnv', { Path: '/dags', Method: 'GET', QueryParameters: ['a'] }),
      ),
    ).toContain(
      "at 'queryParameters' failed to satisfy constraint: Member must be an object, not a list",
    )
  })

  it('accepts dots inside segments', () => {
    expect(validateInvokeRestApi('MyEnv', { Path: '/dags/my.dag..v2', Method: 'GET' }).path).toBe(
      '/dags/my.dag..v2',
    )
  })
})
