/**
 * The control plane's error hierarchy. Each class carries the MWAA error name (`code`, sent as
 * the `x-amzn-ErrorType` header) and its HTTP status, from the botocore MWAA model
 * (`mwaa/2020-07-01/service-2.json`). Anything that is not a `ControlPlaneError` is answered as
 * `InternalServerException` (500) without internals.
 */
export abstract class ControlPlaneError extends Error {
  /** MWAA error shape name, e.g. `ValidationException`. */
  abstract readonly code: string
  /** HTTP status code of that shape. */
  abstract readonly httpStatus: number
  /** Extra members for the JSON body (e.g. `RestApiStatusCode`). */
  readonly extraBody: Record<string, unknown> = {}
}

/** `ValidationException` (400): the request breaks a constraint; the message names the field. */
export class ValidationError extends ControlPlaneError {
  readonly code = 'ValidationException'
  readonly httpStatus = 400
}

/** `ResourceNotFoundException` (404): no such environment or tagged resource. */
export class ResourceNotFoundError extends ControlPlaneError {
  readonly code = 'ResourceNotFoundException'
  readonly httpStatus = 404
  /**
   * @param resource - what was looked up, e.g. `Environment`
   * @param name - the name or ARN that was not found
   */
  constructor(
    readonly resource: string,
    readonly resourceName: string,
  ) {
    super(`${resource} ${resourceName} not found.`)
  }
}

/** `AccessDeniedException` (403). Its body member is `Message` (capital M) in the model. */
export class AccessDeniedError extends ControlPlaneError {
  readonly code = 'AccessDeniedException'
  readonly httpStatus = 403
}

/** `ServiceUnavailableException` (503): the control plane cannot take the request now. */
export class ServiceUnavailableError extends ControlPlaneError {
  readonly code = 'ServiceUnavailableException'
  readonly httpStatus = 503
}

/** `InternalServerException` (500) with a message safe to show the caller. */
export class InternalServerError extends ControlPlaneError {
  readonly code = 'InternalServerException'
  readonly httpStatus = 500
}

/**
 * `RestApiClientException` / `RestApiServerException` (both HTTP 400 in the model): the
 * environment's Airflow REST API answered 4xx / 5xx to InvokeRestApi.
 */
export class RestApiError extends ControlPlaneError {
  readonly code: 'RestApiClientException' | 'RestApiServerException'
  readonly httpStatus = 400
  override readonly extraBody: Record<string, unknown>
  /**
   * @param restApiStatusCode - the HTTP status Airflow answered (400–599)
   * @param restApiResponse - Airflow's JSON body (or a string when it was not JSON)
   */
  constructor(
    readonly restApiStatusCode: number,
    readonly restApiResponse: unknown,
  ) {
    super(`Airflow REST API answered HTTP ${restApiStatusCode}`)
    this.code = restApiStatusCode >= 500 ? 'RestApiServerException' : 'RestApiClientException'
    this.extraBody = { RestApiStatusCode: restApiStatusCode, RestApiResponse: restApiResponse }
  }
}

/** Thrown by a reconcile step when retrying cannot help (bad runtime, invalid spec). */
export class TerminalError extends Error {}

/** Turns anything caught into an `Error` (catch boundaries only). */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value
  return new Error(typeof value === 'string' ? value : JSON.stringify(value))
}

/**
 * `ThrottlingException` (429): the caller exceeded a rate limit (InvokeRestApi: MWAA's default
 * 10 requests per second per environment, reference §1.4). SDKs retry it with backoff.
 */
export class ThrottlingError extends ControlPlaneError {
  readonly code = 'ThrottlingException'
  readonly httpStatus = 429
}
