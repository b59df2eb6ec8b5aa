import CachePolicy from 'http-cache-semantics'
import { deltaSeconds, getHeader, hasHeader, parseCacheControl, splitTokens } from './headers.js'
import type { CacheControl } from './headers.js'
import { UNKEYED_HOST_HEADERS, UNKEYED_OVERRIDE_HEADERS, parseVary, primaryKey } from './key.js'
import type { CacheRequest, CacheResponse, HeaderMap } from './types.js'

/**
 * Cacheability and freshness for a shared cache (RFC 9111), built on `http-cache-semantics`
 * with zkproxy's stricter rules on top. The library decides the RFC basics (method, status
 * understood, `no-store`, `private`, Authorization, and the freshness lifetime:
 * `s-maxage` > `max-age` > `Expires` − `Date` > heuristic); we add what a reverse proxy
 * that never revalidates must refuse, and the `--cache-ttl` / `--cache-default-ttl` caps.
 *
 * Choices worth knowing:
 * - **Only GET responses are stored.** A HEAD is answered from a stored GET (same key, the
 *   proxy drops the body), but a HEAD miss is forwarded and its response is not stored:
 *   it has no body, and storing it would answer the next GET with an empty one. RFC 9111
 *   §4.3.5 would let a HEAD response refresh a stored GET's headers; we do not.
 * - **Response `no-cache` is "do not store".** §5.2.2.4 allows storing but forbids reuse
 *   without successful validation with the origin (§4.3). zkproxy does not send
 *   conditional requests upstream, so a stored copy could never be served: it would only
 *   take memory and push useful entries out. The same holds for qualified
 *   `no-cache="field"` and `private="field"` (§5.2.2.4, §5.2.2.7), which we do not split.
 *   `Pragma: no-cache` on a response without Cache-Control is read the same way, as the
 *   library does, for HTTP/1.0 origins.
 * - **Authorization** (§3.5): stored only with `public` or `s-maxage`. §3.5 also accepts
 *   `must-revalidate` (and the library follows it); the DESIGN contract is stricter.
 * - **Never stored**: `Set-Cookie` (whatever `public` says: one user's cookie must not
 *   reach another), `Vary: *`, statuses other than 200, 203, 204, 300, 301, 404, 410
 *   (all heuristically cacheable per RFC 9110 §15.1, so heuristics are always allowed).
 * - **Freshness** = min(`cacheTtlSec`, explicit lifetime − current age). Without explicit
 *   lifetime: heuristic 10% of `Date` − `Last-Modified` (§4.2.2), else `defaultTtlSec` when
 *   set (> 0), else not stored. An explicit lifetime of zero or one in the past (`max-age=0`,
 *   old or invalid `Expires`, §5.3) is never replaced by the default.
 * - `proxy-revalidate`, `must-revalidate` and `s-maxage` (§5.2.2.2, §5.2.2.8, §5.2.2.10)
 *   leave the response fresh for its lifetime but forbid serving it stale on upstream
 *   errors; see `mayServeStale`.
 */

/** Statuses zkproxy stores (a subset of RFC 9110 §15.1's heuristically cacheable ones). */
export const STORABLE_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 300, 301, 404, 410])

export interface EvaluateOptions {
  /** `--cache-ttl`: upper bound on how long anything stays fresh here; 0 turns the cache off. */
  readonly cacheTtlSec: number
  /** `--cache-default-ttl`: lifetime for responses without explicit freshness; 0/absent = none. */
  readonly defaultTtlSec?: number
  /** Current time in ms (injected clock). */
  readonly now: number
}

export type NotStorableReason =
  | 'cache-off'
  | 'method'
  | 'no-key'
  | 'request-no-store'
  | 'status'
  | 'no-store'
  | 'private'
  | 'no-cache'
  | 'set-cookie'
  | 'vary-star'
  | 'authorization'
  | 'unkeyed-header'
  | 'not-storable'
  | 'stale'
  | 'no-freshness'

export interface NotStorable {
  readonly storable: false
  readonly reason: NotStorableReason
}

export interface Storable {
  readonly storable: true
  /** How long the entry is fresh here, from `now`, in ms (> 0). */
  readonly ttlMs: number
  /** Where the lifetime came from (for logs and tests). */
  readonly freshness: 'explicit' | 'heuristic' | 'default'
  /** Upstream `Age` at store time, whole seconds (RFC 9111 §4.2.3 corrected initial age). */
  readonly ageSec: number
  /** Normalised Vary names (sorted, lower-case); empty when the response has no Vary. */
  readonly varyNames: readonly string[]
  /** False when a directive forbids serving the response stale (§4.2.4). */
  readonly mayServeStale: boolean
  readonly etag?: string
  readonly lastModified?: string
}

