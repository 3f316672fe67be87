/**
 * airdock's API extensions (things MWAA lacks), under `/airdock/v1/`. They are additive and
 * never change an MWAA shape (DESIGN.md decision 2). Errors use the MWAA error shape. Every
 * route is SigV4-authenticated and authorized like the MWAA operations (`access.ts`: actions
 * `airdock:*`, which only administrators' policies allow by default), except the two the
 * environments' gateways call, which carry a login or CLI token instead.
 *
 *   GET    /airdock/v1/environments/{Name}                       components, phases, workers
 *   POST   /airdock/v1/environments/{Name}/validate              check an update's requirements,
 *                                                                plugins and startup script
 *                                                                (UpdateEnvironment body) without
 *                                                                applying it
 *   GET    /airdock/v1/iam/users                                 users and their policies
 *   PUT    /airdock/v1/iam/users/{UserName}                      create a user
 *   GET    /airdock/v1/iam/users/{UserName}                      one user
 *   DELETE /airdock/v1/iam/users/{UserName}                      delete a user and its keys
 *   PUT    /airdock/v1/iam/users/{UserName}/policies/{Policy}    set an inline policy (body)
 *   DELETE /airdock/v1/iam/users/{UserName}/policies/{Policy}    remove it
 *   POST   /airdock/v1/iam/users/{UserName}/access-keys          new access key (secret once)
 *   GET    /airdock/v1/iam/users/{UserName}/access-keys          the user's keys (no secrets)
 *   DELETE /airdock/v1/iam/access-keys/{AccessKeyId}             delete a key
 *   GET    /airdock/v1/audit?MaxResults=&Since=                  the audit trail, oldest first
 *   POST   /airdock/v1/kms/keys                                  create a customer key
 *   GET    /airdock/v1/kms/keys                                  list customer keys
 *   DELETE /airdock/v1/kms/keys/{KeyId}                          delete one (at once)
 *   POST   /airdock/v1/web-login/{Name}    (gateway, web token)  redeem a web login token
 *   POST   /airdock/v1/cli/{Name}          (gateway, CLI token)  run an allowed Airflow CLI command
 */
import type { Hono } from 'hono'
import { KMS_KEY_ID_SOURCE } from '../domain/arns.js'
import { ResourceNotFoundError, ValidationError } from '../domain/errors.js'
import { validateEnvironmentName, validateUpdateEnvironment } from '../domain/validation.js'
import type { IdentityService } from '../iam/identity-service.js'
import { KeyUnavailableError, type KeyRing } from '../security/key-ring.js'
import type { EnvironmentService } from '../services/environment-service.js'
import type { AccessStore } from '../store/access-store.js'
import { setTokenPrincipal } from './access.js'
import { jsonBody, type ApiEnv } from './app.js'
import { isJsonObject } from './wire.js'

/** What the extensions need. */
export interface ExtensionDependencies {
  service: EnvironmentService
  identity: IdentityService
  accessStore: AccessStore
  keyRing: KeyRing
}

/** An ISO 8601 instant with a four-digit year (what `Since` accepts). */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/

/** A key id (UUID), `key/<uuid>` or a key ARN. */
const KEY_ID_OR_ARN = new RegExp(
  `^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\\d{12}:key/)?(key/)?${KMS_KEY_ID_SOURCE}$`,
)

/** Largest `MaxResults` of the audit listing. */
const MAX_AUDIT_RESULTS = 1000

