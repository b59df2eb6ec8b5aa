// "Hit-for-miss" (after Varnish): the coalescing keys whose last response could not be stored.
// Coalescing makes concurrent misses wait for one upstream response; when that response turns
// out to be unstorable (no-store, private, Set-Cookie, too large...), every waiter then sends
// its own request, one round trip late. For a URL that is never cacheable that is every busy
// moment, so such keys are remembered for a while and their misses go upstream at once. A
// storable response ends the memory for its key (it is stored as usual, and coalescing
// resumes); so does a clear of the cache. Only the response's own verdict about the resource
// counts: a request that said no-store or carried Authorization says nothing about the next
// one; nor do answers shaped by the request (304 to a conditional request, 206 to a Range,
// 400/401/403/412/429 to a client); and a 5xx is an outage, not a property of the URL
// (coalescing protects the origin there).
import { LRUCache } from 'lru-cache'
import type { NotStorableReason } from './policy.js'

/** Reasons a response gives for not being stored, whoever asks for it. */
const RESPONSE_VERDICTS: ReadonlySet<NotStorableReason> = new Set<NotStorableReason>([
  'status', 'no-store', 'private', 'no-cache', 'set-cookie', 'vary-star', 'not-storable', 'no-freshness'
])

/**
 * Statuses that describe the resource itself. Others answer this request or this client
 * (206, 304, 400, 401, 403, 412, 429, a 302 to a login page …) or an outage (5xx).
 */
const RESOURCE_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])

/**
 * Is `reason` (for a response with `status`, to a request that did or did not carry
 * credentials) the URL's own verdict, worth remembering? Not for other statuses, not for an
 * authenticated request (its `private` answer says nothing of anonymous ones), nor 'stale'
 * (an upstream cache's copy that happened to be old).
 */
export function isResponseVerdict (reason: NotStorableReason, status: number, authenticated = false): boolean {
  return !authenticated && RESOURCE_STATUSES.has(status) && RESPONSE_VERDICTS.has(reason)
}

export interface PassMemoryOptions {
  /** How long a key is remembered after its last unstorable response, in ms (> 0). */
  readonly ttlMs: number
  /** Keys kept at most; the least recently marked go first. */
  readonly maxKeys: number
  /**
   * Total length of the keys kept at most (UTF-16 code units, about bytes for URLs): a key
   * holds a whole request-target, up to Node's 16 KiB header limit, so a count alone would
   * let random query strings hold far more memory than the cache's own bound.
   */
  readonly maxKeyChars: number
  /** Clock in ms (tests); default Date.now. */
  readonly now?: () => number
}

export class PassMemory {
  readonly #keys: LRUCache<string, true>

  constructor (opts: PassMemoryOptions) {
    const now = opts.now
    this.#keys = new LRUCache<string, true>({
      max: opts.maxKeys,
      maxSize: opts.maxKeyChars,
      sizeCalculation: (_value, key) => Math.max(1, key.length),
      ttl: opts.ttlMs,
      // lru-cache reads performance.now() (cached for 1 ms) by default; an injected clock is
      // read on every call, so tests are exact.
      ...(now === undefined ? {} : { perf: { now }, ttlResolution: 0 })
    })
  }

  /** The last response for `key` could not be stored. */
  remember (key: string): void { this.#keys.set(key, true) }

  /** A response for `key` was storable again. */
  forget (key: string): void { this.#keys.delete(key) }

  /** True while `key`'s misses should skip coalescing. */
  has (key: string): boolean { return this.#keys.has(key) }

  clear (): void { this.#keys.clear() }

  /** Keys remembered now (for stats; expired ones are dropped first). */
  get size (): number {
    this.#keys.purgeStale()
    return this.#keys.size
  }
}
