// The cache stage of the request path (docs/cache.md). It classifies each request once: a
// fresh hit is answered here, synchronously, from memory (no router, no ZooKeeper, no backend,
// no target count changes); everything else goes on to the next stage (`forward`) with the one
// recorder that fits it (cache-fetch.ts): a GET miss that may be stored (coalesced with
// concurrent misses for the same key), a request that bypasses the lookup, a HEAD miss that is
// only marked, or an unsafe method whose success invalidates (RFC 9111 §4.4). It also clears
// everything when the content revision changes. The rules themselves (what may be stored, for
// how long, the key, the bounds) live in the pure core, src/cache/.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import {
  Coalescer, DEFAULT_MAX_OBJECT_BYTES, PassMemory, ResponseCache, invalidationTargets, isNotModified, isUnsafeMethod,
  primaryKeyFor, requestBypassesCache, variantMatches, type CacheRequest, type CacheStats, type CachedEntry, type PurgeFilter, type RevisionLiveness, purgeMatcher
} from '../cache/index.js'
import type { ResponseRecorder } from './exchange.js'
import { PreparedResponse } from './cache-respond.js'
import { MissFetcher, type Settle } from './cache-fetch.js'
import { fieldMap } from './headers.js'

/** Why a request skipped the cache lookup. */
export type CacheBypassReason = 'method' | 'request-no-cache' | 'precondition'

/**
 * What the cache stage has done, each event counted once, here (an increment on the request
 * path); the admin listener exports these at scrape time.
 */
export interface CacheTallies {
  /**
   * A GET/HEAD lookup ends in exactly one of hit or miss. Hit: answered from a stored
   * response (a 304 from it too, and a coalesced miss served from the shared response).
   */
  hits: number
  /** Forwarded upstream after the lookup found nothing usable (a coalesced miss that had to). */
  misses: number
  /** A target failed and a stored response past its freshness was served (stale-if-error). */
  stale: number
  /**
   * Answered from a stored response past its freshness, inside its stale-while-revalidate
   * window, while another request revalidated it (RFC 5861 §3); counted as hits too.
   */
  revalidating: number
  /** Requests that did not consult the cache, by reason. */
  readonly bypasses: Record<CacheBypassReason, number>
  /** Responses stored, and their body bytes. */
  stored: number
  storedBytes: number
  /** Misses answered from another request's upstream response. */
  coalesced: number
  /** Stored responses dropped by unsafe methods (RFC 9111 §4.4). */
  invalidated: number
  /** Whole-cache clears (content revision changes). */
  clears: number
  /** Stored responses dropped because no live target of their pool carries their revision any more. */
  revisionDrops: number
  /** Stored responses dropped by fleet-wide purges. */
  purged: number
}

export interface CacheStageOptions {
  /** `--cache-ttl`: longest freshness granted here, seconds (> 0; 0 means no CacheStage at all). */
  readonly ttlSec: number
  /** `--cache-default-ttl`: freshness for responses without explicit freshness; 0 = heuristic only. */
  readonly defaultTtlSec?: number
  /** `--cdn-cache-control-field`: the targeted field obeyed first (RFC 9213), lower-case; '' none. */
  readonly targetedField?: string
  readonly maxEntries: number
  readonly maxBytes: number
  readonly maxObjectBytes?: number
  /** `--stale-if-error`: how long past expiry a stored response may stand in for a failed upstream. */
  readonly staleIfErrorSec?: number
  /** How long a coalesced miss waits for the shared upstream response before sending its own. */
  readonly coalesceTimeoutMs: number
  readonly logger: Logger
  /** Clock in ms (tests); default Date.now. */
  readonly now?: () => number
  /** --trust-proxy: peers whose X-Forwarded-Host reaches the origin as sent (headers.ts). */
  readonly trustForwarded?: (peerAddress: string) => boolean
  /**
   * The live revisions per pool, kept by the router: each stored response remembers the pool and
   * revision that produced it and is dropped once no live target of that pool carries it.
   */
  readonly liveness?: RevisionLiveness
}

