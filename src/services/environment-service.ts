/**
 * The environment service: records intent (spec, tags, deletion) and asks the reconciler to act
 * (DESIGN.md decision 3). It never starts or stops anything itself. State rules come from MWAA
 * (reference `mwaa-api-and-behaviour.md` §1, §2, §12).
 */
import { createHash, randomBytes } from 'node:crypto'
import path from 'node:path'
import { environmentPorts, webserverHostname } from '../airflow/components.js'
import { CliCommandRefusedError, parseCliCommand } from '../airflow/cli-commands.js'
import type { EnvironmentSecrets } from '../airflow/components.js'
import { mintAirflowToken, type AirflowRole } from '../airflow/tokens.js'
import type { MwaaAirflowRole } from '../iam/identity-service.js'
import type { LoginTokens } from '../iam/login-tokens.js'
import { RateLimiter } from '../lib/rate-limiter.js'
import { KeyUnavailableError, type KeyRing } from '../security/key-ring.js'
import { environmentArn } from '../domain/arns.js'
import { versionChangeRefusal } from '../domain/airflow-versions.js'
import { findEnvironmentClass } from '../domain/environment-classes.js'
import type { ComponentStatus, EnvironmentRecord, EnvironmentSpec } from '../domain/environment.js'
import { desiredWebserverCount, desiredWorkerCount } from '../domain/scaling.js'
import {
  AccessDeniedError,
  InternalServerError,
  ResourceNotFoundError,
  RestApiError,
  ThrottlingError,
  ValidationError,
} from '../domain/errors.js'
import { deriveEnvironmentStatus, deriveLastUpdate, type StatusInput } from '../domain/status.js'
import {
  mergeEnvironmentSpec,
  validateEnvironmentArn,
  validateMergedSpec,
} from '../domain/validation.js'
import type { ObjectStore } from '../storage/object-store.js'
import { ArtifactError, refusedUpdate } from '../reconciler/artifacts.js'
import type { EnvironmentReconciler } from '../reconciler/environment-reconciler.js'
import {
  ConcurrentUpdateError,
  DuplicateEnvironmentError,
  type EnvironmentStore,
} from '../store/environment-store.js'
import type {
  CliTokenOutput,
  CreateEnvironmentRequest,
  EnvironmentServicePort,
  EnvironmentView,
  InvokeRestApiRequest,
  InvokeRestApiResult,
  UpdateEnvironmentRequest,
  WebLoginTokenOutput,
} from './environment-service-port.js'
import {
  dagSourceProblem,
  inputsNamedBy,
  resolveSourceInputs,
  type InputsToCheck,
} from './source-inputs.js'

/** MWAA's InvokeRestApi limits (reference §1.4): 10 s timeout, 6 MB response. */
export const INVOKE_REST_API_TIMEOUT_MS = 10_000
/** Largest Airflow response InvokeRestApi passes back, in bytes. */
export const INVOKE_REST_API_MAX_RESPONSE_BYTES = 6 * 1024 * 1024

/** Statuses in which UpdateEnvironment is accepted (MWAA: AVAILABLE, UPDATE_FAILED; airdock also lets an UNAVAILABLE environment be fixed). */
const UPDATABLE = new Set(['AVAILABLE', 'UPDATE_FAILED', 'UNAVAILABLE'])

/** MWAA's web session lifetime: 12 h (reference §5 "Web UI login"). */
const WEB_SESSION_SECONDS = 12 * 3600

/** How long a CLI command may run, in ms (then it is killed and its output so far returned). */
const CLI_TIMEOUT_MS = 120_000

/**
 * The Airflow role (SimpleAuthManager's name) for an MWAA role.
 * @throws AccessDeniedError for Public: airdock's Airflow has no role below Viewer
 */
function airflowRoleFor(role: MwaaAirflowRole): AirflowRole {
  const roles: Record<string, AirflowRole> = {
    Admin: 'ADMIN',
    Op: 'OP',
    User: 'USER',
    Viewer: 'VIEWER',
  }
  const mapped = roles[role]
  if (!mapped) {
    throw new AccessDeniedError(
      `The Airflow role ${role} cannot be used here: airdock's Airflow has no role below Viewer; allow Viewer or higher.`,
    )
  }
  return mapped
}

/** MWAA's `IamIdentity`: the resource part of the caller's ARN (`user/alice`). */
function iamIdentityOf(principalArn: string): string {
  return principalArn.slice(principalArn.lastIndexOf(':') + 1)
}