export type Decision = NotStorable | Storable

/**
 * Decides whether the response to `req` may be stored and for how long. `req` should carry
 * the headers as they were sent upstream, with the downstream `Host`.
 */
export function evaluate (req: CacheRequest, res: CacheResponse, opts: EvaluateOptions): Decision {
  if (!(opts.cacheTtlSec > 0)) return no('cache-off')
  if (req.method !== 'GET') return no('method')
  if (primaryKey(req) === undefined) return no('no-key')

  const reqcc = parseCacheControl(getHeader(req.headers, 'cache-control'))
  // §5.2.1.5: request no-store forbids storing "any part of either this request or any response to it".
  if (reqcc.directives.has('no-store')) return no('request-no-store')
  if (!STORABLE_STATUSES.has(res.status)) return no('status')

  const cc = parseCacheControl(getHeader(res.headers, 'cache-control'))
  if (cc.directives.has('no-store')) return no('no-store')
  // §3 and §5.2.2.7: a shared cache must not store `private` responses.
  if (cc.directives.has('private')) return no('private')
  if (cc.directives.has('no-cache') || pragmaNoCache(res.headers)) return no('no-cache')
  if (hasHeader(res.headers, 'set-cookie')) return no('set-cookie')

  const vary = parseVary(getHeader(res.headers, 'vary'))
  if (vary === '*') return no('vary-star')
  // §3.5: a shared cache must not reuse an authenticated response unless told it may.
  if (hasHeader(req.headers, 'authorization') &&
      !cc.directives.has('public') && !cc.directives.has('s-maxage')) {
    return no('authorization')
  }
  if (carriesUnkeyedOverride(req.headers, vary)) return no('unkeyed-header')

  const policy = createPolicy(req, res, cc, opts.now)
  // Backstop: whatever the library refuses, we refuse too (our checks are meant to be stricter).
  if (!policy.storable()) return no('not-storable')

  // §4.2.3: current age at store time is the upstream Age (the library does not trust `Date`
  // for apparent age, which avoids inflating age on origins with skewed clocks).
  const ageSec = Math.max(0, Math.floor(policy.age()))
  const explicit = cc.directives.has('s-maxage') || cc.directives.has('max-age') ||
    hasHeader(res.headers, 'expires')

  // The library's maxAge() is s-maxage > max-age > Expires − Date when one is present
  // (§4.2.1), otherwise cacheHeuristic × (Date − Last-Modified) (§4.2.2), otherwise 0.
  let lifetimeSec = policy.maxAge()
  let freshness: Storable['freshness'] = explicit ? 'explicit' : 'heuristic'
  // The operator's default fills in for an absent lifetime only, never for an explicit 0.
  const defaultTtlSec = opts.defaultTtlSec ?? 0
  if (!explicit && !(lifetimeSec > ageSec) && defaultTtlSec > 0) {
    lifetimeSec = defaultTtlSec
    freshness = 'default'
  }
  if (!explicit && !(lifetimeSec > 0)) return no('no-freshness')

  const remainingMs = Math.floor((lifetimeSec - ageSec) * 1000)
  if (!(remainingMs > 0)) return no('stale')
  const ttlMs = Math.min(opts.cacheTtlSec * 1000, remainingMs)

  const mayServeStale = !cc.directives.has('must-revalidate') &&
    !cc.directives.has('proxy-revalidate') && !cc.directives.has('s-maxage')
  const etag = getHeader(res.headers, 'etag')
  const lastModified = getHeader(res.headers, 'last-modified')
  return {
    storable: true,
    ttlMs,
    freshness,
    ageSec,
    varyNames: vary,
    mayServeStale,
    ...(etag === undefined ? {} : { etag }),
    ...(lastModified === undefined ? {} : { lastModified })
  }
}

/**
 * Whether the request asks to skip the stored response: `Cache-Control: no-cache` or
 * `no-store` (§5.2.1.4, §5.2.1.5), or `Pragma: no-cache` without Cache-Control (§5.4).
 * The response may still be stored afterwards unless the request said `no-store`
 * (`evaluate` checks that). A request `max-age=0` (a browser reload) is deliberately not
 * a bypass: it would let any client punch every request through to the origin.
 */
