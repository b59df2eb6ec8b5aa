import NodeCache from 'node-cache'
import { entryBytes } from './entry.js'
import type { CachedEntry } from './entry.js'
import { primaryKey, primaryKeyFor, secondaryKey, variantMatches, varyValues } from './key.js'
import type { KeyedRequest } from './key.js'
import type { CacheRequest } from './types.js'

/**
 * Bounded response store. `node-cache` does the time-based part: every variant is also a
 * node-cache key whose TTL covers freshness plus the stale-if-error window, so its periodic
 * check frees expired entries nobody asks for again. It cannot bound size (`maxKeys`
 * throws instead of evicting), so LRU is ours: `#lru` is a Map kept in recency order (a
 * hit deletes and re-inserts its key unless it is already the last), and before an insert
 * the least recently used variants are evicted until both `maxEntries` and `maxBytes` hold.
 * Freshness is always judged by our injected clock in ms; node-cache's own clock only
 * decides when garbage goes.
 *
 * Keys: see key.ts. `#variants` maps a primary key (host + url) to its variant keys, so a
 * lookup tries only that URL's variants and `invalidateUrl` drops all of them at once.
 */

export const DEFAULT_MAX_OBJECT_BYTES = 1024 * 1024

export interface ResponseCacheOptions {
  readonly maxEntries: number
  readonly maxBytes: number
  /** Largest body stored; callers check `fits(size)` before buffering. Default 1 MiB. */
  readonly maxObjectBytes?: number
  /** How long past expiry an entry may still be served when the upstream fails. Default 0. */
  readonly staleIfErrorSec?: number
  /** node-cache sweep period for expired entries; 0 disables the timer. Default 60. */
  readonly checkPeriodSec?: number
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
  readonly hits: number
  readonly misses: number
  /** Stale entries handed out by `getStale`. */
  readonly stale: number
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
  readonly #maxBytes: number
  readonly #maxObjectBytes: number
  readonly #staleMs: number
  readonly #now: () => number
  readonly #timers: NodeCache
  readonly #lru = new Map<string, Slot>()
  readonly #variants = new Map<string, Set<string>>()
  readonly #listeners = new Set<EvictionListener>()
  /** The key last stored or hit: already at the recent end of `#lru`, so a hit leaves it there. */
  #mru: string | undefined
  #bytes = 0
  #hits = 0
  #misses = 0
  #stale = 0
  #evictions = 0
  #expirations = 0

