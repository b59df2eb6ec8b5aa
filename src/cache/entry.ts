import { varyValues } from './key.js'
import type { KeyedRequest } from './key.js'
import type { Storable } from './policy.js'
import type { HeaderMap } from './types.js'
import type { RevisionCell } from './coherence.js'

/**
 * One stored response variant. Headers are stored as the caller gives them (the proxy
 * strips hop-by-hop fields first); the body is fully buffered, bounded by `maxObjectBytes`.
 */
export interface CachedEntry {
  readonly status: number
  readonly headers: HeaderMap
  readonly body: Buffer
  /** When it was stored (ms, injected clock). */
  readonly storedAt: number
  /** Fresh for this long after `storedAt` (ms). */
  readonly ttlMs: number
  /** Upstream `Age` at store time, seconds; the served `Age` adds resident time (§4.2.3). */
  readonly ageAtStoreSec: number
  /** False when `must-revalidate`, `proxy-revalidate` or `s-maxage` forbid stale serving. */
  readonly mayServeStale: boolean
  /** RFC 5861 stale-while-revalidate: how long past `ttlMs` it may answer during a revalidation (ms). */
  readonly staleWhileRevalidateMs?: number
  readonly etag?: string
  readonly lastModified?: string
  /** Normalised Vary names (sorted, lower-case) and the request values stored for. */
  readonly varyNames: readonly string[]
  readonly varyValues: ReadonlyArray<string | null>
  /**
   * The pool and content revision of the target that produced it (coherence.ts): once its cell
   * is dead the entry is not served. Absent: coherent for as long as it is fresh.
   */
  readonly source?: RevisionCell
}

export interface CreateEntryInput {
  /** The request the response answered (its Vary-named headers become the secondary key). */
  readonly req: KeyedRequest
  readonly status: number
  readonly headers: HeaderMap
  readonly body: Buffer
  /** A storable decision from `evaluate()` for this very request and response. */
  readonly decision: Storable
  readonly now: number
  readonly source?: RevisionCell | undefined
}

/**
 * Builds an entry from an `evaluate()` decision. The stored headers are a copy without
 * `Age`: a hit recomputes it (§4.2.3), and keeping the upstream value would send two.
 */
export function createEntry (input: CreateEntryInput): CachedEntry {
  // No prototype: a field named `constructor` or `__proto__` is stored like any other.
  const headers: HeaderMap = Object.create(null) as HeaderMap
  for (const [name, value] of Object.entries(input.headers)) {
    if (value !== undefined && name.toLowerCase() !== 'age') headers[name] = value
  }
  const { decision } = input
  return {
    status: input.status,
    headers,
    body: input.body,
    storedAt: input.now,
    ttlMs: decision.ttlMs,
    ageAtStoreSec: decision.ageSec,
    mayServeStale: decision.mayServeStale,
    ...(decision.staleWhileRevalidateMs > 0 ? { staleWhileRevalidateMs: decision.staleWhileRevalidateMs } : {}),
    ...(decision.etag === undefined ? {} : { etag: decision.etag }),
    ...(decision.lastModified === undefined ? {} : { lastModified: decision.lastModified }),
    varyNames: decision.varyNames,
    varyValues: varyValues(input.req, decision.varyNames),
    ...(input.source === undefined ? {} : { source: input.source })
  }
}

// Per-entry bookkeeping (objects, the store's slots, the key) that a byte bound on
// bodies alone would miss: many tiny entries must still count against `maxBytes`.
const ENTRY_OVERHEAD_BYTES = 256

/** Estimated memory held by an entry: body + header text + fixed overhead + the key. */
export function entryBytes (entry: CachedEntry, key: string): number {
  let bytes = ENTRY_OVERHEAD_BYTES + entry.body.length + key.length
  for (const [name, value] of Object.entries(entry.headers)) {
    if (value === undefined) continue
    const values = Array.isArray(value) ? value : [value]
    // name + ": " + value + CRLF per line, as on the wire.
    for (const v of values) bytes += name.length + v.length + 4
  }
  for (const value of entry.varyValues) bytes += value?.length ?? 0
  return bytes
}
