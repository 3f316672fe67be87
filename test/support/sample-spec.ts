/** A complete, valid environment spec for unit tests (mw1.small with MWAA's defaults). */
import type { EnvironmentSpec } from '../../src/domain/environment.js'
import { defaultLoggingConfiguration } from '../../src/domain/validation.js'

/** @param overrides - fields to replace */
export function sampleSpec(overrides: Partial<EnvironmentSpec> = {}): EnvironmentSpec {
  return {
    executionRoleArn: 'arn:aws:iam::123456789012:role/exec',
    sourceBucketArn: 'arn:aws:s3:::bucket',
    dagS3Path: 'dags',
    networkConfiguration: { subnetIds: ['subnet-a', 'subnet-b'], securityGroupIds: ['sg-1'] },
    airflowConfigurationOptions: {},
    environmentClass: 'mw1.small',
    maxWorkers: 10,
    minWorkers: 1,
    schedulers: 2,
    minWebservers: 2,
    maxWebservers: 2,
    airflowVersion: '3.3.2',
    loggingConfiguration: defaultLoggingConfiguration(),
    weeklyMaintenanceWindowStart: 'SUN:03:30',
    webserverAccessMode: 'PRIVATE_ONLY',
    endpointManagement: 'SERVICE',
    ...overrides,
  }
}