  constructor (opts: ResponseCacheOptions) {
    this.#maxEntries = opts.maxEntries
    this.#maxBytes = opts.maxBytes
    this.#maxObjectBytes = opts.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES
    this.#staleMs = Math.max(0, opts.staleIfErrorSec ?? 0) * 1000
    this.#now = opts.now ?? Date.now
    // useClones: false — bodies are Buffers; cloning them on every get/set would double memory.
    this.#timers = new NodeCache({ useClones: false, checkperiod: opts.checkPeriodSec ?? 60, stdTTL: 0 })
    // node-cache emits 'del' for every deletion, ours and its own expiry: one bookkeeping path.
    this.#timers.on('del', (key: string) => { this.#forget(key) })
    this.#timers.on('expired', (key: string) => {
      this.#expirations++
      this.#emit('expired', key)
    })
  }

  /** Whether a body of `size` bytes may be stored; check before buffering it. */
  fits (size: number): boolean {
    return size <= this.#maxObjectBytes && size <= this.#maxBytes
  }

  /** A fresh stored response for a GET or HEAD request, or undefined (counted as a miss). */
  get (req: CacheRequest): CacheHit | undefined {
    const now = this.#now()
    const key = this.#select(req, now, false)
    if (key === undefined) {
      this.#misses++
      return undefined
    }
    this.#hits++
    return this.#hit(key, now)
  }

  /**
   * A stored response that may be served because the upstream failed (RFC 9111 §4.2.4,
   * RFC 5861 stale-if-error): fresh, or expired less than `staleIfErrorSec` ago and not
   * marked `must-revalidate` / `proxy-revalidate` / `s-maxage`.
   */
  getStale (req: CacheRequest): CacheHit | undefined {
    const now = this.#now()
    const key = this.#select(req, now, true)
    if (key === undefined) return undefined
    const slot = this.#lru.get(key)
    if (slot !== undefined && now >= expiresAt(slot)) this.#stale++
    return this.#hit(key, now)
  }

  /**
   * Stores a response variant for a GET request; returns false when it was refused (not
   * GET, no key, body over `maxObjectBytes`, larger than `maxBytes`, no lifetime). A new
   * response replaces the variant with the same secondary key, and also variants stored
   * under a different Vary: the newest response says what the URL varies on.
   */
  set (req: CacheRequest, entry: CachedEntry): boolean {
    if (req.method !== 'GET' || !(entry.ttlMs > 0) || this.#maxEntries < 1) return false
    const primary = primaryKey(req)
    if (primary === undefined || entry.body.length > this.#maxObjectBytes) return false
    const key = variantKey(primary, secondaryKey(entry))
    const bytes = entryBytes(entry, key)
    if (bytes > this.#maxBytes) return false

    for (const other of [...(this.#variants.get(primary) ?? [])]) {
      const slot = this.#lru.get(other)
      if (other === key || (slot !== undefined && !sameNames(slot.entry.varyNames, entry.varyNames))) {
        this.#drop(other)
      }
    }
    // Map iteration order is insertion order, and hits re-insert: the first key is the LRU one.
    while (this.#lru.size > 0 && (this.#lru.size + 1 > this.#maxEntries || this.#bytes + bytes > this.#maxBytes)) {
      const oldest = this.#lru.keys().next().value
      if (oldest === undefined) break
      this.#remove(oldest, 'capacity')
    }

    const slot: Slot = { primary, entry, bytes }
    this.#lru.set(key, slot)
    this.#mru = key
    const keys = this.#variants.get(primary) ?? new Set<string>()
    this.#variants.set(primary, keys.add(key))
    this.#bytes += bytes
    // Seconds, +1 so node-cache never drops an entry our clock still considers usable.
    this.#timers.set(key, slot, (entry.ttlMs + this.#staleMs) / 1000 + 1)
    return true
  }

  /** RFC 9111 §4.4: drops every stored variant of `host` + `url`; returns how many. */
  invalidateUrl (host: string, url: string): number {
    const primary = primaryKeyFor(host, url)
    if (primary === undefined) return 0
    const keys = [...(this.#variants.get(primary) ?? [])]
    for (const key of keys) this.#remove(key, 'invalidated')
    return keys.length
  }

  /** Drops everything (a new content revision was published). Counters are kept. */
  clear (): void {
    // flushAll emits no per-key 'del', so our indexes are reset by hand.
    this.#timers.flushAll()
    this.#lru.clear()
    this.#variants.clear()
    this.#mru = undefined
    this.#bytes = 0
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
    const names = (first === undefined ? undefined : this.#lru.get(first)?.entry.varyNames) ?? []
    return variantKey(primary, secondaryKey({ varyNames: names, varyValues: varyValues(req, names) }))
  }

  stats (): CacheStats {
    return {
      entries: this.#lru.size,
      bytes: this.#bytes,
      hits: this.#hits,
      misses: this.#misses,
      stale: this.#stale,
      evictions: this.#evictions,
      expirations: this.#expirations
    }
  }

  /** Subscribes to removals (for metrics); returns the unsubscribe function. */
  onEvict (listener: EvictionListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Stops node-cache's sweep timer (it is unref'd, so this is only for tidy shutdowns). */
  close (): void {
    this.#timers.close()
  }

  /**
   * Most recently stored matching variant that is fresh (or, with `stale`, may stand in for a
   * failed upstream); prunes dead variants met. Runs on every hit: no allocation unless a
   * variant is pruned.
   */
  #select (req: CacheRequest, now: number, stale: boolean): string | undefined {
    if (!GET_OR_HEAD.has(req.method)) return undefined
    const primary = primaryKey(req)
    if (primary === undefined) return undefined
    const keys = this.#variants.get(primary)
    if (keys === undefined) return undefined
    let best: string | undefined
    let bestAt = -Infinity
    let dead: string[] | undefined
    for (const key of keys) {
      const slot = this.#lru.get(key)
      if (slot === undefined) continue
      const expires = expiresAt(slot)
      if (now >= expires + this.#staleMs) {
        // Past any use; node-cache would drop it later by its own clock, we do it now
        // (after the loop: removing from the set being iterated would skip keys).
        (dead ??= []).push(key)
        continue
      }
      const usable = now < expires || (stale && slot.entry.mayServeStale)
      // §4.1: when several variants match, the most recent one may be used.
      if (usable && slot.entry.storedAt > bestAt && variantMatches(slot.entry, req)) {
        best = key
        bestAt = slot.entry.storedAt
      }
    }
    if (dead !== undefined) for (const key of dead) this.#remove(key, 'expired')
    return best
  }

  #hit (key: string, now: number): CacheHit | undefined {
    const slot = this.#lru.get(key)
    if (slot === undefined) return undefined
    if (key !== this.#mru) {
      // Moved to the recent end; a run of hits on one key (a front page) moves it once.
      this.#lru.delete(key)
      this.#lru.set(key, slot)
      this.#mru = key
    }
    const residentSec = Math.floor(Math.max(0, now - slot.entry.storedAt) / 1000)
    return { entry: slot.entry, ageSec: slot.entry.ageAtStoreSec + residentSec }
  }

  #remove (key: string, reason: EvictionReason): void {
    this.#drop(key)
    if (reason === 'capacity') this.#evictions++
    if (reason === 'expired') this.#expirations++
    this.#emit(reason, key)
  }

  #drop (key: string): void {
    // node-cache's 'del' listener does the bookkeeping; forget directly if it no longer had it.
    if (this.#timers.del(key) === 0) this.#forget(key)
  }

  #forget (key: string): void {
    const slot = this.#lru.get(key)
    if (slot === undefined) return
    this.#lru.delete(key)
    if (key === this.#mru) this.#mru = undefined
    this.#bytes -= slot.bytes
    const keys = this.#variants.get(slot.primary)
    keys?.delete(key)
    if (keys?.size === 0) this.#variants.delete(slot.primary)
  }

  #emit (reason: EvictionReason, key: string): void {
    for (const listener of this.#listeners) listener(reason, key)
  }
}

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
