/** Finds executables on a PATH without a shell. */
import { accessSync, constants } from 'node:fs'
import path from 'node:path'

/**
 * Resolves `name` against the folders of `pathEnv` (colon-separated).
 * @returns the absolute path, or undefined when not found
 */
export function findExecutable(name: string, pathEnv: string): string | undefined {
  if (name.includes('/')) return path.resolve(name)
  for (const dir of pathEnv.split(':')) {
    if (!dir) continue
    const candidate = path.join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // Not in this folder; keep looking.
    }
  }
  return undefined
}
