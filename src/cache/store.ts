import { LRUCache } from 'lru-cache'
import { entryBytes } from './entry.js'
import type { CachedEntry } from './entry.js'
import { primaryKey, primaryKeyFor, secondaryKey, variantMatches, varyValues } from './key.js'
import type { KeyedRequest } from './key.js'
import type { CacheRequest } from './types.js'

/**
 * Bounded response store on `lru-cache`: one structure keeps the LRU order, the entry and
 * byte bounds (`max`, `maxSize` with each variant's estimated size) and a time-to-live per
 * variant that covers freshness plus the stale-if-error window, after which it is garbage.
 * Freshness itself is judged here, by our injected clock in ms (lru-cache is given the same
 * clock), because a variant past its freshness may still stand in for a failed upstream.
 *
 * Keys: see key.ts. `#variants` maps a primary key (host + url) to its variant keys, so a
 * lookup tries only that URL's variants and `invalidateUrl` drops all of them at once; it is
 * kept in step by lru-cache's dispose callback, whatever removed the variant.
 */

export const DEFAULT_MAX_OBJECT_BYTES = 1024 * 1024

export interface ResponseCacheOptions {
  readonly maxEntries: number
  readonly maxBytes: number
  /** Largest body stored; callers check `fits(size)` before buffering. Default 1 MiB. */
  readonly maxObjectBytes?: number
  /** How long past expiry an entry may still be served when the upstream fails. Default 0. */
  readonly staleIfErrorSec?: number
  /** Clock in ms; default `Date.now`. */
  readonly now?: () => number
}

export interface CacheHit {
  readonly entry: CachedEntry
  /** Value for the `Age` header (§4.2.3): upstream age at store time + seconds resident here. */
  readonly ageSec: number
}

export interface CacheStats {
  readonly entries: number
  readonly bytes: number
  /** Variants evicted to respect `maxEntries` / `maxBytes`. */
  readonly evictions: number
  /** Variants dropped because their stale window ended. */
  readonly expirations: number
}

/** Why a variant left the cache (replacement by a newer response and `clear()` are not reported). */
export type EvictionReason = 'capacity' | 'expired' | 'invalidated'

export type EvictionListener = (reason: EvictionReason, key: string) => void

interface Slot {
  readonly primary: string
  readonly entry: CachedEntry
  readonly bytes: number
}

const GET_OR_HEAD: ReadonlySet<string> = new Set(['GET', 'HEAD'])

export class ResponseCache {
  readonly #maxEntries: number
  readonly #maxObjectBytes: number
  readonly #maxBytes: number
  readonly #staleMs: number
  readonly #now: () => number
  readonly #lru: LRUCache<string, Slot>
  readonly #variants = new Map<string, Set<string>>()
  readonly #listeners = new Set<EvictionListener>()
  #evictions = 0
  #expirations = 0

