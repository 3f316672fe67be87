/**
 * `plugins.zip` (issue 5, reference §9): extracted with its root as the environment's plugins
 * folder. Every entry is checked before anything is written: absolute paths, `..` segments,
 * backslashes, NUL, symbolic links and device files are refused (zip-slip), as are archives
 * over MWAA's recommended 1 GB uncompressed or with more than 100 000 entries. Reading uses
 * `yauzl`, which also refuses malformed archives.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream, existsSync } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import yauzl from 'yauzl'
import { unsafePathReason } from '../storage/object-store.js'

/** Largest total uncompressed size, in bytes (MWAA recommends < 1 GB). */
const MAX_PLUGINS_BYTES = 1024 * 1024 * 1024
/** Most entries an archive may have. */
const MAX_PLUGINS_ENTRIES = 100_000

/** A `plugins.zip` that cannot be used; the message names the entry and the reason. */
export class PluginsArchiveError extends Error {}

/** One entry of the archive, as read from its central directory. */
interface Entry {
  name: string
  directory: boolean
  uncompressedSize: number
}

/**
 * The reason an entry name may not be extracted, or undefined when it is safe.
 * @param name - the entry's name as stored in the archive (`/`-separated)
 */
function unsafeEntryReason(name: string, externalAttributes: number): string | undefined {
  const mode = (externalAttributes >>> 16) & 0o170000
  if (mode === 0o120000) return 'is a symbolic link'
  if (mode !== 0 && mode !== 0o100000 && mode !== 0o040000) return 'is not a regular file'
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'is an absolute path'
  const relative = name.endsWith('/') ? name.slice(0, -1) : name
  return relative === '' ? 'has an empty name' : unsafePathReason(relative)
}

/**
 * Extracts `zip` into `targetDir` (created; kept if another extraction finished it first) after
 * checking every entry.
 * Written to a temporary sibling first and renamed, so a half-extracted folder is never used.
 * @returns the number of files written
 * @throws PluginsArchiveError for an unsafe entry, a malformed archive, or one over the limits
 */
export async function extractPluginsArchive(zip: Buffer, targetDir: string): Promise<number> {
  const archive = await openZip(zip)
  try {
    const entries = await readEntries(archive)
    const work = `${targetDir}.extracting-${process.pid}-${randomBytes(4).toString('hex')}`
    await rm(work, { recursive: true, force: true })
    await mkdir(work, { recursive: true })
    try {
      let files = 0
      for (const { entry, info } of entries) {
        const destination = path.join(work, ...info.name.split('/').filter(Boolean))
        if (info.directory) {
          await mkdir(destination, { recursive: true })
          continue
        }
        await mkdir(path.dirname(destination), { recursive: true })
        const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
          archive.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s))),
        )
        await pipeline(stream, createWriteStream(destination, { mode: 0o644 }))
        files++
      }
      // Folders are named after the archive's content: one already there is this archive.
      if (!existsSync(targetDir)) await rename(work, targetDir)
      return files
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  } catch (err) {
    if (err instanceof PluginsArchiveError) throw err
    throw new PluginsArchiveError(`plugins.zip could not be read: ${(err as Error).message}`)
  } finally {
    archive.close()
  }
}

function openZip(zip: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.fromBuffer(zip, { lazyEntries: true, strictFileNames: true }, (err, archive) =>
      err
        ? reject(new PluginsArchiveError(`plugins.zip is not a valid zip archive: ${err.message}`))
        : resolve(archive),
    ),
  )
}

/** Reads and checks the whole central directory before anything is extracted. */
function readEntries(archive: yauzl.ZipFile): Promise<{ entry: yauzl.Entry; info: Entry }[]> {
  return new Promise((resolve, reject) => {
    const entries: { entry: yauzl.Entry; info: Entry }[] = []
    let total = 0
    archive.on('entry', (entry: yauzl.Entry) => {
      const name = entry.fileName
      const reason = unsafeEntryReason(name, entry.externalFileAttributes)
      if (reason) {
        archive.close()
        reject(
          new PluginsArchiveError(`plugins.zip entry '${name}' ${reason}; nothing was extracted.`),
        )
        return
      }
      total += entry.uncompressedSize
      if (entries.length >= MAX_PLUGINS_ENTRIES || total > MAX_PLUGINS_BYTES) {
        archive.close()
        reject(
          new PluginsArchiveError(
            `plugins.zip is larger than ${MAX_PLUGINS_ENTRIES} entries or ${MAX_PLUGINS_BYTES / 1024 ** 3} GB uncompressed.`,
          ),
        )
        return
      }
      entries.push({
        entry,
        info: { name, directory: name.endsWith('/'), uncompressedSize: entry.uncompressedSize },
      })
      archive.readEntry()
    })
    archive.on('end', () => resolve(entries))
    // yauzl checks names itself (and refuses them before we see the entry).
    archive.on('error', (err: Error) => {
      const refused =
        /^(invalid relative path|absolute path|invalid characters in fileName): (.*)$/.exec(
          err.message,
        )
      reject(
        refused
          ? new PluginsArchiveError(
              `plugins.zip entry '${refused[2]}' ${refused[1] === 'invalid relative path' ? 'escapes the plugins folder' : refused[1] === 'absolute path' ? 'is an absolute path' : 'has characters a file name cannot have'}; nothing was extracted.`,
            )
          : err,
      )
    })
    archive.readEntry()
  })
}
