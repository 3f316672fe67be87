import { describe, expect, it } from 'vitest'
import {
  AccessDeniedError,
  InternalServerError,
  ResourceNotFoundError,
  RestApiError,
  ServiceUnavailableError,
  ValidationError,
} from '../domain/errors.js'
import { INTERNAL_ERROR_MESSAGE, toErrorResponse } from './error-mapper.js'

const RID = 'req-1'

describe('toErrorResponse', () => {
  it.each([
    [new ValidationError('bad MaxWorkers'), 400, 'ValidationException', 'bad MaxWorkers'],
    [
      new ResourceNotFoundError('Environment', 'Nope'),
      404,
      'ResourceNotFoundException',
      'Environment Nope not found.',
    ],
    [new ServiceUnavailableError('busy'), 503, 'ServiceUnavailableException', 'busy'],
    [new InternalServerError('safe text'), 500, 'InternalServerException', 'safe text'],
  ])('maps %o to its status, type header and {message}', (err, status, type, message) => {
    expect(toErrorResponse(err, RID)).toEqual({
      status,
      headers: {
        'content-type': 'application/json',
        'x-amzn-ErrorType': type,
        'x-amzn-RequestId': RID,
      },
      body: { message },
    })
  })

  it('uses {Message} for AccessDeniedException, as the model does', () => {
    const response = toErrorResponse(new AccessDeniedError('no role'), RID)
    expect(response.status).toBe(403)
    expect(response.headers['x-amzn-ErrorType']).toBe('AccessDeniedException')
    expect(response.body).toEqual({ Message: 'no role' })
  })

  it('adds the Airflow status and response to RestApi exceptions', () => {
    const client = toErrorResponse(new RestApiError(404, { detail: 'DAG not found' }), RID)
    expect(client.status).toBe(400)
    expect(client.headers['x-amzn-ErrorType']).toBe('RestApiClientException')
    expect(client.body).toEqual({
      RestApiStatusCode: 404,
      RestApiResponse: { detail: 'DAG not found' },
      message: 'Airflow REST API answered HTTP 404',
    })
    const server = toErrorResponse(new RestApiError(503, 'down'), RID)
    expect(server.status).toBe(400)
    expect(server.headers['x-amzn-ErrorType']).toBe('RestApiServerException')
    expect(server.body).toMatchObject({ RestApiStatusCode: 503, RestApiResponse: 'down' })
  })

  it.each([
    [new Error('password=hunter2 at db.ts:12')],
    ['a string'],
    [undefined],
    [{ code: 'X' }],
  ])('answers anything else with a generic 500 (%o)', (err) => {
    const response = toErrorResponse(err, RID)
    expect(response).toEqual({
      status: 500,
      headers: {
        'content-type': 'application/json',
        'x-amzn-ErrorType': 'InternalServerException',
        'x-amzn-RequestId': RID,
      },
      body: { message: INTERNAL_ERROR_MESSAGE },
    })
    expect(JSON.stringify(response)).not.toContain('hunter2')
  })
})