export interface CacheStageStats extends CacheStats, Readonly<CacheTallies> {
  /** Keys remembered as not storable: their misses skip coalescing (pass-memory.ts). */
  readonly uncacheableKeys: number
}

/** How one miss goes upstream and answers (#coalesce). */
interface MissWays {
  /** Forward as the coalescing leader; `settle` reports the result to the waiters. */
  lead: (settle: Settle) => void
  /** Forward on its own: the shared result cannot answer this request. */
  own: () => void
  /** Answer from a stored (or just-fetched) response. */
  answer: (prepared: PreparedResponse, ageSec: number) => void
}

/** The next stage: balance and exchange, with the recorder for the response (none: untouched). */
export type Forward = (recorder: ResponseRecorder | undefined) => void

/** How long a new /cacheAge revision waits for a target carrying it before it clears everything. */
const REVISION_GRACE_MS = 2000
/** Uncacheable keys remembered at most (pass-memory.ts), and their total length. */
const PASS_MEMORY_KEYS = 10_000
const PASS_MEMORY_CHARS = 4 * 1024 * 1024
const ignore = (): void => {}

/**
 * Why a GET or HEAD skips the lookup, or undefined when it is looked up. Node lower-cases header
 * names, so absent fields cost a property read, not a scan. A browser reload's `max-age=0` is
 * looked up like any request; `no-cache` skips the lookup. RFC 9111 §4.3.2: If-Match and
 * If-Unmodified-Since are not for a cache to evaluate.
 */
function skipsLookup (request: CacheRequest): CacheBypassReason | undefined {
  const h = request.headers
  if ((h['cache-control'] !== undefined || h.pragma !== undefined) && requestBypassesCache(request)) return 'request-no-cache'
  if (h['if-match'] !== undefined || h['if-unmodified-since'] !== undefined) return 'precondition'
  return undefined
}

