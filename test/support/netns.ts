/**
 * Throwaway test hosts made with `ip netns` and a veth pair, for tests that check which network
 * an endpoint is reachable from. Each test network is a fresh network namespace joined to the
 * root namespace by a point-to-point veth link on a random private /30 inside 10.213.0.0/16. The
 * namespace gets no default route, so traffic from it can only reach the two ends of that link
 * (and its own loopback). Requires root and iproute2 (`make setup`).
 */
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

/** Outcome of one HTTP request made from inside a test namespace. */
export type NamespaceFetchResult =
  | { ok: true; status: number; body: string }
  | {
      ok: false
      /**
       * Why the request failed, prefixed with the error code when there is one, e.g.
       * `ECONNREFUSED: connect ECONNREFUSED 10.213.4.1:41234` or `TimeoutError: ...`.
       */
      error: string
    }

/** A network namespace joined to the root namespace by a veth pair. */
export interface TestNetwork {
  /** Name of the network namespace, `airdock-t-<random hex>`. */
  namespace: string
  /** Name of the veth end in the root namespace (≤ 15 characters). */
  hostInterface: string
  /** Name of the veth end inside the namespace (≤ 15 characters). */
  namespaceInterface: string
  /**
   * Address of the root-namespace end of the link: what a "public address" setting would bind
   * so that the namespace (a stand-in for another host) can reach it.
   */
  hostAddress: string
  /** Address of the namespace end of the link. */
  namespaceAddress: string
  /** Prefix length of the link's subnet (always 30). */
  prefixLength: number
  /**
   * GETs `url` from inside the namespace, running `ip netns exec <namespace> <node> -e <script>`
   * with this process's Node executable; the URL is passed as an argument, never through a
   * shell. Never throws for network errors: they come back as `{ ok: false, error }`.
   * @param url - absolute http(s) URL
   * @param timeoutMs - how long the request may take before it counts as a timeout (default 5000)
   */
  fetchFromNamespace(url: string, timeoutMs?: number): Promise<NamespaceFetchResult>
  /** Deletes the host-side veth (which removes its peer) and the namespace; idempotent. */
  destroy(): Promise<void>
}

/** Error raised when a test network cannot be created (no root, no `ip`, no netns support). */
export class TestNetworkError extends Error {}

/** Prefix of every namespace name this module creates. */
export const testNamespacePrefix = 'airdock-t-'

/** The /16 inside which each test network's /30 is picked. */
export const testNetworkPool = { base: '10.213.0.0', prefixLength: 16 } as const

const linkPrefixLength = 30

/** Networks created by this process and not destroyed yet, for the exit-time safety net. */
const liveNetworks = new Map<string, { destroySync(): void }>()
let exitHookInstalled = false

/**
 * Creates a fresh test network: a namespace named `airdock-t-<random>`, a veth pair with one end
 * in the root namespace and its peer inside the namespace, addresses from a random /30 within
 * 10.213.0.0/16 that overlaps no address or route already on the host, and `lo` plus both veth
 * ends up. The network is also removed (synchronously) when the Node process exits, should the
 * caller never get to call `destroy()`.
 * @throws TestNetworkError - not root, `ip` missing, or the kernel refuses to create it
 */
export async function createTestNetwork(): Promise<TestNetwork> {
  assertCanCreateNetworks()
  // A retry only happens when a concurrent process took an overlapping subnet meanwhile.
  for (let attempt = 0; attempt < 5; attempt++) {
    const network = await tryCreate()
    if (network !== undefined) return network
  }
  throw new TestNetworkError(
    `could not claim a free /30 in ${testNetworkPool.base}/${testNetworkPool.prefixLength} after 5 attempts`,
  )
}

/**
 * One attempt: picks a subnet, creates everything, and returns undefined (after cleaning up) when
 * another interface turned out to hold an overlapping address by the time ours was assigned.
 */
