/**
 * Identities of the control plane (issue 4): users with IAM-style inline policies and their
 * access keys, request authentication (AWS Signature Version 4, signing name `airflow`) and
 * authorization (IAM's evaluation logic: explicit Deny wins, default deny).
 *
 * First start creates the administrator `admin` (policy `AdministratorAccess`: `*` on `*`) and
 * writes its access key to `$AIRDOCK_DATA_DIR/credentials` (AWS shared-credentials format,
 * profile `airdock`, mode 0600) — DESIGN.md "Contracts". Secret access keys are stored sealed by
 * the key ring, never in the clear.
 */
import { randomBytes, randomInt } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import {
  AccessDeniedError,
  ControlPlaneError,
  ResourceNotFoundError,
  ValidationError,
} from '../domain/errors.js'
import * as arns from '../domain/arns.js'
import type { Logger } from '../observability/logger.js'
import { AlreadyExistsError, type AccessStore, type StoredUser } from '../store/access-store.js'
import {
  evaluatePolicies,
  highestAllowedAirflowRole,
  parsePolicyDocument,
  PolicyDocumentError,
  type AirflowRole,
  type PolicyDocument,
} from './policy.js'
import { httpStatusForSigV4Error, SigV4Error, verifySigV4, type SignedRequest } from './sigv4.js'

/** Seals and opens secrets (the key ring; the master key for control-plane secrets). */
export interface Sealer {
  sealJson(value: unknown): Promise<string>
  openJson<T>(sealed: string): Promise<T>
}

/** An authenticated caller. */
export interface Principal {
  userName: string
  /** `arn:aws:iam::{account}:user/{name}`. */
  arn: string
  accessKeyId: string
  policies: PolicyDocument[]
}

/**
 * An Airflow role as MWAA names it in IAM (`Admin`, `Op`, `User`, `Viewer`, `Public`; reference
 * §5 "Web UI login"), as opposed to SimpleAuthManager's names (`airflow/tokens.ts`).
 */
export type MwaaAirflowRole = AirflowRole

/** A user as the API shows it. */
export interface UserView {
  UserName: string
  Arn: string
  CreateDate: number
  Policies: Record<string, unknown>
}

/**
 * A failed signature check (HTTP 403) carrying the error name AWS gives for the case
 * (`MissingAuthenticationTokenException`, `InvalidSignatureException`,
 * `UnrecognizedClientException`, `IncompleteSignatureException`), as AWS's rest-json services do.
 */
export class AuthenticationError extends ControlPlaneError {
  readonly code: string
  readonly httpStatus: number
  constructor(err: SigV4Error) {
    super(err.message)
    this.httpStatus = httpStatusForSigV4Error(err.code)
    this.code = err.code.endsWith('Exception') ? err.code : `${err.code}Exception`
  }
}

/** Name of the administrator created on first start. */
const ADMIN_USER_NAME = 'admin'

/** The administrator's policy: every action on every resource. */
export const ADMINISTRATOR_POLICY = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
} as const

/** User names: IAM's pattern `[\w+=,.@-]{1,64}`. */
const USER_NAME = /^[\w+=,.@-]{1,64}$/
/** Policy names: IAM's pattern `[\w+=,.@-]{1,128}`. */
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/
/** How long a decrypted secret key stays cached, in ms (a deleted key stops working at once). */
const SECRET_CACHE_MS = 10_000

/** What {@link IdentityService} needs. */
export interface IdentityServiceOptions {
  store: AccessStore
  sealer: Sealer
  region: string
  accountId: string
  /** `$AIRDOCK_DATA_DIR/credentials`. */
  credentialsFile: string
  logger: Logger
  /** Clock (tests). */
  now?: () => Date
}