/** Maximum tags per resource (MWAA quota). */
const MAX_TAGS = 50

function statusInput(record: EnvironmentRecord): StatusInput {
  return {
    phase: record.observation.phase,
    generation: record.generation,
    observation: record.observation,
  }
}

/** airdock's extension view of an environment (`airdock status`). */
export interface EnvironmentDescription {
  name: string
  status: string
  /**
   * Why the environment is not healthy (the reconciler's observation), and what is wrong with
   * its DAG source now (a missing bucket or DagS3Path folder), joined by `; `.
   */
  message?: string
  /**
   * Celery workers (all 0 for mw1.micro): `desired` = the autoscaler's count within
   * MinWorkers..MaxWorkers; `actual` = running; `starting`; `draining` = stopped, finishing
   * their tasks (not counted as capacity).
   */
  workers: { desired: number; actual: number; starting: number; draining: number }
  /** Web servers (api-servers): desired (autoscaled) and running. */
  webservers: { desired: number; actual: number }
  /** The autoscaler's last sample; absent until it first looked (and for mw1.micro). */
  scaling?: {
    /** Queued + running task instances. */
    backlog: number
    /** Since when the backlog has been 0 (ISO 8601); absent while busy. */
    idleSince?: string
    /** Mean api-server CPU (% of one core) and open gateway connections. */
    webserverLoad?: { cpuPercent: number; activeConnections: number }
    /** ISO 8601 instant of the sample. */
    sampledAt: string
  }
  components: ComponentStatus[]
  webserverUrl?: string
  /** Folder with the environment's task logs and component logs (`components/`). */
  logsDir: string
  /** The runtime its components run (`<version>-<lock hash>`). */
  runtime?: string
  /** Maintenance waiting for the weekly window, e.g. `runtime patch A → B`. */
  pendingMaintenance?: string
  /** Maintenance under way (status MAINTENANCE). */
  maintenance?: string
  /** An Airflow version change under way: `3.2.1 → 3.3.2 (migrating)`. */
  versionChange?: string
}

/** Options of the service. */
export interface EnvironmentServiceOptions {
  store: EnvironmentStore
  reconciler: EnvironmentReconciler
  region: string
  accountId: string
  componentPortBase: number
  deletedRetentionMs: number
  /** `$AIRDOCK_DATA_DIR/environments`. */
  environmentsDir: string
  /** Issues and redeems web login and CLI tokens. */
  loginTokens: LoginTokens
  /** InvokeRestApi requests allowed per second per environment (MWAA's default: 10). */
  invokeRestApiRatePerSecond: number
  /** Checks that a `KmsKey` exists and can be used. */
  keyRing: Pick<KeyRing, 'validateKeyForUse'>
  /**
   * The buckets environments read (the control plane's object store): checked when a create or
   * update is accepted, and used to resolve omitted `…S3ObjectVersion`s.
   */
  objectStore: ObjectStore
}

/** The environment service (implements the API's port). */
export class EnvironmentService implements EnvironmentServicePort {
  private readonly rateLimiter: RateLimiter

  constructor(private readonly options: EnvironmentServiceOptions) {
    this.rateLimiter = new RateLimiter(options.invokeRestApiRatePerSecond)
  }

  async create(request: CreateEnvironmentRequest): Promise<string> {
    validateMergedSpec(request.spec)
    if (request.spec.kmsKey) {
      try {
        await this.options.keyRing.validateKeyForUse(request.spec.kmsKey)
      } catch (err) {
        if (err instanceof KeyUnavailableError) {
          throw new ValidationError(`KmsKey ${request.spec.kmsKey} cannot be used: ${err.message}`)
        }
        throw err
      }
    }
    const spec = await this.checkSource(request.spec, 'all')
    const { region, accountId } = this.options
    const arn = environmentArn(region, accountId, request.name)
    const now = new Date()
    try {
      await this.options.store.insert({
        name: request.name,
        id: randomBytes(5).toString('hex'),
        arn,
        createdAt: now,
        spec,
        generation: 1,
        tags: request.tags,
        lastUpdateRequest: { createdAt: now, source: 'CreateEnvironment' },
        observation: {
          phase: 'creating',
          observedGeneration: 0,
          healthy: false,
          crashLooping: false,
          progressing: true,
          components: [],
        },
      })
    } catch (err) {
      if (err instanceof DuplicateEnvironmentError) {
        throw new ValidationError(`Environment ${request.name} already exists.`)
      }
      throw err
    }
    this.options.reconciler.enqueue(request.name)
    return arn
  }