async function tryCreate(): Promise<TestNetwork | undefined> {
  const id = randomBytes(4).toString('hex')
  const namespace = `${testNamespacePrefix}${id}`
  const hostInterface = `adt${id}h`
  const namespaceInterface = `adt${id}n`
  const subnet = await pickFreeSubnet()
  const hostAddress = intToIp(subnet + 1)
  const namespaceAddress = intToIp(subnet + 2)

  // `removed` turns true only once teardown has succeeded; until then the exit hook retries it.
  let removed = false
  let destroying: Promise<void> | undefined
  const destroySync = (): void => {
    if (removed) return
    removed = true
    liveNetworks.delete(namespace)
    for (const args of teardownCommands(namespace, hostInterface)) {
      try {
        execFileSync('ip', args, { stdio: 'ignore', timeout: 10_000 })
      } catch {
        // Already gone, or nothing more can be done while exiting.
      }
    }
  }
  const destroy = (): Promise<void> => {
    destroying ??= teardown(namespace, hostInterface).then(
      () => {
        removed = true
        liveNetworks.delete(namespace)
      },
      (err: unknown) => {
        destroying = undefined // let a later call try again
        throw err
      },
    )
    return destroying
  }
  liveNetworks.set(namespace, { destroySync })
  installExitHook()

  try {
    await ip(['netns', 'add', namespace])
    await ip([
      'link',
      'add',
      hostInterface,
      'type',
      'veth',
      'peer',
      'name',
      namespaceInterface,
      'netns',
      namespace,
    ])
    await ip(['addr', 'add', `${hostAddress}/${linkPrefixLength}`, 'dev', hostInterface])
    await ip(['link', 'set', hostInterface, 'up'])
    const inNamespace = ['-n', namespace]
    await ip([...inNamespace, 'link', 'set', 'lo', 'up'])
    await ip([
      ...inNamespace,
      'addr',
      'add',
      `${namespaceAddress}/${linkPrefixLength}`,
      'dev',
      namespaceInterface,
    ])
    await ip([...inNamespace, 'link', 'set', namespaceInterface, 'up'])
  } catch (err) {
    await destroy().catch(() => undefined)
    throw new TestNetworkError(`could not create test network ${namespace}: ${errorText(err)}`, {
      cause: err,
    })
  }

  // Another process may have taken an overlapping subnet between our check and our assignment.
  const others = (await hostAddresses()).filter((a) => a.device !== hostInterface)
  if (others.some((a) => overlaps(a.network, a.prefixLength, subnet, linkPrefixLength))) {
    await destroy()
    return undefined
  }

  return {
    namespace,
    hostInterface,
    namespaceInterface,
    hostAddress,
    namespaceAddress,
    prefixLength: linkPrefixLength,
    fetchFromNamespace: (url, timeoutMs = 5000) => fetchInNamespace(namespace, url, timeoutMs),
    destroy,
  }
}

/** Throws a TestNetworkError naming the fix when this process cannot manage namespaces. */
function assertCanCreateNetworks(): void {
  if (process.platform !== 'linux') {
    throw new TestNetworkError('test networks need Linux network namespaces')
  }
  if (process.getuid?.() !== 0) {
    throw new TestNetworkError('test networks need root (ip netns add / ip link add)')
  }
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore', timeout: 10_000 })
  } catch (err) {
    throw new TestNetworkError(
      `the ip command (iproute2) is not available: ${errorText(err)} (run make setup)`,
      { cause: err },
    )
  }
}

/** Installs (once) the `exit` listener that removes networks nobody destroyed. */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const network of [...liveNetworks.values()]) network.destroySync()
  })
}

/** `ip` argument lists that remove a test network; each tolerates the object being gone. */
function teardownCommands(namespace: string, hostInterface: string): string[][] {
  return [
    ['link', 'del', hostInterface],
    ['netns', 'del', namespace],
  ]
}

/** Removes the veth and the namespace, then checks that both are gone. */
async function teardown(namespace: string, hostInterface: string): Promise<void> {
  const failures: string[] = []
  for (const args of teardownCommands(namespace, hostInterface)) {
    try {
      await ip(args)
    } catch (err) {
      failures.push(`ip ${args.join(' ')}: ${errorText(err)}`)
    }
  }
  const stillThere: string[] = []
  if (await linkExists(hostInterface)) stillThere.push(`interface ${hostInterface}`)
  if ((await listNamespaces()).includes(namespace)) stillThere.push(`namespace ${namespace}`)
  if (stillThere.length > 0) {
    throw new TestNetworkError(
      `could not remove ${stillThere.join(' and ')}: ${failures.join('; ') || 'unknown reason'}`,
    )
  }
}

/** Names of the network namespaces `ip netns list` shows. */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await ip(['netns', 'list'])
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '')
}

/** Whether a network interface of that name exists in the root namespace. */
export async function linkExists(name: string): Promise<boolean> {
  const { stdout } = await ip(['-o', 'link', 'show'])
  return stdout
    .split('\n')
    .some((line) => (line.split(':')[1]?.trim().split('@')[0] ?? '') === name)
}

/** Runs `ip <args>` (no shell) and returns its output; rejects on a non-zero exit. */
async function ip(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync('ip', args, { timeout: 30_000, maxBuffer: 4 * 1024 * 1024 })
}

/** Script run by the namespace's Node: GET argv[1] with a timeout of argv[2] ms, print JSON. */
const fetchScript = `
const [url, timeoutText] = process.argv.slice(1)
const write = (result) => process.stdout.write(JSON.stringify(result))
fetch(url, { signal: AbortSignal.timeout(Number(timeoutText)) })
  .then(async (response) => write({ ok: true, status: response.status, body: await response.text() }))
  .catch((err) => {
    const cause = err && err.cause
    const code = (cause && cause.code) || (err && err.name) || 'Error'
    const message = (cause && cause.message) || (err && err.message) || String(err)
    write({ ok: false, error: code + ': ' + message })
  })
`