export function requestBypassesCache (req: Pick<CacheRequest, 'headers'>): boolean {
  const raw = getHeader(req.headers, 'cache-control')
  if (raw === undefined) return pragmaNoCache(req.headers)
  const cc = parseCacheControl(raw)
  return cc.directives.has('no-cache') || cc.directives.has('no-store')
}

const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * Methods whose non-error response must invalidate stored responses for the target URI
 * (RFC 9111 §4.4): every method that is not known to be safe (RFC 9110 §9.2.1), so POST,
 * PUT, DELETE, PATCH and any unknown method. Method names are case-sensitive (§9.1).
 */
export function isUnsafeMethod (method: string): boolean {
  return !SAFE_METHODS.has(method)
}

function no (reason: NotStorableReason): NotStorable {
  return { storable: false, reason }
}

/** §5.4: `Pragma: no-cache` counts only when Cache-Control is absent. */
function pragmaNoCache (headers: HeaderMap): boolean {
  if (hasHeader(headers, 'cache-control')) return false
  return splitTokens(getHeader(headers, 'pragma')).some((t) => t.toLowerCase() === 'no-cache')
}

function carriesUnkeyedOverride (headers: HeaderMap, vary: readonly string[]): boolean {
  // A response that varies on the header keyed it, so it cannot poison other requests.
  for (const name of UNKEYED_OVERRIDE_HEADERS) {
    if (!vary.includes(name) && hasHeader(headers, name)) return true
  }
  const host = (getHeader(headers, 'host') ?? '').toLowerCase()
  for (const name of UNKEYED_HOST_HEADERS) {
    const value = getHeader(headers, name)
    // The proxy itself may set X-Forwarded-Host to the downstream Host: that is keyed already.
    if (value !== undefined && !vary.includes(name) && value.trim().toLowerCase() !== host) return true
  }
  return false
}

/**
 * Builds the library's policy on normalised headers and our clock. Normalising matters: the
 * library reads directive names case-sensitively, calls `.trim()` on fields that may be
 * arrays, and parses `max-age=12abc` as 12. We give it lower-case names, joined values, and
 * Cache-Control rebuilt from our parse, where a malformed or conflicting lifetime becomes 0
 * (§4.2.1: invalid freshness information means stale). `proxy-revalidate` is left out: the
 * library treats it as zero lifetime, while §5.2.2.8 only forbids serving stale, which we
 * record in `mayServeStale`. Invalid `Expires` is likewise made explicit.
 */
function createPolicy (req: CacheRequest, res: CacheResponse, cc: CacheControl, nowMs: number): CachePolicy {
  // The library reads the clock via an overridable `now()` (its README: "monkey-patch it for
  // testing"); a subclass per call binds it to the injected time before the constructor runs.
  class ClockedPolicy extends CachePolicy {
    now (): number { return nowMs }
  }
  const resHeaders = lowerCaseJoined(res.headers)
  const rebuilt = rebuildCacheControl(cc)
  if (rebuilt === undefined) delete resHeaders['cache-control']
  else resHeaders['cache-control'] = rebuilt
  // §5.3: an invalid Expires (including "0" and repeated fields) means "already expired"; the
  // library would instead ignore an empty one and fall back to heuristics.
  const expires = resHeaders.expires
  if (expires !== undefined && Number.isNaN(Date.parse(expires))) resHeaders.expires = '0'
  return new ClockedPolicy(
    { method: req.method, url: req.url, headers: lowerCaseJoined(req.headers) },
    { status: res.status, headers: resHeaders },
    { shared: true, cacheHeuristic: 0.1, immutableMinTimeToLive: 0 }
  )
}

// The directives the library acts on; others (extensions) are dropped rather than risk its
// comma-splitting parser reading a quoted extension value as a second `max-age`.
const LIBRARY_FLAGS = ['public', 'no-store', 'no-cache', 'private', 'must-revalidate', 'immutable']
const LIBRARY_DELTAS = ['max-age', 's-maxage', 'stale-if-error', 'stale-while-revalidate']

function rebuildCacheControl (cc: CacheControl): string | undefined {
  const parts = LIBRARY_FLAGS.filter((name) => cc.directives.has(name))
  for (const name of LIBRARY_DELTAS) {
    const seconds = deltaSeconds(cc, name)
    if (seconds !== undefined) parts.push(`${name}=${Number.isNaN(seconds) ? 0 : seconds}`)
  }
  return parts.length === 0 ? undefined : parts.join(', ')
}

function lowerCaseJoined (headers: HeaderMap): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}