  async get(name: string): Promise<EnvironmentView> {
    return this.view(await this.load(name))
  }

  async list(
    maxResults: number,
    nextToken?: string,
  ): Promise<{ names: string[]; nextToken?: string }> {
    let afterSeq: string | undefined
    if (nextToken) {
      afterSeq = Buffer.from(nextToken, 'base64url').toString('utf8')
      if (!/^\d+$/.test(afterSeq)) throw new ValidationError('NextToken is not valid.')
    }
    const page = await this.options.store.listNames(
      afterSeq,
      maxResults,
      this.options.deletedRetentionMs,
    )
    return {
      names: page.names,
      ...(page.lastSeq ? { nextToken: Buffer.from(page.lastSeq).toString('base64url') } : {}),
    }
  }

  async update(request: UpdateEnvironmentRequest): Promise<string> {
    const record = await this.load(request.name)
    const status = deriveEnvironmentStatus(statusInput(record))
    if (!UPDATABLE.has(status)) {
      throw new ValidationError(`Environments with ${status} status cannot be updated.`)
    }
    // After refused inputs the previous spec still runs: the update starts from it (MWAA rolls a
    // failed update back).
    const running = this.runningSpec(record)
    const merged = mergeEnvironmentSpec(running, request.changes)
    const versionRefusal = versionChangeRefusal(running.airflowVersion, merged.airflowVersion)
    if (versionRefusal) throw new ValidationError(versionRefusal)
    const spec = await this.checkSource(merged, inputsNamedBy(request.changes))
    try {
      await this.options.store.updateSpec(
        record.name,
        record.generation,
        spec,
        {
          createdAt: new Date(),
          source: 'UpdateEnvironment',
          // What runs when the request names none: airdock never kills tasks unless asked to.
          workerReplacementStrategy: request.workerReplacementStrategy ?? 'GRACEFUL',
        },
        running,
      )
    } catch (err) {
      if (err instanceof ConcurrentUpdateError) {
        throw new ValidationError(
          `Environment ${record.name} is being changed by another request; try again.`,
        )
      }
      throw err
    }
    this.options.reconciler.enqueue(record.name)
    return record.arn
  }

  /**
   * airdock extension (`airdock validate`): checks an update's requirements.txt, plugins.zip
   * and startup script against the running environment — install, extract, run, and import
   * every plugin and DAG with them — without applying anything.
   * @returns `{Valid: true, Seconds}` or `{Valid: false, ErrorCode, ErrorMessage, Seconds}`
   * @throws ResourceNotFoundError; ValidationError for a bad request or an environment that is
   *   not running yet
   */
  async validateInputs(request: UpdateEnvironmentRequest): Promise<Record<string, unknown>> {
    const record = await this.load(request.name)
    const status = deriveEnvironmentStatus(statusInput(record))
    if (!UPDATABLE.has(status)) {
      throw new ValidationError(`Environments with ${status} status cannot be validated against.`)
    }
    const spec = await this.checkSource(
      mergeEnvironmentSpec(this.runningSpec(record), request.changes),
      inputsNamedBy(request.changes),
    )
    const started = performance.now()
    const seconds = () => Math.round((performance.now() - started) / 100) / 10
    try {
      await this.options.reconciler.validateInputs(record, spec)
      return { Valid: true, Seconds: seconds() }
    } catch (err) {
      if (err instanceof ArtifactError) {
        return { Valid: false, ErrorCode: err.code, ErrorMessage: err.message, Seconds: seconds() }
      }
      throw err
    }
  }

  async delete(name: string): Promise<void> {
    const record = await this.load(name)
    if (record.deletedAt) {
      throw new ValidationError(`Environment ${name} with DELETED status cannot be deleted.`)
    }
    await this.options.store.requestDeletion(name, new Date())
    this.options.reconciler.enqueue(name)
  }

  async tagResource(arn: string, tags: Record<string, string>): Promise<void> {
    const record = await this.loadByArn(arn)
    const merged = { ...record.tags, ...tags }
    if (Object.keys(merged).length > MAX_TAGS) {
      throw new ValidationError(
        `A resource can have at most ${MAX_TAGS} tags; this request would leave ${Object.keys(merged).length}.`,
      )
    }
    await this.options.store.setTags(record.name, merged)
  }