  constructor (opts: ResponseCacheOptions) {
    this.#maxBytes = opts.maxBytes
    this.#maxObjectBytes = opts.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES
    this.#staleMs = Math.max(0, opts.staleIfErrorSec ?? 0) * 1000
    this.#now = opts.now ?? Date.now
    this.#lru = new LRUCache<string, Slot>({
      max: Math.max(1, opts.maxEntries),
      maxSize: Math.max(1, opts.maxBytes),
      sizeCalculation: (slot) => slot.bytes,
      // Our clock, read on every call (lru-cache caches performance.now() for 1 ms otherwise).
      perf: { now: this.#now },
      ttlResolution: 0,
      // The variant index follows every removal: eviction, expiry, replacement, delete.
      dispose: (slot, key, reason) => {
        // A replacement keeps its key (set() indexed it already).
        if (reason !== 'set') this.#unindex(slot.primary, key)
        if (reason === 'evict') this.#note('capacity', key)
        else if (reason === 'expire') this.#note('expired', key)
      }
    })
    this.#maxEntries = opts.maxEntries
  }

  /** How long past its freshness an entry may still be of use (stale-if-error, its own stale-while-revalidate). */
  #staleWindow (entry: CachedEntry): number {
    return Math.max(this.#staleMs, entry.staleWhileRevalidateMs ?? 0)
  }

  /** Whether a body of `size` bytes may be stored; check before buffering it. */
  fits (size: number): boolean {
    return size <= this.#maxObjectBytes && size <= this.#maxBytes
  }

  /** A fresh stored response for a GET or HEAD request, or undefined. */
  get (req: CacheRequest): CacheHit | undefined {
    const now = this.#now()
    const key = this.#select(req, now, FRESH)
    return key === undefined ? undefined : this.#hit(key, now)
  }

  /**
   * A stored response that may be served because the upstream failed (RFC 9111 §4.2.4,
   * RFC 5861 stale-if-error): fresh, or expired less than `staleIfErrorSec` ago and not
   * marked `must-revalidate` / `proxy-revalidate` / `s-maxage`.
   */
  getStale (req: CacheRequest): CacheHit | undefined {
    const now = this.#now()
    const key = this.#select(req, now, STALE_IF_ERROR)
    return key === undefined ? undefined : this.#hit(key, now)
  }

  /**
   * A stored response past its freshness but inside its own stale-while-revalidate window
   * (RFC 5861 §3): it may answer while one request revalidates it. Undefined otherwise.
   */
  getWhileRevalidating (req: CacheRequest): CacheHit | undefined {
    const now = this.#now()
    const key = this.#select(req, now, WHILE_REVALIDATING)
    return key === undefined ? undefined : this.#hit(key, now)
  }

  /**
   * Stores a response variant for a GET request; returns false when it was refused (not
   * GET, no key, body over `maxObjectBytes`, larger than `maxBytes`, no lifetime). A new
   * response replaces the variant with the same secondary key, and also variants stored
   * under a different Vary: the newest response says what the URL varies on.
   */
  set (req: CacheRequest, entry: CachedEntry): boolean {
    if (req.method !== 'GET' || !(entry.ttlMs > 0) || this.#maxEntries < 1 || entry.source?.live === false) return false
    const primary = primaryKey(req)
    if (primary === undefined || entry.body.length > this.#maxObjectBytes) return false
    const key = variantKey(primary, secondaryKey(entry))
    const bytes = entryBytes(entry, key)
    if (bytes > this.#maxBytes) return false

    for (const other of [...(this.#variants.get(primary) ?? [])]) {
      const slot = this.#lru.peek(other, { allowStale: true })
      if (other !== key && slot !== undefined && !sameNames(slot.entry.varyNames, entry.varyNames)) this.#lru.delete(other)
    }
    // Indexed before the set: the set's evictions may dispose of other variants of this URL.
    const keys = this.#variants.get(primary) ?? new Set<string>()
    this.#variants.set(primary, keys.add(key))
    // +1 s so the store never drops an entry our clock still considers usable.
    this.#lru.set(key, { primary, entry, bytes }, { ttl: entry.ttlMs + this.#staleWindow(entry) + 1000 })
    return true
  }

  /** RFC 9111 §4.4: drops every stored variant of `host` + `url`; returns how many. */
  invalidateUrl (host: string, url: string): number {
    const primary = primaryKeyFor(host, url)
    if (primary === undefined) return 0
    const keys = [...(this.#variants.get(primary) ?? [])]
    for (const key of keys) {
      this.#lru.delete(key)
      this.#emit('invalidated', key)
    }
    return keys.length
  }

  /**
   * Drops every entry whose content revision no longer has a live target in its pool
   * (coherence.ts); returns how many. A scan of the store, run when a revision leaves a pool,
   * never per request.
   */
  dropIncoherent (): number {
    return this.dropWhere((entry) => entry.source?.live === false)
  }

  /** Drops every entry `drop` picks (a scan: for clears and purges, never per request); returns how many. */
  dropWhere (drop: (entry: CachedEntry, primary: string) => boolean): number {
    const dead: string[] = []
    for (const [key, slot] of this.#lru.entries()) {
      if (drop(slot.entry, slot.primary)) dead.push(key)
    }
    for (const key of dead) {
      this.#lru.delete(key)
      this.#emit('invalidated', key)
    }
    return dead.length
  }

  /** Drops everything (a new content revision was published). Counters are kept. */
  clear (): void {
    this.#lru.clear()
    this.#variants.clear()
  }

  /**
   * A coalescing key for a miss: the primary key plus the request's values for the Vary
   * names already known for this URL, so requests that will get different variants do not
   * wait on each other. Undefined when the request cannot be cached.
   */
  coalesceKey (req: KeyedRequest): string | undefined {
    const primary = primaryKey(req)
    if (primary === undefined) return undefined
    const first = this.#variants.get(primary)?.values().next().value
    const names = (first === undefined ? undefined : this.#lru.peek(first, { allowStale: true })?.entry.varyNames) ?? []
    return variantKey(primary, secondaryKey({ varyNames: names, varyValues: varyValues(req, names) }))
  }

  stats (): CacheStats {
    // Variants past their stale window go now, so the figures count only what may be served.
    this.#lru.purgeStale()
    return {
      entries: this.#lru.size,
      bytes: this.#lru.calculatedSize,
      evictions: this.#evictions,
      expirations: this.#expirations
    }
  }

  /** Subscribes to removals (for metrics); returns the unsubscribe function. */
  onEvict (listener: EvictionListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /**
   * Most recently stored matching variant that is fresh (or, by `use`, may stand in for a
   * failed upstream, or answer during a revalidation); variants past any use are dropped as
   * they are met. Runs on every hit: no allocation unless a variant is dropped.
   */
  #select (req: CacheRequest, now: number, use: Use): string | undefined {
    if (!GET_OR_HEAD.has(req.method)) return undefined
    const primary = primaryKey(req)
    if (primary === undefined) return undefined
    const keys = this.#variants.get(primary)
    if (keys === undefined) return undefined
    let best: string | undefined
    let bestAt = -Infinity
    let dead: string[] | undefined
    let incoherent: string[] | undefined
    for (const key of keys) {
      const slot = this.#lru.peek(key, { allowStale: true })
      if (slot === undefined) continue
      const expires = expiresAt(slot)
      // Its revision left the pool (coherence.ts): never served again, fresh or not. Normally
      // dropped already by dropIncoherent(); this one boolean read is the hit path's guarantee.
      if (slot.entry.source?.live === false) {
        (incoherent ??= []).push(key)
        continue
      }
      if (now >= expires + this.#staleWindow(slot.entry)) {
        // Past any use (after the loop: removing from the set being iterated would skip keys).
        (dead ??= []).push(key)
        continue
      }
      const usable = now < expires ||
        (use === STALE_IF_ERROR && slot.entry.mayServeStale && now < expires + this.#staleMs) ||
        (use === WHILE_REVALIDATING && now < expires + (slot.entry.staleWhileRevalidateMs ?? 0))
      // §4.1: when several variants match, the most recent one may be used.
      if (usable && slot.entry.storedAt > bestAt && variantMatches(slot.entry, req)) {
        best = key
        bestAt = slot.entry.storedAt
      }
    }
    if (dead !== undefined) {
      for (const key of dead) {
        this.#lru.delete(key)
        this.#note('expired', key)
      }
    }
    if (incoherent !== undefined) {
      for (const key of incoherent) {
        this.#lru.delete(key)
        this.#emit('invalidated', key)
      }
    }
    return best
  }

  #hit (key: string, now: number): CacheHit | undefined {
    // get() moves the variant to the recent end of the LRU order.
    const slot = this.#lru.get(key, { allowStale: true })
    if (slot === undefined) return undefined
    const residentSec = Math.floor(Math.max(0, now - slot.entry.storedAt) / 1000)
    return { entry: slot.entry, ageSec: slot.entry.ageAtStoreSec + residentSec }
  }

  #unindex (primary: string, key: string): void {
    const keys = this.#variants.get(primary)
    keys?.delete(key)
    if (keys?.size === 0) this.#variants.delete(primary)
  }

  #note (reason: 'capacity' | 'expired', key: string): void {
    if (reason === 'capacity') this.#evictions++
    else this.#expirations++
    this.#emit(reason, key)
  }

  #emit (reason: EvictionReason, key: string): void {
    for (const listener of this.#listeners) listener(reason, key)
  }
}

/** What a lookup may return besides a fresh variant. */
type Use = 0 | 1 | 2
const FRESH: Use = 0
const STALE_IF_ERROR: Use = 1
const WHILE_REVALIDATING: Use = 2

function expiresAt (slot: Slot): number {
  return slot.entry.storedAt + slot.entry.ttlMs
}

function variantKey (primary: string, secondary: string): string {
  // A space cannot occur in a primary key (validated host, request-target), so this is unambiguous.
  return secondary === '' ? primary : `${primary} ${secondary}`
}

function sameNames (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i])
}