/** Users, keys, policies; authentication and authorization of API requests. */
export class IdentityService {
  private readonly secrets = new Map<string, { secret: string; userName: string; at: number }>()
  /** Users with their parsed policies, by name (read and parsed once per SECRET_CACHE_MS). */
  private readonly users = new Map<
    string,
    { name: string; arn: string; policies: PolicyDocument[]; at: number }
  >()

  constructor(private readonly options: IdentityServiceOptions) {}

  /**
   * First start: creates the administrator and writes its key to the credentials file. Does
   * nothing when any user exists.
   */
  async bootstrap(): Promise<void> {
    if ((await this.options.store.countUsers()) > 0) return
    await this.createUser(ADMIN_USER_NAME)
    await this.putUserPolicy(ADMIN_USER_NAME, 'AdministratorAccess', ADMINISTRATOR_POLICY)
    const key = await this.createAccessKey(ADMIN_USER_NAME)
    const text = [
      '# airdock administrator (created on first start). Use with:',
      `#   AWS_SHARED_CREDENTIALS_FILE=${this.options.credentialsFile} AWS_PROFILE=airdock`,
      '[airdock]',
      `aws_access_key_id = ${key.AccessKeyId}`,
      `aws_secret_access_key = ${key.SecretAccessKey}`,
      `region = ${this.options.region}`,
      '',
    ].join('\n')
    await writeFile(this.options.credentialsFile, text, { mode: 0o600 })
    this.options.logger.info(
      { credentialsFile: this.options.credentialsFile, accessKeyId: key.AccessKeyId },
      'administrator created',
    )
  }

  /**
   * Authenticates a SigV4-signed request.
   * @throws AuthenticationError (403, AWS's code) when unsigned, badly signed, expired or the key
   *   is unknown
   */
  async authenticate(request: SignedRequest): Promise<Principal> {
    let accessKeyId: string
    try {
      ;({ accessKeyId } = await verifySigV4(request, {
        region: this.options.region,
        service: 'airflow',
        now: this.now(),
        lookupSecret: async (id) => (await this.secretFor(id))?.secret,
      }))
    } catch (err) {
      if (err instanceof SigV4Error) throw new AuthenticationError(err)
      throw err
    }
    const cached = await this.secretFor(accessKeyId)
    const user = cached && (await this.userFor(cached.userName))
    if (!user) {
      throw new AuthenticationError(
        new SigV4Error(
          'UnrecognizedClientException',
          'The security token included in the request is invalid.',
        ),
      )
    }
    return { userName: user.name, arn: user.arn, accessKeyId, policies: user.policies }
  }

  /**
   * Authorizes `action` on `resource` for `principal`.
   * @throws AccessDeniedError with AWS's message when not allowed (explicit or implicit deny)
   */
  authorize(principal: Principal, action: string, resource: string): void {
    const decision = evaluatePolicies(principal.policies, { action, resource })
    if (decision === 'Allow') return
    const how =
      decision === 'ExplicitDeny'
        ? 'with an explicit deny'
        : 'because no identity-based policy allows the'
    throw new AccessDeniedError(
      `User: ${principal.arn} is not authorized to perform: ${action} on resource: ${resource} ${how}${decision === 'ExplicitDeny' ? '' : ` ${action} action`}`,
    )
  }

  /**
   * The highest Airflow role the principal may use for `action` on environment `name`
   * (resource `arn:aws:airflow:{region}:{account}:role/{name}/{Role}`, MWAA's rule).
   * @throws AccessDeniedError when no role is allowed
   */
  highestRole(principal: Principal, action: string, name: string): MwaaAirflowRole {
    const role = highestAllowedAirflowRole(principal.policies, action, (r) =>
      this.airflowRoleArn(name, r),
    )
    if (!role) {
      throw new AccessDeniedError(
        `User: ${principal.arn} is not authorized to perform: ${action} on resource: ${this.airflowRoleArn(name, '*')}`,
      )
    }
    return role
  }

