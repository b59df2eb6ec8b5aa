// The route syntax a target declares (`--route HOST[/PATH-PREFIX]`, the `routes` field of its
// znode): one parser for the command line and for the codec, so a route a replica was allowed to
// write is exactly a route every proxy reads back. Pure: no I/O.
import { domainToASCII } from 'node:url'

/** A parsed route. `key` is its canonical text: equal keys are the same route (one pool). */
export interface Route {
  /** Lower-case ASCII host; for a wildcard, the parent domain (`example.com` for `*.example.com`). */
  readonly host: string
  /** `*.example.com`: any host one label under `host`, never `host` itself. */
  readonly wildcard: boolean
  /** `/` for the whole host; otherwise starts with `/` and never ends with one (`/api`). */
  readonly pathPrefix: string
  /** `shop.example.com`, `*.example.com`, `example.com/api`. */
  readonly key: string
}

/**
 * The key of the default pool (targets without routes) wherever pools are named: parentheses
 * never occur in a route key, so it cannot collide with one.
 */
export const DEFAULT_POOL_KEY = '(default)'

/** The same routes in the same order (a target's list, compared by key). */
export function sameRoutes (a: readonly Route[] | undefined, b: readonly Route[] | undefined): boolean {
  if (a === b) return true
  const n = a?.length ?? 0
  if (n !== (b?.length ?? 0)) return false
  for (let i = 0; i < n; i++) if (a![i]!.key !== b![i]!.key) return false
  return true
}

export type ParseRouteResult = { ok: true, route: Route } | { ok: false, reason: string }

/** DNS limits (RFC 1035): 63 per label, 253 for the whole name. */
const MAX_LABEL = 63
const MAX_HOST = 253
/** A path prefix is a few segments; a longer one is a mistake, not a route. */
export const MAX_PATH_PREFIX = 1024

// Letters, digits, hyphen; underscore too, which DNS forbids in host names but internal names
// (service discovery, containers) use, and which a Host header can carry.
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i
// RFC 3986 pchar plus '/', with '%' for percent-encoding; '?' and '#' end a path, so they are refused.
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/

/**
 * Parses `HOST[/PATH-PREFIX]`. Never throws: the reason is one line naming the value, for a
 * command-line error or a warning about a znode.
 */
export function parseRoute (s: string): ParseRouteResult {
  if (typeof s !== 'string') return fail('route must be a string')
  const shown = JSON.stringify(s)
  if (s.length === 0) return fail('route is empty')
  if (/\s/.test(s)) return fail(`route ${shown} contains whitespace`)
  if (SCHEME.test(s)) return fail(`route ${shown} has a scheme; write HOST[/PATH-PREFIX], e.g. example.com/api`)
  if (s.includes('?') || s.includes('#')) return fail(`route ${shown} has a query or fragment; a route is HOST[/PATH-PREFIX]`)

  const slash = s.indexOf('/')
  const hostPart = slash === -1 ? s : s.slice(0, slash)
  const pathPart = slash === -1 ? '/' : s.slice(slash)
  if (hostPart === '') return fail(`route ${shown} has an empty host; write HOST[/PATH-PREFIX] (a target without routes serves every other request)`)

  const host = parseHost(hostPart, shown)
  if (!host.ok) return host
  const path = parsePathPrefix(pathPart, shown)
  if (!path.ok) return path

  const { name, wildcard } = host
  const pathPrefix = path.prefix
  const key = `${wildcard ? '*.' : ''}${name}${pathPrefix === '/' ? '' : pathPrefix}`
  return { ok: true, route: { host: name, wildcard, pathPrefix, key } }
}

/**
 * The path to forward to a target that declared `--strip-prefix`, for a request `path`
 * (origin-form, query allowed) that `pathPrefix` covers: the prefix removed, and `/` when
 * nothing is left. `/api/x?q` → `/x?q`, `/api` → `/`, `/api?q` → `/?q`; a `/` prefix changes
 * nothing.
 */