/** Adds the extension routes to the API app. */
export function registerExtensions(app: Hono<ApiEnv>, deps: ExtensionDependencies): void {
  const { service, identity, accessStore, keyRing } = deps

  app.get('/airdock/v1/environments/:name', async (c) => {
    const name = c.req.param('name')
    validateEnvironmentName(name)
    return c.json(await service.describe(name))
  })

  app.post('/airdock/v1/environments/:name/validate', async (c) => {
    const request = validateUpdateEnvironment(c.req.param('name'), await jsonBody(c))
    return c.json(await service.validateInputs(request))
  })

  app.get('/airdock/v1/iam/users', async (c) => c.json({ Users: await identity.listUsers() }))
  app.put('/airdock/v1/iam/users/:user', async (c) =>
    c.json({ User: await identity.createUser(c.req.param('user')) }),
  )
  app.get('/airdock/v1/iam/users/:user', async (c) =>
    c.json({ User: await identity.getUser(c.req.param('user')) }),
  )
  app.delete('/airdock/v1/iam/users/:user', async (c) => {
    await identity.deleteUser(c.req.param('user'))
    return c.json({})
  })
  app.put('/airdock/v1/iam/users/:user/policies/:policy', async (c) => {
    await identity.putUserPolicy(c.req.param('user'), c.req.param('policy'), await jsonBody(c))
    return c.json({})
  })
  app.delete('/airdock/v1/iam/users/:user/policies/:policy', async (c) => {
    await identity.deleteUserPolicy(c.req.param('user'), c.req.param('policy'))
    return c.json({})
  })
  app.post('/airdock/v1/iam/users/:user/access-keys', async (c) =>
    c.json({ AccessKey: await identity.createAccessKey(c.req.param('user')) }),
  )
  app.get('/airdock/v1/iam/users/:user/access-keys', async (c) =>
    c.json({ AccessKeyMetadata: await identity.listAccessKeys(c.req.param('user')) }),
  )
  app.delete('/airdock/v1/iam/access-keys/:key', async (c) => {
    await identity.deleteAccessKey(c.req.param('key'))
    return c.json({})
  })

  app.get('/airdock/v1/audit', async (c) => {
    const maxResults = c.req.query('MaxResults')
    const since = c.req.query('Since')
    const limit = maxResults === undefined ? 100 : Number(maxResults)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_RESULTS) {
      throw new ValidationError(`MaxResults must be an integer between 1 and ${MAX_AUDIT_RESULTS}.`)
    }
    const sinceDate = since === undefined ? undefined : new Date(since)
    if (since !== undefined && (!ISO_INSTANT.test(since) || Number.isNaN(sinceDate!.getTime()))) {
      throw new ValidationError('Since must be an ISO 8601 instant, e.g. 2026-11-21T10:00:00Z.')
    }
    const events = await accessStore.listAudit(limit, sinceDate)
    return c.json({
      Events: events.map((e) => ({
        Time: e.at.toISOString(),
        Principal: e.principal,
        Action: e.action,
        Resource: e.resource,
        SourceAddress: e.sourceAddress,
        Result: e.result,
        ...(e.errorCode ? { ErrorCode: e.errorCode } : {}),
        RequestId: e.requestId,
      })),
    })
  })

  app.post('/airdock/v1/kms/keys', async (c) => {
    const body = await jsonBody(c)
    if (!isJsonObject(body)) throw new ValidationError('The request body must be a JSON object.')
    const description = body.Description
    if (
      description !== undefined &&
      (typeof description !== 'string' || description.length > 8192)
    ) {
      throw new ValidationError('Description must be a string of at most 8192 characters.')
    }
    return c.json({ KeyMetadata: keyView(await keyRing.createKey(description)) })
  })
  app.get('/airdock/v1/kms/keys', async (c) =>
    c.json({ Keys: (await keyRing.listKeys()).map(keyView) }),
  )
  app.delete('/airdock/v1/kms/keys/:key', async (c) => {
    const key = c.req.param('key')
    if (!KEY_ID_OR_ARN.test(key)) {
      throw new ValidationError(`KeyId '${key.slice(0, 200)}' is not a key id or key ARN.`)
    }
    try {
      await keyRing.deleteKey(key)
    } catch (err) {
      if (err instanceof KeyUnavailableError) throw new ResourceNotFoundError('Key', key)
      throw err
    }
    return c.json({})
  })

  app.post('/airdock/v1/web-login/:name', async (c) => {
    const name = validateEnvironmentName(c.req.param('name'))
    const body = await jsonBody(c)
    const token = (body as { WebToken?: unknown }).WebToken
    if (typeof token !== 'string' || token.length === 0 || token.length > 4096) {
      throw new ValidationError('WebToken must be a non-empty string.')
    }
    const session = await service.redeemWebLoginToken(name, token)
    setTokenPrincipal(c, session.principal)
    return c.json({
      AirflowToken: session.airflowToken,
      AirflowRole: session.role,
      MaxAgeSeconds: session.maxAgeSeconds,
    })
  })

  app.post('/airdock/v1/cli/:name', async (c) => {
    const name = validateEnvironmentName(c.req.param('name'))
    const authorization = c.req.header('authorization') ?? ''
    const token = /^Bearer (\S{1,4096})$/.exec(authorization)?.[1]
    if (!token) throw new ValidationError('The Authorization header must be `Bearer <CliToken>`.')
    const result = await service.runCliCommand(name, token, await c.req.text())
    setTokenPrincipal(c, result.principal)
    return c.json({ stdout: result.stdout, stderr: result.stderr })
  })
}

function keyView(key: Awaited<ReturnType<KeyRing['createKey']>>): Record<string, unknown> {
  return {
    KeyId: key.keyId,
    Arn: key.arn,
    Description: key.description,
    CreationDate: key.createdAt.getTime() / 1000,
    Origin: key.origin,
  }
}
