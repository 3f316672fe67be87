/**
 * IAM-style JSON policy documents: parsing and evaluation, as AWS IAM does for identity-based
 * policies (what a caller may do on MWAA, and which Airflow role CreateWebLoginToken /
 * InvokeRestApi maps it to).
 *
 * Sources for the rules below (AWS IAM User Guide):
 * - "IAM JSON policy element reference" (Version, Id, Statement, Sid, Effect, Action / NotAction,
 *   Resource / NotResource);
 * - "Policy evaluation logic" (an explicit Deny wins over any Allow; no applicable Allow is an
 *   implicit deny);
 * - "IAM JSON policy elements: Action" (action names are case-insensitive, `*` and `?` wildcards);
 * - "IAM JSON policy elements: Resource" (ARNs are case-sensitive; `*` and `?` match within the
 *   colon-separated segments of an ARN, and a `*` that ends a segment may match beyond it);
 * - MWAA "Accessing an Amazon MWAA environment" (the Airflow role resource
 *   `arn:aws:airflow:{region}:{account}:role/{EnvName}/{AirflowRole}`).
 *
 * Not supported, refused when parsing: `Condition` (no condition keys are evaluated), `Principal`
 * / `NotPrincipal` (identity-based policies have none) and policy variables (`${aws:username}`)
 * in a Version 2012-10-17 document.
 */
import { z } from 'zod'

/** The policy language versions IAM accepts (`Version`); absent means 2008-10-17. */
export type PolicyVersion = '2012-10-17' | '2008-10-17'

/** A statement's `Effect`. */
export type PolicyEffect = 'Allow' | 'Deny'

/**
 * One statement, normalised: `Action` / `NotAction` / `Resource` / `NotResource` are always
 * arrays (IAM accepts a single string or a list; both mean the same). Exactly one of `Action` and
 * `NotAction`, and exactly one of `Resource` and `NotResource`, is present.
 */
export type PolicyStatement = {
  Sid?: string
  Effect: PolicyEffect
} & ({ Action: string[]; NotAction?: undefined } | { NotAction: string[]; Action?: undefined }) &
  (
    | { Resource: string[]; NotResource?: undefined }
    | { NotResource: string[]; Resource?: undefined }
  )

/** A parsed policy document: `Statement` is always an array (IAM accepts one object or a list). */
export interface PolicyDocument {
  Version?: PolicyVersion
  Id?: string
  Statement: PolicyStatement[]
}

/**
 * Thrown by {@link parsePolicyDocument} for a document IAM would refuse (MalformedPolicyDocument)
 * or one that uses a feature airdock does not evaluate. `message` is the first problem, naming
 * the offending member (e.g. `Statement[1].Effect must be "Allow" or "Deny"`); `problems` lists
 * every problem found.
 */
export class PolicyDocumentError extends Error {
  override readonly name = 'PolicyDocumentError'
  constructor(readonly problems: readonly string[]) {
    super(problems[0] ?? 'policy document is not valid')
  }
}

/**
 * The Airflow roles MWAA maps IAM permissions to, most privileged first (the five Flask AppBuilder
 * default roles; custom Airflow roles cannot be granted through IAM).
 */
export const AIRFLOW_ROLES = ['Admin', 'Op', 'User', 'Viewer', 'Public'] as const

/** One of {@link AIRFLOW_ROLES}. */
export type AirflowRole = (typeof AIRFLOW_ROLES)[number]

/** The result of evaluating a request against a set of policies (IAM's three outcomes). */
export type PolicyDecision = 'Allow' | 'ExplicitDeny' | 'ImplicitDeny'

/** A request to authorise: an IAM action (`service:Action`) on one resource ARN (or `*`). */
export interface PolicyRequest {
  action: string
  resource: string
}

const STATEMENT_MEMBERS = ['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource']
const DOCUMENT_MEMBERS = ['Version', 'Id', 'Statement']

