/**
 * The gateway as its own process: one per environment, run by the driver as the environment's
 * `gateway-1` component, so `WebserverUrl` and the Execution API stay reachable while the
 * control plane restarts (the driver adopts it like every other component).
 *
 *   node --import tsx src/gateway/gateway-main.ts --host 127.0.0.1 [--host 10.0.0.5] \
 *     --port 18000 --upstreams /…/environments/<id>/gateway-upstreams.json \
 *     --control-plane http://127.0.0.1:8780 --environment NAME
 *
 * The upstreams file holds `[{ "host": "127.0.0.1", "port": 18002 }, …]`; the reconciler
 * rewrites it (atomically) when the set of running api-servers changes, and this process
 * re-reads it every 500 ms. SIGTERM closes the listener and exits.
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { createLogger } from '../observability/logger.js'
import { Gateway, type Upstream } from './gateway.js'

const { values } = parseArgs({
  options: {
    host: { type: 'string', multiple: true, default: ['127.0.0.1'] },
    port: { type: 'string' },
    upstreams: { type: 'string' },
    'control-plane': { type: 'string' },
    environment: { type: 'string' },
  },
})
if (!values.port || !values.upstreams) {
  process.stderr.write(
    'usage: gateway-main --host H [--host H2] --port P --upstreams FILE [--control-plane URL --environment NAME]\n',
  )
  process.exit(2)
}
const upstreamsFile = values.upstreams
const log = createLogger('info')
const controlPlaneUrl = values['control-plane']
const gateway = await Gateway.start({
  hosts: values.host,
  port: Number(values.port),
  logger: log,
  ...(controlPlaneUrl && values.environment
    ? { tokenCheck: { controlPlaneUrl, environment: values.environment } }
    : {}),
})
log.info({ hosts: values.host, port: gateway.port }, 'gateway listening')

let current = ''
async function reload(): Promise<void> {
  try {
    const text = await readFile(upstreamsFile, 'utf8')
    if (text === current) return
    const upstreams = JSON.parse(text) as Upstream[]
    gateway.setUpstreams(upstreams)
    current = text
    log.info({ upstreams }, 'upstreams changed')
  } catch (err) {
    // Missing or half-written file: keep the current upstreams and try again next tick.
    log.debug({ err }, 'upstreams file not readable')
  }
}
await reload()
const timer = setInterval(() => void reload(), 500)

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    clearInterval(timer)
    void gateway.close().then(() => process.exit(0))
  })
}