  async untagResource(arn: string, tagKeys: string[]): Promise<void> {
    const record = await this.loadByArn(arn)
    const remaining = Object.fromEntries(
      Object.entries(record.tags).filter(([k]) => !tagKeys.includes(k)),
    )
    await this.options.store.setTags(record.name, remaining)
  }

  async listTags(arn: string): Promise<Record<string, string>> {
    return (await this.loadByArn(arn)).tags
  }

  async invokeRestApi(
    request: InvokeRestApiRequest,
    role: MwaaAirflowRole,
  ): Promise<InvokeRestApiResult> {
    const airflowRole = airflowRoleFor(role)
    if (!this.rateLimiter.take(request.name)) {
      throw new ThrottlingError(
        `Rate exceeded: InvokeRestApi allows ${this.options.invokeRestApiRatePerSecond} requests per second per environment.`,
      )
    }
    const record = await this.load(request.name)
    const status = deriveEnvironmentStatus(statusInput(record))
    const secrets = await this.secretsOf(record)
    if (!secrets || !['AVAILABLE', 'UPDATING', 'UNAVAILABLE', 'UPDATE_FAILED'].includes(status)) {
      throw new ValidationError(
        `Environment ${record.name} is ${status}; InvokeRestApi needs an AVAILABLE environment.`,
      )
    }
    const gatewayPort = environmentPorts(record, this.options.componentPortBase).gateway
    const token = await mintAirflowToken(
      secrets.jwtSecret,
      `mwaa-invoke-rest-api-${role.toLowerCase()}`,
      airflowRole,
      60,
    )
    const url = new URL(`http://127.0.0.1:${gatewayPort}/api/v2${request.path}`)
    if (!url.pathname.startsWith('/api/v2/') && url.pathname !== '/api/v2') {
      throw new ValidationError('Path must stay under the Airflow REST API root (/api/v2).')
    }
    for (const [key, value] of Object.entries(request.queryParameters ?? {})) {
      for (const v of Array.isArray(value) ? value : [value]) {
        url.searchParams.append(key, typeof v === 'string' ? v : JSON.stringify(v))
      }
    }
    let res: Response
    try {
      res = await fetch(url, {
        method: request.method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(request.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: request.body !== undefined ? JSON.stringify(request.body) : undefined,
        signal: AbortSignal.timeout(INVOKE_REST_API_TIMEOUT_MS),
      })
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') {
        throw new RestApiError(504, {
          detail: `Airflow did not answer within ${INVOKE_REST_API_TIMEOUT_MS / 1000} s`,
        })
      }
      throw new InternalServerError('The environment web server could not be reached.')
    }
    const text = await readCapped(res, INVOKE_REST_API_MAX_RESPONSE_BYTES)
    let body: unknown = text
    try {
      body = text.length ? JSON.parse(text) : {}
    } catch {
      // Not JSON: passed back as a string, as Airflow sent it.
    }
    if (res.status >= 400) throw new RestApiError(res.status, body)
    return { restApiStatusCode: res.status, restApiResponse: body }
  }

  /**
   * airdock extension: what MWAA's API has no field for — each component's phase, pid,
   * restarts and health, and the worker count (desired and running).
   */
  async describe(name: string): Promise<EnvironmentDescription> {
    const record = await this.load(name)
    const view = this.view(record)
    const obs = record.observation
    const { components } = obs
    const count = (component: string, phase: string): number =>
      components.filter((c) => c.component === component && c.phase === phase).length
    const { scaling } = record
    // The reconciler already names a missing bucket in the observation (status UNAVAILABLE).
    const source =
      obs.failureCode === 'BUCKET_NOT_FOUND'
        ? undefined
        : await dagSourceProblem(this.options.objectStore, view.record.spec)
    const message = [record.observation.message, source].filter(Boolean).join('; ')
    return {
      name: record.name,
      status: view.status,
      ...(message ? { message } : {}),
      workers: {
        desired: desiredWorkerCount(record.spec, scaling),
        actual: count('worker', 'running'),
        starting: count('worker', 'starting'),
        draining: count('worker', 'stopping'),
      },
      webservers: {
        desired: desiredWebserverCount(record.spec, scaling),
        actual: count('api-server', 'running'),
      },
      ...(scaling
        ? {
            scaling: {
              backlog: scaling.backlog,
              ...(scaling.idleSince ? { idleSince: scaling.idleSince.toISOString() } : {}),
              ...(scaling.webserverLoad ? { webserverLoad: scaling.webserverLoad } : {}),
              sampledAt: scaling.sampledAt.toISOString(),
            },
          }
        : {}),
      components,
      ...(view.webserverUrl ? { webserverUrl: view.webserverUrl } : {}),
      logsDir: path.join(this.options.environmentsDir, record.id, 'logs'),
      ...(obs.runtimeKey ? { runtime: obs.runtimeKey } : {}),
      ...(obs.pendingMaintenance ? { pendingMaintenance: obs.pendingMaintenance } : {}),
      ...(obs.maintenance ? { maintenance: obs.maintenance.description } : {}),
      ...(obs.versionChange
        ? {
            versionChange: `${obs.versionChange.fromVersion} → ${obs.versionChange.toVersion} (${obs.versionChange.step})`,
          }
        : {}),
    }
  }