// IAM: an action is `*` or `<service prefix>:<action name>`; the name may hold wildcards.
const ACTION_PATTERN = /^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$/
// IAM: a resource is `*` or an ARN, `arn:partition:service:region:account-id:resource`.
const RESOURCE_PATTERN = /^(\*|arn:[^:]*:[^:]*:[^:]*:[^:]*:.+)$/

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** A string or a list of strings, normalised to a non-empty list whose items pass `check`. */
const stringList = (check: (value: string) => string | undefined) =>
  z.preprocess(
    (v) => (typeof v === 'string' ? [v] : v),
    z
      .array(
        z.string({ error: 'must be a string' }).superRefine((value, ctx) => {
          const problem = check(value)
          if (problem) ctx.addIssue({ code: 'custom', message: problem })
        }),
        { error: 'must be a string or an array of strings' },
      )
      .min(1, { error: 'must not be empty' }),
  )

const checkAction = (value: string): string | undefined =>
  ACTION_PATTERN.test(value)
    ? undefined
    : `${JSON.stringify(value)} must be "*" or "service:action" (e.g. "airflow:GetEnvironment")`

const checkResource = (value: string): string | undefined =>
  RESOURCE_PATTERN.test(value)
    ? undefined
    : `${JSON.stringify(value)} must be "*" or an ARN (arn:partition:service:region:account-id:resource)`

const statementSchema = z
  .looseObject(
    {
      Sid: z.string({ error: 'must be a string' }).optional(),
      Effect: z.enum(['Allow', 'Deny'], { error: 'must be "Allow" or "Deny"' }),
      Action: stringList(checkAction).optional(),
      NotAction: stringList(checkAction).optional(),
      Resource: stringList(checkResource).optional(),
      NotResource: stringList(checkResource).optional(),
    },
    { error: 'must be an object' },
  )
  .superRefine((s, ctx) => {
    for (const key of Object.keys(s)) {
      if (STATEMENT_MEMBERS.includes(key)) continue
      const message =
        key === 'Condition'
          ? 'is not supported (airdock evaluates policies without conditions)'
          : key === 'Principal' || key === 'NotPrincipal'
            ? 'is not supported (identity-based policies name no principal)'
            : `is not a statement member (expected ${STATEMENT_MEMBERS.join(', ')})`
      ctx.addIssue({ code: 'custom', path: [key], message })
    }
    const pairs = [
      ['Action', 'NotAction'],
      ['Resource', 'NotResource'],
    ] as const
    for (const [plain, not] of pairs) {
      if (s[plain] !== undefined && s[not] !== undefined) {
        ctx.addIssue({ code: 'custom', message: `must not have both ${plain} and ${not}` })
      } else if (s[plain] === undefined && s[not] === undefined) {
        ctx.addIssue({ code: 'custom', message: `must have ${plain} or ${not}` })
      }
    }
  })

const documentSchema = z
  .looseObject(
    {
      Version: z
        .enum(['2012-10-17', '2008-10-17'], { error: 'must be "2012-10-17" or "2008-10-17"' })
        .optional(),
      Id: z.string({ error: 'must be a string' }).optional(),
      Statement: z.preprocess(
        (v) => (isPlainObject(v) ? [v] : v),
        z
          .array(statementSchema, {
            error: (issue) =>
              issue.input === undefined
                ? 'is required'
                : 'must be an object or an array of objects',
          })
          .min(1, { error: 'must contain at least one statement' }),
      ),
    },
    { error: 'must be a JSON object' },
  )
  .superRefine((d, ctx) => {
    for (const key of Object.keys(d)) {
      if (DOCUMENT_MEMBERS.includes(key)) continue
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `is not a policy document member (expected ${DOCUMENT_MEMBERS.join(', ')})`,
      })
    }
    // Version 2012-10-17 substitutes policy variables in Resource; airdock does not, so a
    // document that relies on them is refused rather than matched literally.
    if (d.Version !== '2012-10-17') return
    d.Statement.forEach((s, i) => {
      for (const member of ['Resource', 'NotResource'] as const) {
        s[member]?.forEach((value, j) => {
          if (value.includes('${')) {
            ctx.addIssue({
              code: 'custom',
              path: ['Statement', i, member, j],
              message: `${JSON.stringify(value)} uses a policy variable, which is not supported`,
            })
          }
        })
      }
    })
  })

