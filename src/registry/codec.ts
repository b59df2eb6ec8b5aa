// Codecs for the znodes of the fixed data model (docs/znodes.md): `/targets/<name>` and
// `/cacheAge`. Pure functions, no I/O: the watcher feeds them bytes and a znode name and gets
// back either a target or a reason it can log once per version.
import { parseRoute, type Route } from '../routes.js'

/** What a `/targets/<name>` znode holds (the JSON form). */
export interface TargetData {
  url: string
  requests: number
  revision?: string
  startedAt?: string
  /** `HOST[/PATH-PREFIX]` as given by `--route`; absent (or empty): the default pool. */
  routes?: readonly string[]
  /**
   * The target serves from `/` what its routes' path prefixes name: proxies remove the matched
   * prefix from the path they forward to it (`--strip-prefix`). Absent: false.
   */
  stripPrefix?: boolean
  /**
   * The requests each proxy (by its id) has added to `requests`, so a proxy's write states its
   * absolute total and is idempotent: a retried write after an unknown outcome adds nothing
   * twice, and a node re-created from a stale copy is topped up by the proxies that know more.
   */
  countedBy?: Record<string, number>
}

/**
 * A decoded target: the znode's data plus its name and the origin requests go to, with its
 * routes parsed (duplicates by canonical key dropped); absent when it declares none.
 */
export type DecodedTarget = Omit<TargetData, 'routes'> & { name: string, origin: string, routes?: readonly Route[] }

export type DecodeTargetResult =
  | { ok: true, target: DecodedTarget }
  | { ok: false, reason: string }

/**
 * Target data is a few hundred bytes; the cap keeps a misbehaving writer (ZooKeeper allows
 * up to 1 MB per znode) from making every proxy parse megabytes on each watch event.
 */
export const MAX_TARGET_DATA_BYTES = 64 * 1024

/** A revision is a git commit or a timestamp; anything longer is not one. */
export const MAX_REVISION_BYTES = 1024

/** Routes per target: a replica serves a few apps at most; this bounds every proxy's work. */
export const MAX_ROUTES_PER_TARGET = 256

/** Like a file name: most file systems and tools stop at 255. */
export const MAX_TARGET_NAME_LENGTH = 255

// `fatal` so that bytes that are not UTF-8 are reported instead of silently becoming U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true })

// The bare-integer form written by other tools (docs/znodes.md): digits only, no sign, no exponent.
const DECIMAL_INTEGER = /^[0-9]+$/

// `host:port` or `[ipv6]:port`; the URL parser below has the final word on the host.
const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/

/**
 * Why `name` cannot be a target znode name, or undefined when it can.
 * The character rules are ZooKeeper's own (`PathUtils.validatePath`), checked here so a bad
 * `--name` fails with a clear message instead of a `-8 bad arguments` from the server, plus
 * no whitespace because names end up in logs, metrics labels and `x-served-by`.
 */
export function validateTargetName (name: string): string | undefined {
  if (name.length === 0) return 'target name is empty'
  if (name.includes('/')) return `target name ${JSON.stringify(name)} contains '/'`
  if (name === '.' || name === '..') return `target name ${JSON.stringify(name)} is reserved by ZooKeeper`
  // Code points, not UTF-16 units, so the limit means what a reader counts.
  if ([...name].length > MAX_TARGET_NAME_LENGTH) {
    return `target name is longer than ${MAX_TARGET_NAME_LENGTH} characters`
  }
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    // Ranges rejected by ZooKeeper work on UTF-16 units: it refuses every surrogate, so even a
    // well-formed emoji is not a valid znode name.
    const forbidden = c <= 0x20 || (c >= 0x7f && c <= 0x9f) ||
      (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0 ||
      c === 0x00a0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200f) ||
      (c >= 0x2028 && c <= 0x202f) || c === 0x205f || c === 0x3000 || c === 0xfeff
    if (forbidden) {
      return `target name ${JSON.stringify(name)} contains a non-printable or whitespace character at index ${i}`
    }
  }
  return undefined
}

/**
 * The default target name for a replica listening on `host:port`: an IPv6 literal goes in
 * brackets so the name still parses as a URL authority (`[::1]:4000`).
 */
