import { deltaSeconds, getHeader, getRawHeader, hasHeader, parseCacheControl, parseTargetedField, splitTokens } from './headers.js'
import type { CacheControl } from './headers.js'
import { UNKEYED_HOST_HEADERS, UNKEYED_OVERRIDE_HEADERS, parseVary, primaryKey } from './key.js'
import type { CacheRequest, CacheResponse, HeaderMap } from './types.js'

/**
 * Cacheability and freshness for a shared cache (RFC 9111), from one reading of
 * Cache-Control (headers.ts: quoted values, repeated and conflicting directives): method,
 * status, `no-store`, `private`, Authorization, what a reverse proxy that never revalidates
 * must refuse, the freshness lifetime (`s-maxage` > `max-age` > `Expires` − `Date` >
 * heuristic, §4.2.1), the current age (§4.2.3), and the `--cache-ttl` /
 * `--cache-default-ttl` caps. (http-cache-semantics was used here once; its own
 * comma-splitting Cache-Control parser meant reading every header twice.)
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
  /**
   * The targeted cache-control field this cache obeys (RFC 9213; `--cdn-cache-control-field`),
   * lower-case; default `cdn-cache-control`, '' for none.
   */
  readonly targetedField?: string
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
  /**
   * RFC 5861 §3 `stale-while-revalidate=N`, in ms (0 without it, or when stale serving is
   * forbidden): how long past its freshness the response may answer while one request
   * revalidates it.
   */
  readonly staleWhileRevalidateMs: number
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

  // RFC 9213 §2.1: a valid, non-empty targeted field is used instead, and Cache-Control and
  // Expires "MUST" then be ignored for this response.
  const targetedName = opts.targetedField ?? 'cdn-cache-control'
  const targeted = targetedName === '' ? undefined : parseTargetedField(getHeader(res.headers, targetedName))
  const cc = targeted ?? parseCacheControl(getHeader(res.headers, 'cache-control'))
  if (cc.directives.has('no-store')) return no('no-store')
  // §3 and §5.2.2.7: a shared cache must not store `private` responses.
  if (cc.directives.has('private')) return no('private')
  if (cc.directives.has('no-cache') || (targeted === undefined && pragmaNoCache(res.headers))) return no('no-cache')
  if (hasHeader(res.headers, 'set-cookie')) return no('set-cookie')

  const vary = parseVary(getHeader(res.headers, 'vary'))
  if (vary === '*') return no('vary-star')
  // §3.5: a shared cache must not reuse an authenticated response unless told it may.
  if (hasHeader(req.headers, 'authorization') &&
      !cc.directives.has('public') && !cc.directives.has('s-maxage')) {
    return no('authorization')
  }
  if (carriesUnkeyedOverride(req.headers, vary)) return no('unkeyed-header')

  // §4.2.3: current age at store time is the upstream Age (`Date` is not trusted for apparent
  // age, which avoids inflating age on origins with skewed clocks).
  const ageSec = ageValue(res.headers)
  const { explicit, lifetimeSec: lifetime } = freshnessLifetime(res, cc, opts.now, targeted !== undefined)
  let lifetimeSec = lifetime
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
  const swr = deltaSeconds(cc, 'stale-while-revalidate')
  // Bounded like freshness by --cache-ttl: the operator's cap on how old an answer may be.
  const staleWhileRevalidateMs = mayServeStale && swr !== undefined && swr > 0 ? Math.min(swr, opts.cacheTtlSec) * 1000 : 0
  const etag = getHeader(res.headers, 'etag')
  const lastModified = getHeader(res.headers, 'last-modified')
  return {
    storable: true,
    ttlMs,
    freshness,
    ageSec,
    varyNames: vary,
    mayServeStale,
    staleWhileRevalidateMs,
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
 * §4.2.1: the freshness lifetime, from the first of `s-maxage` (a shared cache), `max-age`,
 * `Expires` − `Date`; without any of them (not `explicit`), the heuristic of §4.2.2: 10% of
 * `Date` − `Last-Modified` (every status stored here is heuristically cacheable). A malformed
 * or conflicting delta, and an invalid `Expires` (§5.3: including "0" and repeated fields),
 * mean a lifetime of zero: already stale.
 */
function freshnessLifetime (res: CacheResponse, cc: CacheControl, nowMs: number, ignoreExpires: boolean): { explicit: boolean, lifetimeSec: number } {
  for (const name of ['s-maxage', 'max-age']) {
    const seconds = deltaSeconds(cc, name)
    if (seconds !== undefined) return { explicit: true, lifetimeSec: Number.isNaN(seconds) ? 0 : seconds }
  }
  const date = httpDate(res.headers, 'date') ?? nowMs
  if (!ignoreExpires && getRawHeader(res.headers, 'expires') !== undefined) {
    const expires = httpDate(res.headers, 'expires')
    return { explicit: true, lifetimeSec: expires === undefined ? 0 : Math.max(0, (expires - date) / 1000) }
  }
  const lastModified = httpDate(res.headers, 'last-modified')
  if (lastModified === undefined || lastModified >= date) return { explicit: false, lifetimeSec: 0 }
  return { explicit: false, lifetimeSec: ((date - lastModified) / 1000) * HEURISTIC_FRACTION }
}

/** §4.2.2's suggested heuristic: a tenth of the time since the last modification. */
const HEURISTIC_FRACTION = 0.1

/** A date field's value in ms; undefined when absent, repeated or not an HTTP-date. */
function httpDate (headers: HeaderMap, name: string): number | undefined {
  const raw = getRawHeader(headers, name)
  return typeof raw === 'string' ? parseHttpDate(raw) : undefined
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)'
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})'
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete rfc850-date and asctime-date recipients accept.
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`)
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`)
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`)

/**
 * An HTTP-date (RFC 9110 §5.6.7) in ms, or undefined for anything else: `Date.parse` would read
 * "0", "2030-01-01", "tomorrow"-like or trailing-garbage values as dates, and RFC 9111 §5.3
 * says a cache must treat an invalid Expires as a time in the past. A day that does not exist
 * (31 Feb) or a time out of range is invalid too. A two-digit rfc850 year that would be more
 * than 50 years in the future is in the past century (§5.6.7).
 */
export function parseHttpDate (value: string, nowMs = Date.now()): number | undefined {
  const v = value.trim()
  let day: string, month: string, year: number, hh: string, mm: string, ss: string
  let m = IMF_FIXDATE.exec(v)
  if (m !== null) {
    [, day = '', month = '', , hh = '', mm = '', ss = ''] = m
    year = Number(m[3])
  } else if ((m = RFC850_DATE.exec(v)) !== null) {
    [, day = '', month = '', , hh = '', mm = '', ss = ''] = m
    const thisYear = new Date(nowMs).getUTCFullYear()
    year = 2000 + Number(m[3])
    if (year > thisYear + 50) year -= 100
  } else if ((m = ASCTIME_DATE.exec(v)) !== null) {
    [, month = '', day = '', hh = '', mm = '', ss = ''] = m
    year = Number(m[6])
  } else {
    return undefined
  }
  const d = Number(day)
  const mon = MONTHS.indexOf(month)
  const [h, min, sec] = [Number(hh), Number(mm), Number(ss)]
  if (h > 23 || min > 59 || sec > 60) return undefined
  const ms = Date.UTC(year, mon, d, h, min, Math.min(sec, 59))
  // Date.UTC rolls 31 Feb over into March: such a date is not a date.
  return new Date(ms).getUTCDate() === d ? ms : undefined
}

/**
 * §5.1: the Age field's value in whole seconds. "If the field value is invalid (e.g., it
 * contains a list or something other than a non-negative integer), a cache SHOULD ignore the
 * field": a list, repeated lines, a sign, a fraction or any other text count as no Age (0).
 */
function ageValue (headers: HeaderMap): number {
  const raw = getRawHeader(headers, 'age')
  if (typeof raw !== 'string') return 0
  const value = raw.trim()
  if (!/^\d+$/.test(value)) return 0
  // §1.2.2: a delta too large to represent is 2^31.
  return Math.min(Number(value), 2 ** 31)
}