  /** `arn:aws:airflow:{region}:{account}:role/{name}/{role}`. */
  airflowRoleArn(name: string, role: string): string {
    return arns.airflowRoleArn(this.options.region, this.options.accountId, name, role)
  }

  /** `arn:aws:iam::{account}:user/{name}`. */
  userArn(name: string): string {
    return arns.iamUserArn(this.options.accountId, name)
  }

  /**
   * Creates a user without policies.
   * @throws ValidationError for a bad name or when it exists
   */
  async createUser(name: string): Promise<UserView> {
    validateName('UserName', name, USER_NAME, 64)
    try {
      await this.options.store.insertUser(name, this.userArn(name), {})
    } catch (err) {
      if (err instanceof AlreadyExistsError) throw new ValidationError(err.message)
      throw err
    }
    return userView((await this.options.store.getUser(name))!)
  }

  /** @throws ResourceNotFoundError */
  async getUser(name: string): Promise<UserView> {
    return userView(await this.loadUser(name))
  }

  /** Every user. */
  async listUsers(): Promise<UserView[]> {
    return (await this.options.store.listUsers()).map(userView)
  }

  /**
   * Deletes a user and its keys (they stop working at once). Refuses to delete the last
   * administrator (a user allowed `airdock:CreateUser` on `*`), which would lock everyone out.
   * @throws ResourceNotFoundError; ValidationError when it would leave no administrator
   */
  async deleteUser(name: string): Promise<void> {
    validateName('UserName', name, USER_NAME, 64)
    const users = await this.options.store.listUsers()
    const target = users.find((u) => u.name === name)
    if (!target) throw new ResourceNotFoundError('User', name)
    if (isAdministrator(target) && users.filter(isAdministrator).length === 1) {
      throw new ValidationError(`User ${name} is the last administrator and cannot be deleted.`)
    }
    await this.options.store.deleteUser(name)
    for (const [id, entry] of this.secrets) if (entry.userName === name) this.secrets.delete(id)
    this.users.delete(name)
  }

  /**
   * Sets an inline policy.
   * @throws ValidationError for a bad name or document (the message names the member);
   *   ResourceNotFoundError for an unknown user
   */
  async putUserPolicy(name: string, policyName: string, document: unknown): Promise<void> {
    validateName('UserName', name, USER_NAME, 64)
    validateName('PolicyName', policyName, POLICY_NAME, 128)
    try {
      parsePolicyDocument(document)
    } catch (err) {
      if (err instanceof PolicyDocumentError) {
        throw new ValidationError(`PolicyDocument is not valid: ${err.message}`)
      }
      throw err
    }
    if (!(await this.options.store.setUserPolicy(name, policyName, document))) {
      throw new ResourceNotFoundError('User', name)
    }
    this.users.delete(name)
  }

  /** Removes an inline policy. @throws ResourceNotFoundError */
  async deleteUserPolicy(name: string, policyName: string): Promise<void> {
    validateName('UserName', name, USER_NAME, 64)
    validateName('PolicyName', policyName, POLICY_NAME, 128)
    const user = await this.loadUser(name)
    if (!(policyName in user.policies)) throw new ResourceNotFoundError('Policy', policyName)
    await this.options.store.setUserPolicy(name, policyName, undefined)
    this.users.delete(name)
  }

  /**
   * Creates an access key; the secret is returned only here.
   * @throws ResourceNotFoundError for an unknown user
   */
  async createAccessKey(name: string): Promise<{
    UserName: string
    AccessKeyId: string
    SecretAccessKey: string
    CreateDate: number
  }> {
    await this.loadUser(name)
    const accessKeyId = newAccessKeyId()
    const secret = randomBytes(30)
      .toString('base64')
      .replace(/[+/]/g, (c) => (c === '+' ? 'x' : 'Z'))
    const stored = await this.options.store.insertAccessKey({
      accessKeyId,
      userName: name,
      secretSealed: await this.options.sealer.sealJson(secret),
    })
    return {
      UserName: name,
      AccessKeyId: accessKeyId,
      SecretAccessKey: secret,
      CreateDate: stored.createdAt.getTime() / 1000,
    }
  }