export function defaultTargetName (host: string, port: number): string {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`)
  }
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return `${bracketed}:${port}`
}

/**
 * Decodes the data of `/targets/<name>`. Never throws: a bad znode must cost one warning,
 * never the proxy, so every problem comes back as a reason.
 */
export function decodeTarget (name: string, data: Buffer | null): DecodeTargetResult {
  const nameProblem = validateTargetName(name)
  if (nameProblem !== undefined) return fail(nameProblem)
  if (data === null || data.length === 0) return fail(`target ${name}: data is empty`)
  if (data.length > MAX_TARGET_DATA_BYTES) {
    return fail(`target ${name}: data is ${data.length} bytes, over the ${MAX_TARGET_DATA_BYTES} byte limit`)
  }

  let text: string
  try {
    text = utf8.decode(data).trim()
  } catch {
    return fail(`target ${name}: data is not valid UTF-8`)
  }

  if (DECIMAL_INTEGER.test(text)) return decodeBareCount(name, text)

  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return fail(`target ${name}: data is neither JSON nor a decimal integer (${(err as Error).message})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(`target ${name}: data must be a JSON object or a bare decimal integer`)
  }
  return decodeJsonTarget(name, value as Record<string, unknown>)
}

function decodeJsonTarget (name: string, json: Record<string, unknown>): DecodeTargetResult {
  const { url, requests = 0, revision, startedAt, routes, stripPrefix, countedBy } = json
  if (typeof url !== 'string') return fail(`target ${name}: "url" is missing or not a string`)
  const origin = originOf(url)
  if (!origin.ok) return fail(`target ${name}: ${origin.reason}`)
  if (!isCount(requests)) {
    return fail(`target ${name}: "requests" must be a non-negative safe integer, got ${JSON.stringify(requests)}`)
  }
  if (revision !== undefined && typeof revision !== 'string') {
    return fail(`target ${name}: "revision" must be a string`)
  }
  if (startedAt !== undefined && typeof startedAt !== 'string') {
    return fail(`target ${name}: "startedAt" must be a string`)
  }

  if (stripPrefix !== undefined && typeof stripPrefix !== 'boolean') {
    return fail(`target ${name}: "stripPrefix" must be true or false`)
  }
  const parsedRoutes = decodeRoutes(routes)
  if (!parsedRoutes.ok) return fail(`target ${name}: ${parsedRoutes.reason}`)

  // `url` is kept as written so a proxy's compare-and-set of `requests` rewrites the znode
  // without changing fields it does not own; `origin` is the normalized form to route to.
  const target: DecodedTarget = { name, origin: origin.origin, url, requests }
  if (revision !== undefined) target.revision = revision
  if (startedAt !== undefined) target.startedAt = startedAt
  if (parsedRoutes.routes.length > 0) target.routes = parsedRoutes.routes
  if (stripPrefix === true) target.stripPrefix = true
  // A malformed ledger is left out rather than rejecting the target: it only makes this proxy's
  // next write fall back to adding its delta.
  const ledger = ledgerOf(countedBy)
  if (ledger !== undefined) target.countedBy = ledger
  return { ok: true, target }
}

type RoutesResult = { ok: true, routes: Route[] } | { ok: false, reason: string }

/**
 * `routes` is all or nothing: a target with one unreadable route is skipped whole, because
 * serving it in the default pool (or under its other routes only) would send it requests for
 * apps it does not serve.
 */
export function decodeRoutes (value: unknown): RoutesResult {
  if (value === undefined) return { ok: true, routes: [] }
  if (!Array.isArray(value)) return fail('"routes" must be an array of strings')
  if (value.length > MAX_ROUTES_PER_TARGET) return fail(`"routes" has ${value.length} entries, over the ${MAX_ROUTES_PER_TARGET} limit`)
  const routes: Route[] = []
  const seen = new Set<string>()
  for (const item of value) {
    if (typeof item !== 'string') return fail(`"routes" must be an array of strings, got ${item === null ? 'null' : typeof item}`)
    const r = parseRoute(item)
    if (!r.ok) return fail(r.reason)
    if (seen.has(r.route.key)) continue
    seen.add(r.route.key)
    routes.push(r.route)
  }
  return { ok: true, routes }
}

function ledgerOf (value: unknown): Record<string, number> | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (!isCount(v)) return undefined
    if (k === '__proto__') continue // would set the prototype, not a key
    out[k] = v
  }
  return out
}

