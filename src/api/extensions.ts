/**
 * airdock's API extensions (things MWAA lacks), under `/airdock/v1/`. They are additive and
 * never change an MWAA shape (DESIGN.md decision 2). Errors use the MWAA error shape.
 *
 *   GET /airdock/v1/environments/{Name}            components, phases, restarts, workers
 *   GET /airdock/v1/environments/{Name}/web-login  Airflow UI link and credentials
 *
 * Until access control lands these, like the whole API, are served on 127.0.0.1 only.
 */
import type { Hono } from 'hono'
import type { ApiEnv } from './app.js'
import type { EnvironmentService } from '../services/environment-service.js'
import { validateEnvironmentName } from '../domain/validation.js'

/** Adds the extension routes to the API app. */
export function registerExtensions(app: Hono<ApiEnv>, service: EnvironmentService): void {
  app.get('/airdock/v1/environments/:name', async (c) => {
    const name = c.req.param('name')
    validateEnvironmentName(name)
    return c.json(await service.describe(name))
  })
  app.get('/airdock/v1/environments/:name/web-login', async (c) => {
    const name = c.req.param('name')
    validateEnvironmentName(name)
    return c.json(await service.webLogin(name))
  })
}
