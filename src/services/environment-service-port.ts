/**
 * What the API layer may ask of the control plane. Handlers validate wire input into these
 * shapes and call these methods; they never start or stop anything themselves
 * (DESIGN.md decision 3: API handlers record intent, the reconciler acts).
 */
import type {
  EnvironmentRecord,
  EnvironmentSpec,
  EnvironmentStatus,
  LastUpdate,
  WorkerReplacementStrategy,
} from '../domain/environment.js'
import type { MwaaAirflowRole } from '../iam/identity-service.js'

/** A validated CreateEnvironment request: the full spec with MWAA defaults filled in. */
export interface CreateEnvironmentRequest {
  name: string
  spec: EnvironmentSpec
  tags: Record<string, string>
}

/**
 * A validated UpdateEnvironment request. `changes` holds only the fields the caller sent;
 * omitted fields keep their current value. Cross-field rules that need the current spec
 * (MinWorkers ≤ MaxWorkers after merging, …) are checked by the service.
 */
export interface UpdateEnvironmentRequest {
  name: string
  changes: Partial<EnvironmentSpec>
  workerReplacementStrategy?: WorkerReplacementStrategy
}

/** An environment as the API shows it: the record plus its derived MWAA status. */
export interface EnvironmentView {
  record: EnvironmentRecord
  status: EnvironmentStatus
  /** MWAA `LastUpdate`, derived from the last request and what the reconciler observed. */
  lastUpdate: LastUpdate
  /** `host:port` of the environment's gateway, once it has one. */
  webserverUrl?: string
  /** Broker address in ARN form (Celery classes only). */
  celeryExecutorQueue?: string
}

/** One InvokeRestApi call, validated. */
export interface InvokeRestApiRequest {
  name: string
  /** Path relative to `/api/v2`, starting with `/`. */
  path: string
  method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
  queryParameters?: Record<string, unknown>
  body?: unknown
}

/** What Airflow answered (2xx only; 4xx/5xx are thrown as `RestApiError`). */
/** CreateWebLoginToken's output (wire shape). */
export interface WebLoginTokenOutput {
  WebToken: string
  WebServerHostname: string
  IamIdentity: string
  AirflowIdentity: string
}

/** CreateCliToken's output (wire shape). */
export interface CliTokenOutput {
  CliToken: string
  WebServerHostname: string
}

export interface InvokeRestApiResult {
  restApiStatusCode: number
  restApiResponse: unknown
}

/**
 * The environment service. Every method throws `ControlPlaneError` subclasses
 * (`ValidationError`, `ResourceNotFoundError`, …) for the caller's mistakes; a failed call
 * changes nothing.
 */
export interface EnvironmentServicePort {
  /** Records a new environment (status CREATING). @returns its ARN. */
  create(request: CreateEnvironmentRequest): Promise<string>
  /** @throws ResourceNotFoundError when no such environment (or it was purged after DELETED) */
  get(name: string): Promise<EnvironmentView>
  /**
   * Lists environment names in creation order.
   * @param maxResults - 1..25 (validated by the API)
   * @param nextToken - opaque token from a previous page
   */
  list(maxResults: number, nextToken?: string): Promise<{ names: string[]; nextToken?: string }>
  /** Records an update (status UPDATING). @returns the ARN. */
  update(request: UpdateEnvironmentRequest): Promise<string>
  /** Records a deletion (status DELETING). */
  delete(name: string): Promise<void>
  /** @param arn - an environment ARN; @throws ResourceNotFoundError */
  tagResource(arn: string, tags: Record<string, string>): Promise<void>
  untagResource(arn: string, tagKeys: string[]): Promise<void>
  listTags(arn: string): Promise<Record<string, string>>
  /**
   * Calls the environment's Airflow REST API with the Airflow role the caller's policy grants
   * (MWAA: the highest role allowed on `role/{Name}/{Role}`).
   * @throws RestApiError on 4xx/5xx; ThrottlingError past the per-environment rate;
   *   AccessDeniedError for the Public role (airdock's Airflow has no such role)
   */
  invokeRestApi(request: InvokeRestApiRequest, role: MwaaAirflowRole): Promise<InvokeRestApiResult>
  /**
   * CreateWebLoginToken: a 60 s single-use token that signs a browser into the environment's
   * Airflow UI with `role` (reference §1.4, §5).
   * @param principalArn - the caller (becomes `IamIdentity` and the Airflow user name)
   * @throws ResourceNotFoundError; ValidationError when the environment has no web server;
   *   AccessDeniedError for the Public role
   */
  createWebLoginToken(
    name: string,
    role: MwaaAirflowRole,
    principalArn: string,
  ): Promise<WebLoginTokenOutput>
  /**
   * CreateCliToken: a 60 s token for `POST https://{WebServerHostname}/aws_mwaa/cli`.
   * @throws ResourceNotFoundError; ValidationError when the environment has no web server
   */
  createCliToken(name: string, principalArn: string): Promise<CliTokenOutput>
}