function decodeBareCount (name: string, text: string): DecodeTargetResult {
  const requests = Number(text)
  if (!Number.isSafeInteger(requests)) {
    return fail(`target ${name}: count ${text} is not a safe integer`)
  }
  const match = HOST_PORT.exec(name)
  const port = Number(match?.[1])
  if (match === null || port < 1 || port > 65535) {
    return fail(`target ${name}: bare integer data needs a host:port znode name`)
  }
  const url = `http://${name}`
  const origin = originOf(url)
  if (!origin.ok) return fail(`target ${name}: bare integer data needs a host:port znode name (${origin.reason})`)
  return { ok: true, target: { name, origin: origin.origin, url, requests } }
}

type OriginResult = { ok: true, origin: string } | { ok: false, reason: string }

/**
 * A target is an origin: anything a URL could add beyond scheme, host and port would be
 * silently dropped or, worse, mixed into every forwarded path, so it is refused instead.
 */
function originOf (url: string): OriginResult {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return { ok: false, reason: `url ${JSON.stringify(url)} is not a valid URL` }
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return { ok: false, reason: `url ${JSON.stringify(url)} is not http or https` }
  }
  // Never echo credentials into a log line: name the problem, not the URL.
  if (parsed.username !== '' || parsed.password !== '') {
    return { ok: false, reason: 'url must not contain credentials' }
  }
  // `search` and `hash` are '' for a bare '?' or '#', so look at the serialized tail instead.
  const tail = parsed.href.slice(parsed.origin.length)
  if (parsed.pathname !== '/') return { ok: false, reason: `url ${JSON.stringify(url)} has a path; a target is an origin` }
  if (tail.includes('?')) return { ok: false, reason: `url ${JSON.stringify(url)} has a query; a target is an origin` }
  if (tail.includes('#')) return { ok: false, reason: `url ${JSON.stringify(url)} has a fragment; a target is an origin` }
  return { ok: true, origin: parsed.origin }
}

function isCount (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function fail (reason: string): { ok: false, reason: string } {
  return { ok: false, reason }
}

/**
 * Encodes target data as JSON with a fixed key order, so that equal data gives equal bytes
 * (a rewrite that changes nothing is visible as such) and extra fields of a decoded target
 * (`name`, `origin`) never leak into the znode. Routes are written as given; parsed ones (of a
 * decoded target) in their canonical form.
 */
export function encodeTarget (t: Omit<TargetData, 'routes'> & { routes?: ReadonlyArray<string | Route> | undefined }): Buffer {
  const ordered: TargetData = { url: t.url, requests: t.requests }
  if (t.revision !== undefined) ordered.revision = t.revision
  if (t.startedAt !== undefined) ordered.startedAt = t.startedAt
  // No routes: no field at all, so a default-pool target's znode reads as it always did.
  if (t.routes !== undefined && t.routes.length > 0) ordered.routes = t.routes.map(r => typeof r === 'string' ? r : r.key)
  if (t.stripPrefix === true) ordered.stripPrefix = true
  if (t.countedBy !== undefined && Object.keys(t.countedBy).length > 0) ordered.countedBy = { ...t.countedBy }
  return Buffer.from(JSON.stringify(ordered), 'utf8')
}

/**
 * Decodes `/cacheAge`. Returns undefined for "no usable revision" (missing, empty, not
 * UTF-8, too long) rather than throwing: proxies compare revisions for equality only, and an
 * unreadable one must not look like a change.
 */
export function decodeRevision (data: Buffer | null): string | undefined {
  if (data === null) return undefined
  let text: string
  try {
    text = utf8.decode(data).trim()
  } catch {
    return undefined
  }
  if (text === '' || Buffer.byteLength(text, 'utf8') > MAX_REVISION_BYTES) return undefined
  return text
}

/**
 * Encodes a revision for `/cacheAge`. Throws on a revision {@link decodeRevision} would not
 * read back: a replica publishing one would silently disable invalidation.
 */
export function encodeRevision (rev: string): Buffer {
  const text = rev.trim()
  if (text === '') throw new RangeError('revision is empty')
  const data = Buffer.from(text, 'utf8')
  if (data.length > MAX_REVISION_BYTES) {
    throw new RangeError(`revision is ${data.length} bytes, over the ${MAX_REVISION_BYTES} byte limit`)
  }
  return data
}