  async createWebLoginToken(
    name: string,
    role: MwaaAirflowRole,
    principalArn: string,
  ): Promise<WebLoginTokenOutput> {
    airflowRoleFor(role)
    const { record, webserverUrl } = await this.withWebServer(name)
    const iamIdentity = iamIdentityOf(principalArn)
    const airflowIdentity =
      iamIdentity.length <= 64
        ? iamIdentity
        : createHash('sha256').update(iamIdentity).digest('hex').slice(0, 64)
    const token = await this.options.loginTokens.issue({
      kind: 'web-login',
      environment: name,
      environmentId: record.id,
      principal: principalArn,
      role,
      airflowIdentity,
    })
    return {
      WebToken: token,
      WebServerHostname: webserverUrl,
      IamIdentity: iamIdentity,
      AirflowIdentity: airflowIdentity,
    }
  }

  async createCliToken(name: string, principalArn: string): Promise<CliTokenOutput> {
    const { record, webserverUrl } = await this.withWebServer(name)
    const token = await this.options.loginTokens.issue({
      kind: 'cli',
      environment: name,
      environmentId: record.id,
      principal: principalArn,
      role: 'Admin',
      airflowIdentity: iamIdentityOf(principalArn),
    })
    return { CliToken: token, WebServerHostname: webserverUrl }
  }

  /**
   * airdock extension behind the gateway's `/pluginsv2/aws_mwaa/login`: redeems a web login
   * token (once) for an Airflow session token (12 h, MWAA's web session) carrying the role the
   * token was issued for; Airflow enforces that role.
   * @returns the Airflow JWT for the `_token` cookie, the Airflow role, and who it was issued to
   * @throws AccessDeniedError for a bad, expired, reused or foreign token
   */
  async redeemWebLoginToken(
    name: string,
    webToken: string,
  ): Promise<{ airflowToken: string; role: string; principal: string; maxAgeSeconds: number }> {
    const { record, secrets } = await this.withWebServer(name)
    const claims = await this.options.loginTokens.redeem('web-login', webToken, record)
    const role = airflowRoleFor(claims.role as MwaaAirflowRole)
    return {
      airflowToken: await mintAirflowToken(
        secrets.jwtSecret,
        claims.airflowIdentity,
        role,
        WEB_SESSION_SECONDS,
      ),
      role: claims.role,
      principal: claims.principal,
      maxAgeSeconds: WEB_SESSION_SECONDS,
    }
  }

  /**
   * airdock extension behind the gateway's `/aws_mwaa/cli`: checks a CLI token, checks the
   * command against MWAA's allow-list and runs `airflow <argv>` — never through a shell — in the
   * environment's configuration (reference §5 "CLI").
   * @returns MWAA's answer: stdout and stderr, base64; and who the token was issued to
   * @throws AccessDeniedError for a bad token; ValidationError for a refused command
   */
  async runCliCommand(
    name: string,
    cliToken: string,
    commandText: string,
  ): Promise<{ stdout: string; stderr: string; principal: string }> {
    const { record: stored } = await this.withWebServer(name)
    const claims = await this.options.loginTokens.redeem('cli', cliToken, stored)
    // The command runs where the environment runs: the last good spec after a refused update.
    const record = { ...stored, spec: this.runningSpec(stored) }
    let argv: string[]
    try {
      // A body sent from a file ends with a newline; only newlines inside a command are refused.
      argv = parseCliCommand(commandText.trim(), record.spec.airflowVersion)
    } catch (err) {
      if (err instanceof CliCommandRefusedError) throw new ValidationError(err.message)
      throw err
    }
    const result = await this.options.reconciler.runAirflowCli(record, argv, CLI_TIMEOUT_MS)
    return {
      stdout: result.stdout.toString('base64'),
      stderr: result.stderr.toString('base64'),
      principal: claims.principal,
    }
  }

