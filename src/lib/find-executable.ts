/**
 * Finds executables without a shell: first among the tools `make setup` installs inside the
 * project (`.tools/<name>/bin/<name>`, e.g. uv in its own virtual environment `.tools/uv`),
 * then on a PATH.
 */
import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The project's tools folder (`<repository>/.tools`), where `make setup` installs uv. */
export const PROJECT_TOOLS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../.tools',
)

/** Whether `file` exists and is executable. */
function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    // Missing or not executable.
    return false
  }
}

/**
 * Resolves `name`: a name with a `/` is a path (resolved, not checked); a bare name is looked
 * up first as the project's own tool `<toolsDir>/<name>/bin/<name>`, then in the folders of
 * `pathEnv` (colon-separated), in order.
 * @param toolsDir - the project's tools folder (default {@link PROJECT_TOOLS_DIR}; tests)
 * @returns the absolute path, or undefined when not found
 */
export function findExecutable(
  name: string,
  pathEnv: string,
  toolsDir: string = PROJECT_TOOLS_DIR,
): string | undefined {
  if (name.includes('/')) return path.resolve(name)
  const projectTool = path.join(toolsDir, name, 'bin', name)
  if (isExecutable(projectTool)) return projectTool
  for (const dir of pathEnv.split(':')) {
    if (!dir) continue
    const candidate = path.join(dir, name)
    if (isExecutable(candidate)) return candidate
  }
  return undefined
}
