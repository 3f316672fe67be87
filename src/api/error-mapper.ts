/**
 * Turns anything a handler throws into an MWAA rest-json error response (reference §0, "Error
 * shapes"): HTTP status from the error trait, `x-amzn-ErrorType: <ShapeName>`, and a JSON body
 * whose message member is `message` — except `AccessDeniedException`, whose member is `Message`
 * in the model. SDKs pick the exception class from `x-amzn-ErrorType`.
 */
import { ControlPlaneError } from '../domain/errors.js'

/** An error response ready to send. */
export interface ErrorResponse {
  /** HTTP status code. */
  status: number
  /** `x-amzn-ErrorType`, `x-amzn-RequestId` and `content-type`. */
  headers: Record<string, string>
  /** JSON body. */
  body: Record<string, unknown>
}

/** Message sent for anything that is not a `ControlPlaneError` (no internals leak). */
export const INTERNAL_ERROR_MESSAGE = 'An internal error occurred. Try again later.'

/**
 * Maps an error to its MWAA response.
 * - `ControlPlaneError`: its `httpStatus`, `code` and message; `extraBody` members are added
 *   (`RestApiStatusCode` and `RestApiResponse` for `RestApiClientException` /
 *   `RestApiServerException`).
 * - anything else: 500 `InternalServerException` with {@link INTERNAL_ERROR_MESSAGE}.
 * @param err - whatever was thrown
 * @param requestId - the request's id, echoed in `x-amzn-RequestId`
 */
export function toErrorResponse(err: unknown, requestId: string): ErrorResponse {
  const known = err instanceof ControlPlaneError
  const code = known ? err.code : 'InternalServerException'
  const status = known ? err.httpStatus : 500
  const message = known ? err.message : INTERNAL_ERROR_MESSAGE
  const messageMember = code === 'AccessDeniedException' ? 'Message' : 'message'
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'x-amzn-ErrorType': code,
      'x-amzn-RequestId': requestId,
    },
    body: { ...(known ? err.extraBody : {}), [messageMember]: message },
  }
}