/**
 * Renders an issue path as IAM names members, e.g. `Statement[1].Action[0]`. Where the input held
 * a single value that parsing wrapped in a list (`"Statement": {...}`, `"Action": "x"`), the
 * index is dropped so the path names what the author wrote.
 */
function formatPath(path: readonly PropertyKey[], input: unknown): string {
  let out = ''
  let node: unknown = input
  for (const segment of path) {
    if (typeof segment === 'number') {
      if (!Array.isArray(node)) continue
      out += `[${segment}]`
      node = (node as unknown[])[segment]
    } else {
      const key = String(segment)
      out += out ? `.${key}` : key
      node = isPlainObject(node) ? node[key] : undefined
    }
  }
  return out
}

/**
 * Validates an IAM JSON policy document and returns it normalised (single values become lists).
 *
 * @param json the document: a parsed JSON value, or a JSON string (as IAM stores policies)
 * @returns the document with `Statement`, `Action` / `NotAction`, `Resource` / `NotResource` as
 *   arrays
 * @throws PolicyDocumentError when the document is not one IAM accepts: `Version` other than
 *   "2012-10-17" / "2008-10-17"; `Statement` missing or empty; a statement without a valid
 *   `Effect`; without exactly one of `Action` / `NotAction` or of `Resource` / `NotResource`; an
 *   action not `*` or `service:action`; a resource not `*` or an ARN; an unknown member. Also
 *   when it uses what airdock does not evaluate: `Condition`, `Principal` / `NotPrincipal`, or
 *   policy variables under Version 2012-10-17.
 */
export function parsePolicyDocument(json: unknown): PolicyDocument {
  let input = json
  if (typeof json === 'string') {
    try {
      input = JSON.parse(json) as unknown
    } catch (err) {
      throw new PolicyDocumentError([`policy document is not valid JSON: ${String(err)}`])
    }
  }
  const result = documentSchema.safeParse(input)
  if (!result.success) {
    throw new PolicyDocumentError(
      result.error.issues.map((issue) => {
        const where = formatPath(issue.path, input)
        return `${where || 'policy document'} ${issue.message}`
      }),
    )
  }
  const { Version, Id, Statement } = result.data
  return {
    ...(Version !== undefined && { Version }),
    ...(Id !== undefined && { Id }),
    Statement: Statement.map(
      ({ Sid, Effect, Action, NotAction, Resource, NotResource }) =>
        ({
          ...(Sid !== undefined && { Sid }),
          Effect,
          ...(Action ? { Action } : { NotAction }),
          ...(Resource ? { Resource } : { NotResource }),
        }) as PolicyStatement,
    ),
  }
}

/** One element of a compiled wildcard pattern. `crossesColon`: may match a `:`. */
type Token =
  | { kind: 'literal'; char: string }
  | { kind: 'one'; crossesColon: boolean }
  | { kind: 'star'; crossesColon: boolean }

/** Action patterns: `*` any run, `?` any one character, matched on lower-cased text. */
function compileAction(pattern: string): Token[] {
  return Array.from(pattern.toLowerCase(), (char): Token => {
    if (char === '*') return { kind: 'star', crossesColon: true }
    if (char === '?') return { kind: 'one', crossesColon: true }
    return { kind: 'literal', char }
  })
}

/**
 * Resource patterns: `*` and `?` match within one colon-separated ARN segment, except that a `*`
 * ending a segment (followed by `:` or the end) may match across colons (IAM User Guide,
 * "Using wildcards in resource ARNs").
 */
function compileResource(pattern: string): Token[] {
  const chars = Array.from(pattern)
  return chars.map((char, i): Token => {
    if (char === '*') {
      const next = chars[i + 1]
      return { kind: 'star', crossesColon: next === undefined || next === ':' }
    }
    if (char === '?') return { kind: 'one', crossesColon: false }
    return { kind: 'literal', char }
  })
}