  /**
   * Checks the spec's bucket and inputs and resolves omitted object versions
   * ({@link resolveSourceInputs}).
   * @throws ValidationError naming the bucket, or the input's fields and what exists now
   */
  private checkSource(spec: EnvironmentSpec, check: InputsToCheck): Promise<EnvironmentSpec> {
    return resolveSourceInputs(this.options.objectStore, spec, check)
  }

  /**
   * An environment's secrets.
   * @throws ValidationError naming the KMS key when the key that sealed them is gone
   */
  private async secretsOf(record: EnvironmentRecord): Promise<EnvironmentSecrets | undefined> {
    try {
      return await this.options.reconciler.secretsFor(record)
    } catch (err) {
      if (err instanceof KeyUnavailableError) {
        throw new ValidationError(
          `The secrets of environment ${record.name} cannot be read: ${err.message}`,
        )
      }
      throw err
    }
  }

  /** An environment that has a web server, with its secrets. @throws ValidationError if none */
  private async withWebServer(
    name: string,
  ): Promise<{ record: EnvironmentRecord; webserverUrl: string; secrets: EnvironmentSecrets }> {
    const record = await this.load(name)
    const view = this.view(record)
    const secrets = await this.secretsOf(record)
    if (!view.webserverUrl || !secrets || record.deletionRequestedAt) {
      throw new ValidationError(
        `Environment ${name} has no web server yet (status ${view.status}).`,
      )
    }
    return { record, webserverUrl: view.webserverUrl, secrets }
  }

  /**
   * Loads an environment; a DELETED one past its retention reads as missing (the reconciler,
   * the only writer of that row's end, purges it).
   */
  private async load(name: string): Promise<EnvironmentRecord> {
    const record = await this.options.store.get(name)
    if (!record) throw new ResourceNotFoundError('Environment', name)
    if (
      record.deletedAt &&
      Date.now() - record.deletedAt.getTime() >= this.options.deletedRetentionMs
    ) {
      throw new ResourceNotFoundError('Environment', name)
    }
    return record
  }

  private async loadByArn(arn: string): Promise<EnvironmentRecord> {
    validateEnvironmentArn(arn)
    const name = arn.slice(arn.indexOf(':environment/') + ':environment/'.length)
    const record = await this.options.store.get(name)
    if (!record || record.arn !== arn || record.deletedAt) {
      throw new ResourceNotFoundError('Resource', arn)
    }
    return record
  }

  /**
   * The spec the components run: `lastGoodSpec` while the latest update's inputs are refused
   * (nothing of it was applied), otherwise the spec.
   */
  private runningSpec(record: EnvironmentRecord): EnvironmentSpec {
    return refusedUpdate(record) && record.lastGoodSpec ? record.lastGoodSpec : record.spec
  }

  private view(stored: EnvironmentRecord): EnvironmentView {
    // GetEnvironment shows what runs (MWAA shows a failed update rolled back).
    const record = { ...stored, spec: this.runningSpec(stored) }
    const input = statusInput(record)
    const status = deriveEnvironmentStatus(input)
    const ports = environmentPorts(record, this.options.componentPortBase)
    const live = !record.deletedAt && record.observation.phase !== 'create-failed'
    const celery = !(findEnvironmentClass(record.spec.environmentClass)?.hybrid ?? false)
    return {
      record,
      status,
      lastUpdate: deriveLastUpdate(record.lastUpdateRequest, input, status),
      ...(live ? { webserverUrl: `${webserverHostname(record.id)}:${ports.gateway}` } : {}),
      ...(live && celery
        ? {
            celeryExecutorQueue: `arn:aws:sqs:${this.options.region}:${this.options.accountId}:airflow-celery-${record.id}@127.0.0.1/${ports.broker}`,
          }
        : {}),
    }
  }
}

/** Reads a response body up to `maxBytes`. @throws ValidationError when it is larger */
async function readCapped(res: Response, maxBytes: number): Promise<string> {
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const value of res.body as AsyncIterable<Uint8Array>) {
    size += value.length
    if (size > maxBytes) {
      throw new ValidationError(
        `The Airflow REST API response exceeds the ${maxBytes / 1024 / 1024} MB limit.`,
      )
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}
