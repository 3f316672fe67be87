import { describe, expect, it } from 'vitest'
import {
  AIRFLOW_ROLES,
  evaluatePolicies,
  highestAllowedAirflowRole,
  parsePolicyDocument,
  PolicyDocumentError,
  type AirflowRole,
  type PolicyDocument,
} from './policy.js'

const ENV_ARN = 'arn:aws:airflow:us-east-1:000000000000:environment/env1'
const roleArn =
  (env: string, region = 'us-east-1') =>
  (role: AirflowRole): string =>
    `arn:aws:airflow:${region}:000000000000:role/${env}/${role}`

/** A one-statement document. */
const doc = (statement: Record<string, unknown>): PolicyDocument =>
  parsePolicyDocument({ Version: '2012-10-17', Statement: statement })

const allow = (Action: string | string[], Resource: string | string[] = '*') =>
  doc({ Effect: 'Allow', Action, Resource })

describe('parsePolicyDocument', () => {
  it('normalises single values to lists and keeps Sid, Id and Version', () => {
    expect(
      parsePolicyDocument({
        Version: '2012-10-17',
        Id: 'p1',
        Statement: { Sid: 'All', Effect: 'Allow', Action: 'airflow:*', Resource: ENV_ARN },
      }),
    ).toEqual({
      Version: '2012-10-17',
      Id: 'p1',
      Statement: [{ Sid: 'All', Effect: 'Allow', Action: ['airflow:*'], Resource: [ENV_ARN] }],
    })
  })

  it('accepts NotAction / NotResource, Version 2008-10-17, no Version, and a JSON string', () => {
    const parsed = parsePolicyDocument(
      JSON.stringify({
        Statement: [
          { Effect: 'Deny', NotAction: ['airflow:Get*', 'airflow:List*'], NotResource: ENV_ARN },
        ],
      }),
    )
    expect(parsed).toEqual({
      Statement: [
        { Effect: 'Deny', NotAction: ['airflow:Get*', 'airflow:List*'], NotResource: [ENV_ARN] },
      ],
    })
    expect(
      parsePolicyDocument({
        Version: '2008-10-17',
        Statement: [{ Effect: 'Allow', Action: '*', Resource: 'arn:aws:s3:::b/${literal}' }],
      }).Version,
    ).toBe('2008-10-17')
  })

  const ok = { Effect: 'Allow', Action: 'airflow:GetEnvironment', Resource: '*' }
  it.each<[string, unknown, string]>([
    ['not an object', 5, 'policy document must be a JSON object'],
    ['an array', [ok], 'policy document must be a JSON object'],
    ['invalid JSON text', '{"Statement":', 'policy document is not valid JSON'],
    [
      'an unknown Version',
      { Version: '2012-10-18', Statement: ok },
      'Version must be "2012-10-17" or "2008-10-17"',
    ],
    ['no Statement', { Version: '2012-10-17' }, 'Statement is required'],
    ['an empty Statement list', { Statement: [] }, 'Statement must contain at least one statement'],
    [
      'a Statement string',
      { Statement: 'x' },
      'Statement must be an object or an array of objects',
    ],
    [
      'a statement that is not an object',
      { Statement: [ok, 'x'] },
      'Statement[1] must be an object',
    ],
    [
      'a bad Effect',
      { Statement: [ok, { ...ok, Effect: 'allow' }] },
      'Statement[1].Effect must be "Allow" or "Deny"',
    ],
    [
      'a missing Effect in a single statement',
      { Statement: { Action: '*', Resource: '*' } },
      'Statement.Effect must be "Allow" or "Deny"',
    ],
    ['a numeric Sid', { Statement: [{ ...ok, Sid: 1 }] }, 'Statement[0].Sid must be a string'],
    [
      'Action and NotAction',
      { Statement: [{ ...ok, NotAction: 'airflow:List*' }] },
      'Statement[0] must not have both Action and NotAction',
    ],
    [
      'neither Action nor NotAction',
      { Statement: [{ Effect: 'Allow', Resource: '*' }] },
      'Statement[0] must have Action or NotAction',
    ],
    [
      'neither Resource nor NotResource',
      { Statement: [{ Effect: 'Allow', Action: '*' }] },
      'Statement[0] must have Resource or NotResource',
    ],
    [
      'Resource and NotResource',
      { Statement: [{ ...ok, NotResource: ENV_ARN }] },
      'Statement[0] must not have both Resource and NotResource',
    ],
    [
      'a numeric Action',
      { Statement: [{ ...ok, Action: 3 }] },
      'Statement[0].Action must be a string or an array of strings',
    ],
    [
      'a number in an Action list',
      { Statement: [{ ...ok, Action: ['airflow:GetEnvironment', 3] }] },
      'Statement[0].Action[1] must be a string',
    ],
    [
      'an empty Action list',
      { Statement: [{ ...ok, Action: [] }] },
      'Statement[0].Action must not be empty',
    ],
    [
      'an action without a service prefix',
      { Statement: [{ ...ok, Action: 'GetEnvironment' }] },
      'Statement[0].Action "GetEnvironment" must be "*" or "service:action"',
    ],
    [
      'a bad action in a list',
      { Statement: [{ ...ok, NotAction: ['airflow:Get*', 'airflow:'], Action: undefined }] },
      'Statement[0].NotAction[1] "airflow:" must be "*" or "service:action"',
    ],
    [
      'a resource that is not an ARN',
      { Statement: [{ ...ok, Resource: 'environment/env1' }] },
      'Statement[0].Resource "environment/env1" must be "*" or an ARN',
    ],
    [
      'an ARN with too few segments',
      { Statement: [{ ...ok, Resource: 'arn:aws:airflow' }] },
      'Statement[0].Resource "arn:aws:airflow" must be "*" or an ARN',
    ],
    [
      'a Condition',
      { Statement: [{ ...ok, Condition: { StringEquals: { 'aws:RequestedRegion': 'x' } } }] },
      'Statement[0].Condition is not supported (airdock evaluates policies without conditions)',
    ],
    [
      'a Principal',
      { Statement: [{ ...ok, Principal: '*' }] },
      'Statement[0].Principal is not supported',
    ],
    [
      'an unknown statement member',
      { Statement: [{ ...ok, Actions: '*' }] },
      'Statement[0].Actions is not a statement member',
    ],
    [
      'an unknown document member',
      { Statement: ok, Statements: [] },
      'Statements is not a policy document member (expected Version, Id, Statement)',
    ],
    [
      'a policy variable under 2012-10-17',
      {
        Version: '2012-10-17',
        Statement: [ok, { ...ok, Resource: ['*', 'arn:aws:s3:::b/${aws:username}/*'] }],
      },
      'Statement[1].Resource[1] "arn:aws:s3:::b/${aws:username}/*" uses a policy variable, which is not supported',
    ],
  ])('refuses %s', (_what, input, message) => {
    let error: unknown
    try {
      parsePolicyDocument(input)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(PolicyDocumentError)
    expect(error).toBeInstanceOf(Error)
    expect((error as PolicyDocumentError).message).toContain(message)
    expect((error as PolicyDocumentError).problems[0]).toBe((error as Error).message)
  })

  it('lists every problem it finds', () => {
    try {
      parsePolicyDocument({
        Statement: [
          { Effect: 'Maybe', Action: '*', Resource: '*' },
          { Effect: 'Allow', Action: 'x', Resource: '*' },
        ],
      })
      expect.unreachable()
    } catch (err) {
      expect((err as PolicyDocumentError).problems).toEqual([
        'Statement[0].Effect must be "Allow" or "Deny"',
        'Statement[1].Action "x" must be "*" or "service:action" (e.g. "airflow:GetEnvironment")',
      ])
    }
  })
})

describe('evaluatePolicies', () => {
  const request = (action: string, resource = ENV_ARN) => ({ action, resource })

  it.each<[string, string | string[], string, boolean]>([
    ['exact action', 'airflow:GetEnvironment', 'airflow:GetEnvironment', true],
    ['other action', 'airflow:GetEnvironment', 'airflow:ListEnvironments', false],
    ['service wildcard', 'airflow:*', 'airflow:CreateWebLoginToken', true],
    ['service wildcard, other service', 'airflow:*', 's3:GetObject', false],
    ['prefix wildcard', 'airflow:Get*', 'airflow:GetEnvironment', true],
    ['prefix wildcard, no match', 'airflow:Get*', 'airflow:ListEnvironments', false],
    ['single-character wildcard', 'airflow:?etEnvironment', 'airflow:GetEnvironment', true],
    ['? is exactly one character', 'airflow:?GetEnvironment', 'airflow:GetEnvironment', false],
    ['inner wildcard', 'airflow:*Token', 'airflow:CreateCliToken', true],
    ['everything', '*', 'iam:PassRole', true],
    ['case-insensitive action name', 'airflow:getenvironment', 'airflow:GetEnvironment', true],
    ['case-insensitive service prefix', 'AIRFLOW:Get*', 'airflow:GetEnvironment', true],
    ['case-insensitive request', 'airflow:GetEnvironment', 'AIRFLOW:GETENVIRONMENT', true],
    ['any of a list', ['airflow:List*', 'airflow:Get*'], 'airflow:GetEnvironment', true],
    ['no partial match', 'airflow:Get', 'airflow:GetEnvironment', false],
    ['several wildcards', 'airflow:*Env*t', 'airflow:GetEnvironment', true],
  ])('action: %s', (_what, pattern, action, allowed) => {
    expect(evaluatePolicies([allow(pattern)], request(action))).toBe(
      allowed ? 'Allow' : 'ImplicitDeny',
    )
  })

  it.each<[string, string, string, boolean]>([
    ['exact ARN', ENV_ARN, ENV_ARN, true],
    ['everything', '*', ENV_ARN, true],
    ['all environments', 'arn:aws:airflow:us-east-1:000000000000:environment/*', ENV_ARN, true],
    [
      'all environments, not a role',
      'arn:aws:airflow:us-east-1:000000000000:environment/*',
      roleArn('env1')('Admin'),
      false,
    ],
    ['any region and account', 'arn:aws:airflow:*:*:role/env1/*', roleArn('env1')('Op'), true],
    [
      'any region, other environment',
      'arn:aws:airflow:*:*:role/env1/*',
      roleArn('env2')('Op'),
      false,
    ],
    ['* spans /', 'arn:aws:airflow:*:*:role/*', roleArn('env1')('Viewer'), true],
    ['? wildcard', 'arn:aws:airflow:us-east-1:000000000000:environment/env?', ENV_ARN, true],
    [
      'case-sensitive name',
      'arn:aws:airflow:us-east-1:000000000000:environment/ENV1',
      ENV_ARN,
      false,
    ],
    [
      'case-sensitive role',
      'arn:aws:airflow:us-east-1:000000000000:role/env1/admin',
      roleArn('env1')('Admin'),
      false,
    ],
    [
      'no prefix match without *',
      'arn:aws:airflow:us-east-1:000000000000:environment/env',
      ENV_ARN,
      false,
    ],
    [
      '* ending a segment crosses colons',
      'arn:aws:logs:*:*:log-group:*',
      'arn:aws:logs:us-east-1:000000000000:log-group:g1:log-stream:s1',
      true,
    ],
    [
      '* before a colon crosses colons',
      'arn:aws:logs:*:*:log-group:*:log-stream:s1',
      'arn:aws:logs:us-east-1:000000000000:log-group:a:b:log-stream:s1',
      true,
    ],
    [
      '* inside a segment stays in it',
      'arn:aws:airflow:us-*-1:000000000000:environment/env1',
      'arn:aws:airflow:us-east:x-1:000000000000:environment/env1',
      false,
    ],
    ['* inside a segment', 'arn:aws:airflow:us-*-1:000000000000:environment/env1', ENV_ARN, true],
    [
      '? does not match a colon',
      'arn:aws:logs:us-east-1:000000000000:log-group:a?b',
      'arn:aws:logs:us-east-1:000000000000:log-group:a:b',
      false,
    ],
    [
      'regex characters are literal',
      'arn:aws:s3:::bucket.name/(a)+',
      'arn:aws:s3:::bucket.name/(a)+',
      true,
    ],
    ['regex characters are literal, no match', 'arn:aws:s3:::a.c', 'arn:aws:s3:::abc', false],
  ])('resource: %s', (_what, pattern, resource, allowed) => {
    expect(evaluatePolicies([allow('airflow:*', pattern)], request('airflow:X', resource))).toBe(
      allowed ? 'Allow' : 'ImplicitDeny',
    )
  })

  it('implicitly denies with no policies or no applicable statement', () => {
    expect(evaluatePolicies([], request('airflow:GetEnvironment'))).toBe('ImplicitDeny')
    expect(evaluatePolicies([allow('s3:*')], request('airflow:GetEnvironment'))).toBe(
      'ImplicitDeny',
    )
  })

  it('lets an explicit Deny win over any Allow, in any order and across documents', () => {
    const deny = doc({ Effect: 'Deny', Action: 'airflow:Delete*', Resource: ENV_ARN })
    const req = request('airflow:DeleteEnvironment')
    expect(evaluatePolicies([allow('*'), deny], req)).toBe('ExplicitDeny')
    expect(evaluatePolicies([deny, allow('*')], req)).toBe('ExplicitDeny')
    expect(evaluatePolicies([deny], req)).toBe('ExplicitDeny')
    expect(evaluatePolicies([allow('*'), deny], request('airflow:GetEnvironment'))).toBe('Allow')
    const both = parsePolicyDocument({
      Statement: [
        { Effect: 'Allow', Action: '*', Resource: '*' },
        { Effect: 'Deny', Action: 'airflow:*', Resource: 'arn:aws:airflow:*:*:environment/env1' },
      ],
    })
    expect(evaluatePolicies([both], req)).toBe('ExplicitDeny')
    expect(evaluatePolicies([both], request('airflow:DeleteEnvironment', `${ENV_ARN}-b`))).toBe(
      'Allow',
    )
  })

  it('NotAction with Allow grants every action except the listed ones', () => {
    const p = doc({
      Effect: 'Allow',
      NotAction: ['airflow:Delete*', 'airflow:Create*'],
      Resource: '*',
    })
    expect(evaluatePolicies([p], request('airflow:GetEnvironment'))).toBe('Allow')
    expect(evaluatePolicies([p], request('s3:GetObject'))).toBe('Allow')
    expect(evaluatePolicies([p], request('airflow:DeleteEnvironment'))).toBe('ImplicitDeny')
    expect(evaluatePolicies([p], request('AIRFLOW:createenvironment'))).toBe('ImplicitDeny')
  })

  it('NotAction with Deny denies every action except the listed ones', () => {
    const p = [allow('*'), doc({ Effect: 'Deny', NotAction: 'airflow:Get*', Resource: ENV_ARN })]
    expect(evaluatePolicies(p, request('airflow:GetEnvironment'))).toBe('Allow')
    expect(evaluatePolicies(p, request('airflow:UpdateEnvironment'))).toBe('ExplicitDeny')
    // The Deny covers only its resource.
    expect(evaluatePolicies(p, request('airflow:UpdateEnvironment', `${ENV_ARN}x`))).toBe('Allow')
  })

  it('NotResource applies to every resource except the listed ones', () => {
    const p = doc({
      Effect: 'Allow',
      Action: 'airflow:*',
      NotResource: 'arn:aws:airflow:*:*:role/*',
    })
    expect(evaluatePolicies([p], request('airflow:GetEnvironment'))).toBe('Allow')
    expect(
      evaluatePolicies([p], request('airflow:CreateWebLoginToken', roleArn('e')('Admin'))),
    ).toBe('ImplicitDeny')
    const deny = [
      allow('*'),
      doc({
        Effect: 'Deny',
        Action: '*',
        NotResource: [ENV_ARN, 'arn:aws:airflow:*:*:role/env1/*'],
      }),
    ]
    expect(evaluatePolicies(deny, request('airflow:GetEnvironment'))).toBe('Allow')
    expect(
      evaluatePolicies(deny, request('airflow:CreateWebLoginToken', roleArn('env1')('Op'))),
    ).toBe('Allow')
    expect(evaluatePolicies(deny, request('airflow:GetEnvironment', `${ENV_ARN}2`))).toBe(
      'ExplicitDeny',
    )
  })

  it('stays fast on many-wildcard patterns (no backtracking blow-up)', () => {
    const pattern = `arn:aws:s3:::${'*a'.repeat(30)}b`
    const resource = `arn:aws:s3:::${'a'.repeat(2000)}`
    const start = Date.now()
    expect(evaluatePolicies([allow('*', pattern)], request('s3:GetObject', resource))).toBe(
      'ImplicitDeny',
    )
    expect(Date.now() - start).toBeLessThan(2000)
  })
})

describe('highestAllowedAirflowRole', () => {
  const token = 'airflow:CreateWebLoginToken'
  const grant = (...resources: string[]) =>
    doc({ Effect: 'Allow', Action: token, Resource: resources })

  it('lists the roles from most to least privileged', () => {
    expect(AIRFLOW_ROLES).toEqual(['Admin', 'Op', 'User', 'Viewer', 'Public'])
  })

  it.each<[string, PolicyDocument[], AirflowRole | undefined]>([
    ['no policies', [], undefined],
    ['every role of the environment', [grant('arn:aws:airflow:*:*:role/env1/*')], 'Admin'],
    ['one role', [grant(roleArn('env1')('User'))], 'User'],
    ['the highest of several', [grant(roleArn('env1')('Public'), roleArn('env1')('Op'))], 'Op'],
    ['only Public', [grant(roleArn('env1')('Public'))], 'Public'],
    ['another environment only', [grant(roleArn('env2')('Admin'))], undefined],
    ['another region only', [grant(roleArn('env1', 'eu-west-1')('Admin'))], undefined],
    ['another action only', [allow('airflow:InvokeRestApi', '*')], undefined],
    [
      'everything but Admin denied explicitly',
      [
        grant('*'),
        doc({ Effect: 'Deny', Action: 'airflow:*', Resource: roleArn('env1')('Admin') }),
      ],
      'Op',
    ],
    [
      'every role denied',
      [grant('*'), doc({ Effect: 'Deny', Action: 'airflow:*', Resource: '*' })],
      undefined,
    ],
    ['everything allowed', [allow('*')], 'Admin'],
  ])('%s', (_what, policies, expected) => {
    expect(highestAllowedAirflowRole(policies, token, roleArn('env1'))).toBe(expected)
  })

  it('checks the action it is given (InvokeRestApi is separate from CreateWebLoginToken)', () => {
    const policies = [
      grant(roleArn('env1')('Admin')),
      doc({
        Effect: 'Allow',
        Action: 'airflow:InvokeRestApi',
        Resource: roleArn('env1')('Viewer'),
      }),
    ]
    expect(highestAllowedAirflowRole(policies, 'airflow:InvokeRestApi', roleArn('env1'))).toBe(
      'Viewer',
    )
    expect(highestAllowedAirflowRole(policies, token, roleArn('env1'))).toBe('Admin')
  })
})