export class CacheStage {
  readonly #store: ResponseCache
  readonly #fetcher: MissFetcher
  readonly #coalescer = new Coalescer<PreparedResponse | undefined>()
  /** Keys whose misses skip coalescing: their last response could not be stored. */
  readonly #passes: PassMemory
  readonly #prepared = new WeakMap<CachedEntry, PreparedResponse>()
  readonly #t: CacheTallies = {
    hits: 0, misses: 0, stale: 0, revalidating: 0, bypasses: { method: 0, 'request-no-cache': 0, precondition: 0 }, stored: 0, storedBytes: 0, coalesced: 0, invalidated: 0, clears: 0, revisionDrops: 0, purged: 0
  }

  readonly #log: Logger
  readonly #liveness: RevisionLiveness | undefined
  #pendingRevision: { cancel: () => void } | undefined
  readonly #now: () => number
  readonly #coalesceTimeoutMs: number

  constructor (opts: CacheStageOptions) {
    this.#now = opts.now ?? Date.now
    this.#coalesceTimeoutMs = opts.coalesceTimeoutMs
    this.#log = opts.logger
    this.#liveness = opts.liveness
    this.#store = new ResponseCache({
      maxEntries: opts.maxEntries,
      maxBytes: opts.maxBytes,
      ...(opts.maxObjectBytes === undefined ? {} : { maxObjectBytes: opts.maxObjectBytes }),
      staleIfErrorSec: opts.staleIfErrorSec ?? 0,
      now: this.#now
    })
    this.#passes = new PassMemory({
      ttlMs: opts.ttlSec * 1000, maxKeys: PASS_MEMORY_KEYS, maxKeyChars: PASS_MEMORY_CHARS, ...(opts.now === undefined ? {} : { now: opts.now })
    })
    this.#fetcher = new MissFetcher({
      store: this.#store,
      now: this.#now,
      cacheTtlSec: opts.ttlSec,
      defaultTtlSec: opts.defaultTtlSec ?? 0,
      ...(opts.targetedField === undefined ? {} : { targetedField: opts.targetedField }),
      maxObjectBytes: Math.min(opts.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES, opts.maxBytes),
      onStored: (entry, prepared) => {
        this.#prepared.set(entry, prepared)
        this.#t.stored++
        this.#t.storedBytes += entry.body.length
      },
      serveStale: (request, res) => this.#serveStale(request, res),
      onVerdict: (request, storable) => {
        const key = this.#store.coalesceKey(request)
        if (key === undefined) return
        if (storable) this.#passes.forget(key)
        else this.#passes.remember(key)
      },
      ...(opts.trustForwarded === undefined ? {} : { trustForwarded: opts.trustForwarded }),
      liveness: opts.liveness
    })
    // A revision left a pool: its entries are dropped now, not only when next asked for (a hit
    // would skip them anyway), so they stop holding memory and the figures say what is servable.
    opts.liveness?.onDied((dead) => {
      const dropped = this.#store.dropIncoherent()
      this.#t.revisionDrops += dropped
      if (dropped > 0) this.#log.info({ dropped, gone: dead.map((c) => ({ pool: c.pool, revision: c.revision ?? null })) }, 'cache entries of a departed revision dropped')
    })
  }

  /**
   * Classifies the request once and acts: answers a fresh hit (or a 304 from it) itself, or
   * calls `forward` (maybe later: a coalesced miss waits for its leader) with the recorder for
   * the response.
   */
  handle (req: IncomingMessage, res: ServerResponse, forward: Forward, looked = false): void {
    const method = req.method
    const request = req as CacheRequest
    if (method !== 'GET' && method !== 'HEAD') {
      this.#t.bypasses.method++
      // OPTIONS is safe and not stored: passed on untouched, like the unsafe methods.
      forward(isUnsafeMethod(method ?? '') ? this.#invalidating(request) : undefined)
      return
    }
    const head = method === 'HEAD'
    const skip = skipsLookup(request)
    if (skip !== undefined) {
      this.#bypass(req, res, forward, head, skip)
      return
    }
    // `looked`: answerFresh() found nothing a moment ago, in this same turn.
    const hit = looked ? undefined : this.#store.get(request)
    if (hit !== undefined) {
      this.#t.hits++
      this.#write(request, res, this.#preparedFor(hit.entry), hit.ageSec, head)
      return
    }
    if (head) {
      // A HEAD miss is forwarded as a HEAD and not stored (no body to store; policy.ts).
      this.#t.misses++
      forward(this.#fetcher.pass(req, res, true))
      return
    }
    const key = this.#store.coalesceKey(request)
    if (key === undefined) {
      // No cache key (e.g. an odd Host): never stored, never shared.
      this.#t.misses++
      forward(this.#fetcher.pass(req, res, false))
      return
    }
    // RFC 5861 §3: past its freshness but inside its stale-while-revalidate window, a stored
    // response answers at once while one request (the coalescing leader, below) revalidates it.
    if (this.#coalescer.has(key)) {
      const stale = this.#store.getWhileRevalidating(request)
      if (stale !== undefined) {
        this.#t.hits++
        this.#t.revalidating++
        this.#preparedFor(stale.entry).writeStale(res, stale.ageSec, false)
        return
      }
    }
    const fetch = (lead: Settle | undefined): void => { forward(this.#fetcher.record(req, res, lead, true)) }
    this.#coalesce(key, request, res, {
      lead: fetch,
      own: () => { fetch(undefined) },
      answer: (prepared, ageSec) => { this.#write(request, res, prepared, ageSec, false) }
    }, true)
  }

  /**
   * Answers a GET or HEAD from a fresh stored response (or a 304 from it), counted as a hit,
   * and says whether it did. Nothing else: a request it does not answer goes on to handle()
   * (with `looked`), which classifies it; so the checks here are handle()'s first ones.
   */
  answerFresh (req: IncomingMessage, res: ServerResponse): boolean {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD') return false
    if (skipsLookup(req as CacheRequest) !== undefined) return false
    const hit = this.#store.get(req as CacheRequest)
    if (hit === undefined) return false
    this.#t.hits++
    this.#write(req as CacheRequest, res, this.#preparedFor(hit.entry), hit.ageSec, method === 'HEAD')
    return true
  }

  /**
   * `/cacheAge` changed to `revision`: drops the entries of the pools whose live targets carry
   * it (the app being deployed), so a deploy of one app keeps every other app's entries. When
   * no pool carries it yet (the proxy may read /cacheAge before the new target's znode), waits
   * for a snapshot that shows one, up to REVISION_GRACE_MS; a revision no target ever carries
   * (written by hand) clears everything, as /cacheAge always did.
   */
  revisionChanged (revision: string, previous: string | undefined): void {
    const liveness = this.#liveness
    const reason = `revision ${previous ?? '(none)'} → ${revision}`
    this.#pendingRevision?.cancel()
    this.#pendingRevision = undefined
    if (liveness === undefined) {
      this.clear(reason)
      return
    }
    // Responses requested before now may be the old content, wherever they go.
    this.#fetcher.noteCleared()
    if (this.#clearPools(liveness.carriers(revision), reason)) return
    // Pending until a snapshot shows a carrier, the grace ends, or a newer revision replaces it
    // (each of which cancels it: the timer and the subscription are set up right below).
    const pending = {
      cancel: (): void => {
        clearTimeout(timer)
        off()
        if (this.#pendingRevision === pending) this.#pendingRevision = undefined
      }
    }
    const timer = setTimeout(() => {
      pending.cancel()
      this.clear(`${reason} (carried by no live target)`)
    }, REVISION_GRACE_MS)
    timer.unref()
    const off = liveness.onUpdate(() => { if (this.#clearPools(liveness.carriers(revision), reason)) pending.cancel() })
    this.#pendingRevision = pending
  }

  /** Drops the entries stored from `pools`; false when there are none to name. */
  #clearPools (pools: readonly string[], reason: string): boolean {
    if (pools.length === 0) return false
    const named = new Set(pools)
    const dropped = this.#store.dropWhere((entry) => entry.source === undefined || named.has(entry.source.pool))
    this.#passes.clear()
    this.#t.clears++
    this.#log.info({ reason, pools, entries: dropped }, 'cache cleared for a new revision')
    return true
  }

  /**
   * A fleet-wide purge (docs/cache.md "Purge"): drops the entries it names (no filter:
   * everything); responses in flight are passed on but not stored, as they may be the purged
   * content. Returns how many entries were dropped.
   */
  purge (filter: PurgeFilter, reason: string): number {
    this.#fetcher.noteCleared()
    const matches = purgeMatcher(filter)
    const dropped = this.#store.dropWhere((_entry, primary) => matches(primary))
    this.#passes.clear()
    this.#t.purged += dropped
    this.#log.info({ reason, filter, entries: dropped }, 'cache purged')
    return dropped
  }

  /** Drops every stored response. */
  clear (reason: string): void {
    this.#fetcher.noteCleared()
    const { entries, bytes } = this.#store.stats()
    this.#store.clear()
    // New content may be cacheable where the old was not.
    this.#passes.clear()
    this.#t.clears++
    this.#log.info({ reason, entries, bytes }, 'cache cleared')
  }

  stats (): CacheStageStats {
    return {
      ...this.#store.stats(),
      ...this.#t,
      bypasses: { ...this.#t.bypasses },
      uncacheableKeys: this.#passes.size
    }
  }

  #bypass (req: IncomingMessage, res: ServerResponse, forward: Forward, head: boolean, reason: CacheBypassReason): void {
    this.#t.bypasses[reason]++
    // The client asked for the origin: its response may refresh the store (unless the
    // request said no-store, which evaluate() checks), but a stale copy is never the answer.
    forward(head ? this.#fetcher.pass(req, res, false) : this.#fetcher.record(req, res, undefined, false))
  }

  /** An unsafe method's recorder: the response passes untouched; a success invalidates. */
  #invalidating (request: CacheRequest): ResponseRecorder {
    return {
      head: (status, fields) => {
        this.#invalidate(request, status, fieldMap(fields))
        return true
      },
      data: ignore,
      end: ignore,
      failed: () => false
    }
  }

  /**
   * Concurrent misses for `key` share one upstream request: the first caller leads (`lead`
   * forwards and reports through its settle); the others wait and are answered from its
   * result (`answer`), or fetch on their own (`own`). `res` is the client's response: a
   * waiter whose client left has nothing to answer and nothing to fetch.
   */
  #coalesce (key: string, request: CacheRequest, res: ServerResponse, io: MissWays, again: boolean): void {
    if (this.#passes.has(key)) {
      // Known not to be storable: nothing to share, so no waiting for another request.
      this.#t.misses++
      io.own()
      return
    }
    const lead: { settle?: Settle } = {}
    // The coalescer calls this synchronously for the first caller only: that marks the leader.
    const shared = this.#coalescer.run(key, () => new Promise<PreparedResponse | undefined>((resolve) => {
      lead.settle = resolve
    }), this.#coalesceTimeoutMs)
    if (lead.settle !== undefined) {
      // The leader answers its own client through the forwarder; its wait is for the others.
      shared.catch(ignore)
      this.#t.misses++
      io.lead(lead.settle)
      return
    }
    this.#t.coalesced++
    const own = (): void => {
      this.#t.misses++
      io.own()
    }
    shared.then((prepared) => {
      if (res.destroyed) return
      if (prepared === undefined) {
        own()
      } else if (variantMatches(prepared.entry, request)) {
        this.#t.hits++
        io.answer(prepared, prepared.ageAt(this.#now()))
      } else if (again) {
        const hit = this.#store.get(request)
        if (hit === undefined) {
          // Keyed by the variant the first response named now, so never undefined here.
          const variantKey = this.#store.coalesceKey(request)
          if (variantKey === undefined) own()
          else this.#coalesce(variantKey, request, res, io, false)
        } else {
          this.#t.hits++
          io.answer(this.#preparedFor(hit.entry), hit.ageSec)
        }
      } else {
        own()
      }
    }, () => { if (!res.destroyed) own() }) // a timed-out wait tries on its own
  }

  /** Answers from a stored response: 304 when the request's validators match (RFC 9111 §4.3.2). */
  #write (request: CacheRequest, res: ServerResponse, prepared: PreparedResponse, ageSec: number, head: boolean): void {
    const h = request.headers
    if ((h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined) && isNotModified(request, prepared.entry)) {
      prepared.writeNotModified(res, ageSec)
    } else {
      prepared.writeHit(res, ageSec, head)
    }
  }

  /**
   * Stale-if-error (RFC 5861 §4, RFC 9111 §4.2.4): a stored response up to `--stale-if-error`
   * seconds past its freshness, unless it said must-revalidate / proxy-revalidate / s-maxage.
   */
  #serveStale (request: CacheRequest, res: ServerResponse): boolean {
    const hit = this.#store.getStale(request)
    if (hit === undefined) return false
    const prepared = this.#preparedFor(hit.entry)
    const head = request.method === 'HEAD'
    if (this.#now() < hit.entry.storedAt + hit.entry.ttlMs) {
      // Stored by another request meanwhile and still fresh: served as a hit (already
      // counted as a miss: one lookup, one count).
      prepared.writeHit(res, hit.ageSec, head)
      return true
    }
    this.#t.stale++
    this.#log.debug({ url: request.url, ageSec: hit.ageSec }, 'upstream failed; serving a stale stored response')
    prepared.writeStale(res, hit.ageSec, head)
    return true
  }

  /** RFC 9111 §4.4: a non-error response to an unsafe method invalidates the URL (and Location, Content-Location). */
  #invalidate (request: CacheRequest, status: number, headers: Record<string, string | string[]>): void {
    if (status < 200 || status > 399) return
    let dropped = 0
    for (const target of invalidationTargets(request, { status, headers })) {
      dropped += this.#store.invalidateUrl(target.host, target.url)
      const primary = primaryKeyFor(target.host, target.url)
      if (primary !== undefined) this.#fetcher.noteInvalidated(primary)
    }
    this.#t.invalidated += dropped
  }

  #preparedFor (entry: CachedEntry): PreparedResponse {
    let prepared = this.#prepared.get(entry)
    if (prepared === undefined) {
      prepared = new PreparedResponse(entry)
      this.#prepared.set(entry, prepared)
    }
    return prepared
  }
}