/** Runs the fetch script inside `namespace` and parses what it printed. */
async function fetchInNamespace(
  namespace: string,
  url: string,
  timeoutMs: number,
): Promise<NamespaceFetchResult> {
  let stdout: string
  try {
    ;({ stdout } = await execFileAsync(
      'ip',
      ['netns', 'exec', namespace, process.execPath, '-e', fetchScript, url, String(timeoutMs)],
      {
        timeout: timeoutMs + 15_000,
        maxBuffer: 16 * 1024 * 1024,
        // A minimal environment: no NODE_OPTIONS loaders from the test runner, no proxies.
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' },
      },
    ))
  } catch (err) {
    return { ok: false, error: `could not run node in namespace ${namespace}: ${errorText(err)}` }
  }
  try {
    const parsed = JSON.parse(stdout) as NamespaceFetchResult
    return parsed
  } catch {
    return { ok: false, error: `unexpected output from node in ${namespace}: ${stdout}` }
  }
}

/** An IPv4 network on the host: an interface address or a route destination. */
interface HostNetwork {
  network: number
  prefixLength: number
  device?: string
}

/** Picks a random /30 in the pool that overlaps no host address or route. */
async function pickFreeSubnet(): Promise<number> {
  const taken = [...(await hostAddresses()), ...(await hostRoutes())]
  const poolBase = ipToInt(testNetworkPool.base)
  const slots = 2 ** (linkPrefixLength - testNetworkPool.prefixLength)
  for (let attempt = 0; attempt < 1000; attempt++) {
    // Skip the first and last /30 of the pool (network/broadcast-looking addresses).
    const subnet = poolBase + randomInt(1, slots - 1) * 4
    if (!taken.some((t) => overlaps(t.network, t.prefixLength, subnet, linkPrefixLength))) {
      return subnet
    }
  }
  throw new TestNetworkError(
    `no free /30 left in ${testNetworkPool.base}/${testNetworkPool.prefixLength}`,
  )
}

/** IPv4 addresses on root-namespace interfaces (`ip -4 -o addr show`), as their subnets. */
async function hostAddresses(): Promise<HostNetwork[]> {
  const { stdout } = await ip(['-4', '-o', 'addr', 'show'])
  const result: HostNetwork[] = []
  for (const line of stdout.split('\n')) {
    const match = /^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?/.exec(line)
    if (match === null) continue
    const prefixLength = Number(match[3] ?? 32)
    result.push({
      device: match[1] ?? '',
      network: (ipToInt(match[2] ?? '') & mask(prefixLength)) >>> 0,
      prefixLength,
    })
  }
  return result
}

/** Destinations of IPv4 routes in all tables except default routes. */
async function hostRoutes(): Promise<HostNetwork[]> {
  const { stdout } = await ip(['-4', '-o', 'route', 'show', 'table', 'all'])
  const routeTypes = new Set([
    'unicast',
    'local',
    'broadcast',
    'multicast',
    'throw',
    'unreachable',
    'prohibit',
    'blackhole',
    'nat',
    'anycast',
  ])
  const result: HostNetwork[] = []
  for (const line of stdout.split('\n')) {
    const tokens = line.trim().split(/\s+/)
    const destination = routeTypes.has(tokens[0] ?? '') ? tokens[1] : tokens[0]
    const match = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/.exec(destination ?? '')
    if (match === null) continue // `default` or an empty line
    const prefixLength = Number(match[2] ?? 32)
    if (prefixLength === 0) continue
    result.push({ network: (ipToInt(match[1] ?? '') & mask(prefixLength)) >>> 0, prefixLength })
  }
  return result
}

/** Whether two IPv4 CIDR blocks share any address. */
function overlaps(a: number, aLength: number, b: number, bLength: number): boolean {
  const shorter = mask(Math.min(aLength, bLength))
  return (a & shorter) >>> 0 === (b & shorter) >>> 0
}

/** Netmask for a prefix length, as an unsigned 32-bit integer. */
function mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0
}

/** Dotted quad → unsigned 32-bit integer. */
function ipToInt(address: string): number {
  return address.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0)
}

/** Unsigned 32-bit integer → dotted quad. */
function intToIp(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.')
}

/** A one-line description of a child-process or other error. */
function errorText(err: unknown): string {
  const e = err as { stderr?: string; message?: string }
  const stderr = typeof e.stderr === 'string' ? e.stderr.trim() : ''
  return stderr || e.message || String(err)
}