/** Wildcard match by dynamic programming: O(pattern × text), no backtracking blow-up. */
function matchTokens(tokens: readonly Token[], text: string): boolean {
  const chars = Array.from(text)
  const n = chars.length
  let prev = new Uint8Array(n + 1)
  prev[0] = 1
  for (const token of tokens) {
    const cur = new Uint8Array(n + 1)
    if (token.kind === 'star') {
      cur[0] = prev[0]!
      for (let j = 1; j <= n; j++) {
        cur[j] = prev[j] || (cur[j - 1] && (token.crossesColon || chars[j - 1] !== ':')) ? 1 : 0
      }
    } else {
      for (let j = 1; j <= n; j++) {
        const c = chars[j - 1]!
        const ok = token.kind === 'literal' ? c === token.char : token.crossesColon || c !== ':'
        cur[j] = prev[j - 1] && ok ? 1 : 0
      }
    }
    prev = cur
  }
  return prev[n] === 1
}

const actionMatches = (pattern: string, action: string): boolean =>
  matchTokens(compileAction(pattern), action.toLowerCase())

const resourceMatches = (pattern: string, resource: string): boolean =>
  matchTokens(compileResource(pattern), resource)

/** Whether a statement applies to the request (its Action and Resource parts both match). */
function statementApplies(s: PolicyStatement, request: PolicyRequest): boolean {
  const actionHit = s.Action
    ? s.Action.some((p) => actionMatches(p, request.action))
    : !s.NotAction.some((p) => actionMatches(p, request.action))
  if (!actionHit) return false
  return s.Resource
    ? s.Resource.some((p) => resourceMatches(p, request.resource))
    : !s.NotResource.some((p) => resourceMatches(p, request.resource))
}

/**
 * Evaluates a request against identity-based policies with IAM's logic ("Policy evaluation
 * logic"): any applicable Deny statement → `ExplicitDeny`; otherwise any applicable Allow →
 * `Allow`; otherwise `ImplicitDeny`.
 *
 * A statement applies when its action part and its resource part both match. `Action` matches
 * when any pattern matches; `NotAction` when none does (so `Allow` + `NotAction` grants
 * everything else, and `Deny` + `NotAction` denies everything else). `Resource` / `NotResource`
 * likewise. Actions compare case-insensitively; resources case-sensitively; both take `*` and `?`.
 *
 * @param policies parsed documents (see {@link parsePolicyDocument})
 * @param request the IAM action (e.g. `airflow:GetEnvironment`) and the resource ARN
 * @returns the decision; only `Allow` permits the request
 */
export function evaluatePolicies(
  policies: readonly PolicyDocument[],
  request: PolicyRequest,
): PolicyDecision {
  let allowed = false
  for (const policy of policies) {
    for (const statement of policy.Statement) {
      if (!statementApplies(statement, request)) continue
      if (statement.Effect === 'Deny') return 'ExplicitDeny'
      allowed = true
    }
  }
  return allowed ? 'Allow' : 'ImplicitDeny'
}

/**
 * The most privileged Airflow role the policies allow `action` on, as MWAA maps
 * `airflow:CreateWebLoginToken` and `airflow:InvokeRestApi` to an Airflow role: the resource of
 * each role is `arn:aws:airflow:{region}:{account}:role/{EnvName}/{AirflowRole}`, and roles are
 * tried from Admin down to Public (an explicit Deny on one role only skips that role).
 *
 * @param policies parsed documents of the caller
 * @param action the IAM action, e.g. `airflow:CreateWebLoginToken`
 * @param roleArn builds the role resource ARN for the environment in question
 * @returns the first allowed of Admin, Op, User, Viewer, Public; `undefined` when none is (MWAA
 *   then answers AccessDeniedException)
 */
export function highestAllowedAirflowRole(
  policies: readonly PolicyDocument[],
  action: string,
  roleArn: (role: AirflowRole) => string,
): AirflowRole | undefined {
  return AIRFLOW_ROLES.find(
    (role) => evaluatePolicies(policies, { action, resource: roleArn(role) }) === 'Allow',
  )
}
