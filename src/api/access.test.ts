import { describe, expect, it } from 'vitest'
import { routeAccess } from './access.js'

const arns = { region: 'us-east-1', accountId: '123456789012' }
const env = (name: string) => `arn:aws:airflow:us-east-1:123456789012:environment/${name}`
const role = (name: string) => `arn:aws:airflow:us-east-1:123456789012:role/${name}/*`

describe('routeAccess (IAM action and resource of every route)', () => {
  it.each([
    ['PUT', '/environments/e1', 'airflow:CreateEnvironment', env('e1'), true],
    ['GET', '/environments/e1', 'airflow:GetEnvironment', env('e1'), false],
    ['GET', '/environments', 'airflow:ListEnvironments', '*', false],
    ['PATCH', '/environments/e1', 'airflow:UpdateEnvironment', env('e1'), true],
    ['DELETE', '/environments/e1', 'airflow:DeleteEnvironment', env('e1'), true],
    ['POST', `/tags/${encodeURIComponent(env('e1'))}`, 'airflow:TagResource', env('e1'), true],
    ['DELETE', `/tags/${encodeURIComponent(env('e1'))}`, 'airflow:UntagResource', env('e1'), true],
    [
      'GET',
      `/tags/${encodeURIComponent(env('e1'))}`,
      'airflow:ListTagsForResource',
      env('e1'),
      false,
    ],
    ['POST', '/restapi/e1', 'airflow:InvokeRestApi', role('e1'), true],
    ['POST', '/webtoken/e1', 'airflow:CreateWebLoginToken', role('e1'), true],
    ['POST', '/clitoken/e1', 'airflow:CreateCliToken', env('e1'), true],
    ['GET', '/airdock/v1/environments/e1', 'airdock:DescribeEnvironment', env('e1'), false],
    [
      'POST',
      '/airdock/v1/environments/e1/validate',
      'airdock:ValidateEnvironmentInputs',
      env('e1'),
      false,
    ],
    ['GET', '/airdock/v1/iam/users', 'airdock:ListUsers', '*', false],
    [
      'PUT',
      '/airdock/v1/iam/users/bob',
      'airdock:CreateUser',
      'arn:aws:iam::123456789012:user/bob',
      true,
    ],
    [
      'PUT',
      '/airdock/v1/iam/users/bob/policies/p',
      'airdock:PutUserPolicy',
      'arn:aws:iam::123456789012:user/bob',
      true,
    ],
    [
      'POST',
      '/airdock/v1/iam/users/bob/access-keys',
      'airdock:CreateAccessKey',
      'arn:aws:iam::123456789012:user/bob',
      true,
    ],
    ['DELETE', '/airdock/v1/iam/access-keys/AKIAX', 'airdock:DeleteAccessKey', '*', true],
    ['GET', '/airdock/v1/audit', 'airdock:ListAuditEvents', '*', false],
    ['POST', '/airdock/v1/kms/keys', 'airdock:CreateKey', '*', true],
  ])('%s %s → %s on %s', (method, path, action, resource, audited) => {
    const segments = path
      .split('/')
      .slice(1)
      .map((s) => decodeURIComponent(s))
    expect(routeAccess(method, segments, arns)).toMatchObject({ action, resource, audited })
  })

  it('marks the two gateway routes as token-authenticated and knows no other routes', () => {
    expect(routeAccess('POST', ['airdock', 'v1', 'web-login', 'e1'], arns)).toMatchObject({
      tokenAuthenticated: true,
    })
    expect(routeAccess('POST', ['airdock', 'v1', 'cli', 'e1'], arns)).toMatchObject({
      tokenAuthenticated: true,
    })
    expect(routeAccess('GET', ['airdock', 'v1', 'web-login', 'e1'], arns)).toBeUndefined()
    expect(routeAccess('POST', ['environments', 'e1'], arns)).toBeUndefined()
    expect(routeAccess('GET', ['secret'], arns)).toBeUndefined()
  })
})
