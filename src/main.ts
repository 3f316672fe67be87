/**
 * `npm start`: runs the control plane in the foreground. The first SIGINT/SIGTERM stops it
 * gracefully (environments keep running and are adopted by the next start unless
 * `AIRDOCK_STOP_ON_EXIT=true`); a second one exits at once.
 */
import { loadSettings, SettingsError } from './config/settings.js'
import { MissingProgramError, startControlPlane } from './control-plane.js'
import { FailpointSettingError } from './lib/failpoints.js'
import { ControlPlaneRunningError } from './platform/control-plane-pid.js'
import { PortInUseError } from './platform/installation.js'

let controlPlane: Awaited<ReturnType<typeof startControlPlane>>
try {
  controlPlane = await startControlPlane(loadSettings())
} catch (err) {
  // Errors a person can act on are one line (and exit status 2), never a stack trace.
  if (
    err instanceof SettingsError ||
    err instanceof MissingProgramError ||
    err instanceof PortInUseError ||
    err instanceof ControlPlaneRunningError ||
    err instanceof FailpointSettingError
  ) {
    process.stderr.write(`airdock: ${err.message}\n`)
    process.exit(2)
  }
  throw err
}
let signals = 0
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signals++
    if (signals > 1) process.exit(1)
    controlPlane
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        controlPlane.logger.error({ err }, 'shutdown failed')
        process.exit(1)
      })
  })
}