export function stripPathPrefix (pathPrefix: string, path: string): string {
  if (pathPrefix === '/' || !path.startsWith(pathPrefix)) return path
  const rest = path.slice(pathPrefix.length)
  if (rest === '') return '/'
  const next = rest.charCodeAt(0)
  if (next === 0x2f /* / */) return rest
  if (next === 0x3f /* ? */) return `/${rest}`
  // Not on a segment boundary (`/apix` under `/api`): the prefix does not cover it.
  return path
}

/** Like parseRoute, for callers that want an exception (a RangeError with the reason). */
export function routeOrThrow (s: string): Route {
  const r = parseRoute(s)
  if (!r.ok) throw new RangeError(r.reason)
  return r.route
}

type HostResult = { ok: true, name: string, wildcard: boolean } | { ok: false, reason: string }

function parseHost (raw: string, shown: string): HostResult {
  const stars = raw.split('*').length - 1
  if (stars > 1) return fail(`route ${shown} has more than one '*'; only a first label '*.' is allowed (*.example.com)`)
  const wildcard = stars === 1
  if (wildcard && !raw.startsWith('*.')) return fail(`route ${shown}: '*' is only allowed as the whole first label (*.example.com)`)
  let rest = wildcard ? raw.slice(2) : raw

  if (rest.startsWith('[')) {
    // An IPv6 literal, as a Host header carries it; a port after it is refused like any port.
    const lower = rest.toLowerCase()
    if (!IPV6_LITERAL.test(lower)) return fail(`route ${shown} has a port or a malformed IPv6 literal; routes match the Host without its port`)
    if (wildcard) return fail(`route ${shown}: a wildcard needs a domain name, not an IP address`)
    return { ok: true, name: lower, wildcard: false }
  }
  if (rest.includes(':')) return fail(`route ${shown} has a port; routes match the Host without its port`)
  // A fully qualified name may end in a dot (`example.com.`): the same host.
  if (rest.endsWith('.')) rest = rest.slice(0, -1)
  if (rest === '') return fail(`route ${shown} has an empty host`)

  // Host headers carry internationalized names in their ASCII (punycode) form; converting here
  // lets `bücher.example` be written as a person would. '' means the name cannot be converted.
  // eslint-disable-next-line no-control-regex -- ASCII is exactly the range checked for
  const ascii = /^[\x00-\x7f]*$/.test(rest) ? rest.toLowerCase() : domainToASCII(rest)
  if (ascii === '') return fail(`route ${shown} has a host that is not a valid domain name`)
  if (ascii.length > MAX_HOST) return fail(`route ${shown} has a host longer than ${MAX_HOST} characters`)
  for (const label of ascii.split('.')) {
    if (label === '') return fail(`route ${shown} has an empty label in its host`)
    if (label.length > MAX_LABEL) return fail(`route ${shown} has a host label longer than ${MAX_LABEL} characters`)
    if (!LABEL.test(label)) return fail(`route ${shown} has an invalid character in host label ${JSON.stringify(label)}`)
  }
  return { ok: true, name: ascii, wildcard }
}

type PathResult = { ok: true, prefix: string } | { ok: false, reason: string }

function parsePathPrefix (raw: string, shown: string): PathResult {
  if (!raw.startsWith('/')) return fail(`route ${shown}: the path prefix must start with '/'`)
  if (raw.length > MAX_PATH_PREFIX) return fail(`route ${shown} has a path prefix longer than ${MAX_PATH_PREFIX} characters`)
  if (raw.includes('*')) return fail(`route ${shown} has a '*' in its path; a path prefix already covers everything under it (example.com/api)`)
  if (!PATH_CHARS.test(raw)) return fail(`route ${shown} has a character not allowed in a URL path`)
  // `/api` and `/api/` are one route: both serve `/api/x`, and a request for `/api` belongs to
  // the app mounted there rather than to another pool.
  const prefix = raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw
  if (prefix === '/') return { ok: true, prefix }
  for (const seg of prefix.slice(1).split('/')) {
    if (seg === '') return fail(`route ${shown} has an empty path segment ('//')`)
    // Clients and the proxy never send dot segments after normalization: such a prefix would
    // never match, or match what its author did not mean.
    if (seg === '.' || seg === '..') return fail(`route ${shown} has a '.' or '..' path segment`)
  }
  return { ok: true, prefix }
}

function fail (reason: string): { ok: false, reason: string } {
  return { ok: false, reason }
}