  /** A user's access keys (without secrets). @throws ResourceNotFoundError */
  async listAccessKeys(
    name: string,
  ): Promise<{ UserName: string; AccessKeyId: string; CreateDate: number }[]> {
    await this.loadUser(name)
    return (await this.options.store.listAccessKeys(name)).map((k) => ({
      UserName: k.userName,
      AccessKeyId: k.accessKeyId,
      CreateDate: k.createdAt.getTime() / 1000,
    }))
  }

  /** Deletes an access key; it stops working at once. @throws ResourceNotFoundError */
  async deleteAccessKey(accessKeyId: string): Promise<void> {
    if (!/^[A-Z0-9]{16,128}$/.test(accessKeyId)) {
      throw new ValidationError(`AccessKeyId '${accessKeyId.slice(0, 128)}' is not valid.`)
    }
    this.secrets.delete(accessKeyId)
    if (!(await this.options.store.deleteAccessKey(accessKeyId))) {
      throw new ResourceNotFoundError('AccessKey', accessKeyId)
    }
  }

  private async loadUser(name: string): Promise<StoredUser> {
    validateName('UserName', name, USER_NAME, 64)
    const user = await this.options.store.getUser(name)
    if (!user) throw new ResourceNotFoundError('User', name)
    return user
  }

  private async secretFor(
    accessKeyId: string,
  ): Promise<{ secret: string; userName: string } | undefined> {
    const cached = this.secrets.get(accessKeyId)
    if (cached && Date.now() - cached.at < SECRET_CACHE_MS) return cached
    const key = await this.options.store.getAccessKey(accessKeyId)
    if (!key) {
      this.secrets.delete(accessKeyId)
      return undefined
    }
    const entry = {
      secret: await this.options.sealer.openJson<string>(key.secretSealed),
      userName: key.userName,
      at: Date.now(),
    }
    this.secrets.set(accessKeyId, entry)
    return entry
  }

  /** A user with its policies parsed, cached like secrets (changes here drop the entry). */
  private async userFor(
    name: string,
  ): Promise<{ name: string; arn: string; policies: PolicyDocument[] } | undefined> {
    const cached = this.users.get(name)
    if (cached && Date.now() - cached.at < SECRET_CACHE_MS) return cached
    const user = await this.options.store.getUser(name)
    if (!user) {
      this.users.delete(name)
      return undefined
    }
    const entry = {
      name: user.name,
      arn: user.arn,
      policies: Object.values(user.policies).map((doc) => parsePolicyDocument(doc)),
      at: Date.now(),
    }
    this.users.set(name, entry)
    return entry
  }

  private now(): Date {
    return this.options.now?.() ?? new Date()
  }
}

function isAdministrator(user: StoredUser): boolean {
  const policies = Object.values(user.policies).map((doc) => parsePolicyDocument(doc))
  return evaluatePolicies(policies, { action: 'airdock:CreateUser', resource: '*' }) === 'Allow'
}

function userView(user: StoredUser): UserView {
  return {
    UserName: user.name,
    Arn: user.arn,
    CreateDate: user.createdAt.getTime() / 1000,
    Policies: user.policies,
  }
}

/** @throws ValidationError naming `field` */
function validateName(field: string, value: string, pattern: RegExp, max: number): void {
  if (!pattern.test(value)) {
    throw new ValidationError(
      `1 validation error detected: Value '${value.slice(0, 200)}' at '${field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and ${max}`,
    )
  }
}

/** `AKIA` + 16 characters of IAM's access key alphabet (A–Z, 2–7). */
function newAccessKeyId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let id = 'AKIA'
  for (let i = 0; i < 16; i++) id += alphabet[randomInt(alphabet.length)]
  return id
}
