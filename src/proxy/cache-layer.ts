// The response cache in front of the forwarder (DESIGN.md "Cache", docs/cache.md). It owns
// the request flow: lookup, hit, miss with coalescing and storing, invalidation by unsafe
// methods, stale-if-error, and clearing on a new content revision. The rules themselves
// (what may be stored, for how long, the key, the bounds) live in the pure core, src/cache/.
//
// A hit is answered here, synchronously, from memory: no router, no ZooKeeper, no backend,
// no target count changes. The hit path reads only Node's lower-cased header object and
// writes a head prepared when the response was stored (cache-respond.ts).
//
// Two ways in: `handle()` from the fastify route (every method, every request shape), and,
// for plain GET/HEAD requests, `tryAnswer()` (fresh hits) and `tryMiss()` (misses and
// no-cache requests, forwarded on the raw path) straight from Node's request (app.ts). Both
// ways share the rules below: the same lookup, coalescing, storing and stale-if-error.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import {
  Coalescer, DEFAULT_MAX_OBJECT_BYTES, PassMemory, ResponseCache, invalidationTargets, isNotModified, isUnsafeMethod,
  primaryKeyFor, requestBypassesCache, variantMatches, type CacheRequest, type CacheStats, type CachedEntry
} from '../cache/index.js'
import type { CacheFront } from './app.js'
import { noTargetsMessage, type Respond, type UpstreamResponse } from './forward.js'
import type { FastForward, RawResponder } from './fast-forward.js'
import { writeProblem } from './answers.js'
import { PreparedResponse } from './cache-respond.js'
import { MissFetcher, type Settle } from './cache-fetch.js'

/** Why a request skipped the cache lookup. */
export type CacheBypassReason = 'method' | 'request-no-cache' | 'precondition'

/**
 * Counters the cache reports to (src/admin/metrics.ts implements it). Every callback is
 * optional and called synchronously on the request path, so implementations must be cheap
 * (an increment). Sizes and totals that are state, not events (entries, bytes, evictions),
 * are read from `CacheLayer.stats()` instead.
 */
export interface CacheMetricsSink {
  /**
   * A GET/HEAD lookup ends in exactly one of hit or miss. Hit: answered from a stored
   * response (a 304 from it too, and a coalesced miss served from the shared response).
   */
  hit?: () => void
  /** Forwarded upstream after the lookup found nothing usable (a coalesced miss that had to). */
  miss?: () => void
  /** A target failed and a stored response past its freshness was served (stale-if-error). */
  stale?: () => void
  /** The request did not consult the cache (a method other than GET/HEAD, request no-cache, If-Match). */
  bypass?: (reason: CacheBypassReason) => void
  /** A response was stored; `bytes` is its body size. */
  stored?: (bytes: number) => void
  /** A miss waited for another request's upstream response instead of sending its own. */
  coalesced?: () => void
  /** An unsafe method's success dropped `entries` stored responses (RFC 9111 §4.4). */
  invalidated?: (entries: number) => void
  /** The whole cache was dropped (a new content revision). */
  cleared?: () => void
}

export interface CacheLayerOptions {
  /** `--cache-ttl`: longest freshness granted here, seconds (> 0; 0 means no CacheLayer at all). */
  readonly ttlSec: number
  /** `--cache-default-ttl`: freshness for responses without explicit freshness; 0 = heuristic only. */
  readonly defaultTtlSec?: number
  readonly maxEntries: number
  readonly maxBytes: number
  readonly maxObjectBytes?: number
  /** `--stale-if-error`: how long past expiry a stored response may stand in for a failed upstream. */
  readonly staleIfErrorSec?: number
  /** How long a coalesced miss waits for the shared upstream response before sending its own. */
  readonly coalesceTimeoutMs: number
  readonly logger: Logger
  readonly metrics?: CacheMetricsSink | undefined
  /** Clock in ms (tests); default Date.now. */
  readonly now?: () => number
  /** --trust-proxy: peers whose X-Forwarded-Host reaches the origin as sent (forward.ts). */
  readonly trustForwarded?: (peerAddress: string) => boolean
}

export interface CacheLayerStats extends CacheStats {
  /** Responses stored. */
  readonly stored: number
  /** Misses answered from another request's upstream response. */
  readonly coalesced: number
  /** Stored responses dropped by unsafe methods (RFC 9111 §4.4). */
  readonly invalidated: number
  /** Whole-cache clears (content revision changes). */
  readonly clears: number
  /** Keys remembered as not storable: their misses skip coalescing (pass-memory.ts). */
  readonly uncacheableKeys: number
}

/** How one miss goes upstream and answers, on the fastify path or the raw one (#coalesce). */
interface MissWays {
  /** Forward as the coalescing leader; `settle` reports the result to the waiters. */
  lead: (settle: Settle) => void
  /** Forward on its own: the shared result cannot answer this request. */
  own: () => void
  /** Answer from a stored (or just-fetched) response. */
  answer: (prepared: PreparedResponse, ageSec: number) => void
}

const NO_SINK: CacheMetricsSink = Object.freeze({})
/** Uncacheable keys remembered at most (pass-memory.ts), and their total length. */
const PASS_MEMORY_KEYS = 10_000
const PASS_MEMORY_CHARS = 4 * 1024 * 1024
const ignore = (): void => {}

export class CacheLayer implements CacheFront {
  readonly #store: ResponseCache
  readonly #fetcher: MissFetcher
  readonly #coalescer = new Coalescer<PreparedResponse | undefined>()
  /** Keys whose misses skip coalescing: their last response could not be stored. */
  readonly #passes: PassMemory
  readonly #prepared = new WeakMap<CachedEntry, PreparedResponse>()
  readonly #sink: CacheMetricsSink
  readonly #log: Logger
  readonly #now: () => number
  readonly #coalesceTimeoutMs: number
  /** Requests whose response is not stored: X-Cache MISS, no stale fallback. */
  readonly #pass: Respond
  /** HEAD misses: X-Cache MISS, and a stale stored GET if every target fails. */
  readonly #passOrStale: Respond
  /** Unsafe methods: untouched, but a success invalidates (RFC 9111 §4.4). */
  readonly #invalidating: Respond
  #stored = 0
  #coalesced = 0
  #invalidated = 0
  #clears = 0

  constructor (opts: CacheLayerOptions) {
    this.#now = opts.now ?? Date.now
    this.#coalesceTimeoutMs = opts.coalesceTimeoutMs
    this.#log = opts.logger
    this.#sink = opts.metrics ?? NO_SINK
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
      maxObjectBytes: Math.min(opts.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES, opts.maxBytes),
      onStored: (entry, prepared) => {
        this.#prepared.set(entry, prepared)
        this.#stored++
        this.#sink.stored?.(entry.body.length)
      },
      serveStale: (request, res, claim) => this.#serveStale(request, res, claim),
      onVerdict: (request, storable) => {
        const key = this.#store.coalesceKey(request)
        if (key === undefined) return
        if (storable) this.#passes.forget(key)
        else this.#passes.remember(key)
      },
      ...(opts.trustForwarded === undefined ? {} : { trustForwarded: opts.trustForwarded })
    })
    this.#pass = (_request, reply, res) => { reply.header('x-cache', 'MISS').send(res.stream) }
    const passOrStale: Respond = (request, reply, res, target) => {
      if (!this.#fetcher.staleForError(request, reply, res)) this.#pass(request, reply, res, target)
    }
    passOrStale.onFailure = (reply) => this.#serveStale(reply.request, reply.raw, () => { reply.hijack() })
    this.#passOrStale = passOrStale
    this.#invalidating = (request, reply, res) => {
      this.#invalidate(request, res)
      reply.send(res.stream)
    }
  }

  handle (request: FastifyRequest, reply: FastifyReply, forward: (respond?: Respond) => void): void {
    const method = request.method
    if (method !== 'GET' && method !== 'HEAD') {
      this.#sink.bypass?.('method')
      // OPTIONS is safe and not stored: passed on untouched, like the unsafe methods.
      forward(isUnsafeMethod(method) ? this.#invalidating : undefined)
      return
    }
    const head = method === 'HEAD'
    const h = request.headers
    // Node lower-cases header names, so absent fields cost a property read, not a scan.
    if ((h['cache-control'] !== undefined || h.pragma !== undefined) && requestBypassesCache(request)) {
      this.#bypass(request, reply, forward, head, 'request-no-cache')
      return
    }
    // RFC 9111 §4.3.2: If-Match and If-Unmodified-Since are not for a cache to evaluate.
    if (h['if-match'] !== undefined || h['if-unmodified-since'] !== undefined) {
      this.#bypass(request, reply, forward, head, 'precondition')
      return
    }
    const hit = this.#store.get(request)
    if (hit !== undefined) {
      this.#sink.hit?.()
      this.#answer(request, reply, this.#preparedFor(hit.entry), hit.ageSec, head)
    } else if (head) {
      // A HEAD miss is forwarded as a HEAD and not stored (no body to store; policy.ts).
      this.#sink.miss?.()
      forward(this.#passOrStale)
    } else {
      this.#miss(request, reply, forward, true)
    }
  }

  /**
   * The fast path for fresh hits, called with Node's raw request before fastify routes it
   * (app.ts): answers and returns true only for a plain GET/HEAD whose fresh stored response
   * can be written as is; anything else returns false untouched and takes the full path
   * through fastify and handle(). Same rules, same answer, fewer steps per hit.
   */
  tryAnswer (req: IncomingMessage, res: ServerResponse): boolean {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD') return false
    const h = req.headers
    if (h['if-match'] !== undefined || h['if-unmodified-since'] !== undefined) return false
    // A browser reload's `max-age=0` is looked up like any request; `no-cache` skips the lookup.
    if ((h['cache-control'] !== undefined || h.pragma !== undefined) && requestBypassesCache(req as CacheRequest)) return false
    const hit = this.#store.get(req as CacheRequest)
    if (hit === undefined) return false
    this.#sink.hit?.()
    this.#write(req as CacheRequest, res, this.#preparedFor(hit.entry), hit.ageSec, method === 'HEAD')
    return true
  }

  /**
   * A GET or HEAD from Node's raw request that `tryAnswer` did not answer (app.ts), forwarded
   * on the raw path with `forward`, as `handle()` would: a GET miss coalesced, stored
   * and with stale-if-error; a HEAD miss passed on (stale-if-error too); a request that said
   * `no-cache` passed on, its GET response stored. Returns false untouched for what it leaves
   * to the full path: other methods, preconditions (If-Match, If-Unmodified-Since), no cache
   * key, no target to forward to (the full path answers 503, or a stale copy).
   */
  tryMiss (req: IncomingMessage, res: ServerResponse, forward: FastForward): boolean {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD') return false
    const h = req.headers
    if (h['if-match'] !== undefined || h['if-unmodified-since'] !== undefined || !forward.routable()) return false
    const request = req as CacheRequest
    const head = method === 'HEAD'
    // Routable was checked in this same tick; a coalescing waiter's turn comes later.
    const send = (responder: RawResponder): void => {
      if (!forward(req, res, responder) && !responder.failed()) writeProblem(req, res, 'ZKPROXY_ERR_PROXY_NO_TARGETS', noTargetsMessage(true))
    }
    if ((h['cache-control'] !== undefined || h.pragma !== undefined) && requestBypassesCache(request)) {
      this.#sink.bypass?.('request-no-cache')
      // The client asked for the origin: its response may refresh the store, never a stale copy.
      send(head ? this.#fetcher.rawPass(req, res, false) : this.#fetcher.rawResponder(req, res, undefined, false))
      return true
    }
    if (head) {
      // A HEAD miss is forwarded as a HEAD and not stored (no body to store; policy.ts).
      this.#sink.miss?.()
      send(this.#fetcher.rawPass(req, res, true))
      return true
    }
    const key = this.#store.coalesceKey(request)
    if (key === undefined) return false
    const fetch = (lead: Settle | undefined): void => { send(this.#fetcher.rawResponder(req, res, lead, true)) }
    this.#coalesce(key, request, res, {
      lead: fetch,
      own: () => { fetch(undefined) },
      answer: (prepared, ageSec) => { this.#write(request, res, prepared, ageSec, false) }
    }, true)
    return true
  }

  /** Drops every stored response (a new content revision was published). */
  clear (reason: string): void {
    this.#fetcher.noteCleared()
    const { entries, bytes } = this.#store.stats()
    this.#store.clear()
    // New content may be cacheable where the old was not.
    this.#passes.clear()
    this.#clears++
    this.#sink.cleared?.()
    this.#log.info({ reason, entries, bytes }, 'cache cleared')
  }

  stats (): CacheLayerStats {
    return {
      ...this.#store.stats(),
      stored: this.#stored,
      coalesced: this.#coalesced,
      invalidated: this.#invalidated,
      clears: this.#clears,
      uncacheableKeys: this.#passes.size
    }
  }

  close (): void {
    this.#store.close()
  }

  #bypass (request: FastifyRequest, reply: FastifyReply, forward: (respond?: Respond) => void, head: boolean, reason: CacheBypassReason): void {
    this.#sink.bypass?.(reason)
    // The client asked for the origin: its response may refresh the store (unless the
    // request said no-store, which evaluate() checks), but a stale copy is never the answer.
    forward(head ? this.#pass : this.#fetcher.respond(request, reply, undefined, false))
  }

  /**
   * A GET miss. Concurrent misses for one key share one upstream request (Coalescer): the
   * first forwards, the others wait for its result and are answered from it when the
   * response's Vary does not tell them apart. When it was an error, not storable, or too
   * large, each waiter sends its own request: it gets an honest answer, never another
   * client's uncacheable one. A waiter whose variant differs (the first response brought a
   * Vary nobody knew) looks up and coalesces once more, now keyed by that variant.
   */
  #miss (request: FastifyRequest, reply: FastifyReply, forward: (respond?: Respond) => void, again: boolean): void {
    const key = this.#store.coalesceKey(request)
    if (key === undefined) {
      this.#sink.miss?.()
      forward(this.#pass) // no cache key (e.g. an odd Host): never stored, never shared
      return
    }
    const fetch = (lead: Settle | undefined): void => { forward(this.#fetcher.respond(request, reply, lead, true)) }
    this.#coalesce(key, request, reply.raw, {
      lead: fetch,
      own: () => { fetch(undefined) },
      answer: (prepared, ageSec) => { this.#answer(request, reply, prepared, ageSec, false) }
    }, again)
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
      this.#sink.miss?.()
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
      this.#sink.miss?.()
      io.lead(lead.settle)
      return
    }
    this.#coalesced++
    this.#sink.coalesced?.()
    const own = (): void => {
      this.#sink.miss?.()
      io.own()
    }
    shared.then((prepared) => {
      if (res.destroyed) return
      if (prepared === undefined) {
        own()
      } else if (variantMatches(prepared.entry, request)) {
        this.#sink.hit?.()
        io.answer(prepared, prepared.ageAt(this.#now()))
      } else if (again) {
        const hit = this.#store.get(request)
        if (hit === undefined) {
          // Keyed by the variant the first response named now, so never undefined here.
          const variantKey = this.#store.coalesceKey(request)
          if (variantKey === undefined) own()
          else this.#coalesce(variantKey, request, res, io, false)
        } else {
          this.#sink.hit?.()
          io.answer(this.#preparedFor(hit.entry), hit.ageSec)
        }
      } else {
        own()
      }
    }, () => { if (!res.destroyed) own() }) // a timed-out wait tries on its own
  }

  /** Answers through fastify from a stored response (see #write). */
  #answer (request: FastifyRequest, reply: FastifyReply, prepared: PreparedResponse, ageSec: number, head: boolean): void {
    // Written straight to Node's response from the prepared head, fastify told it is done
    // (its 'finish' listener still runs onResponse hooks and the access log).
    reply.hijack()
    this.#write(request, reply.raw, prepared, ageSec, head)
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
   * `claim` runs before anything is written (the fastify path hijacks its reply).
   */
  #serveStale (request: CacheRequest, res: ServerResponse, claim?: () => void): boolean {
    const hit = this.#store.getStale(request)
    if (hit === undefined) return false
    const prepared = this.#preparedFor(hit.entry)
    const head = request.method === 'HEAD'
    claim?.()
    if (this.#now() < hit.entry.storedAt + hit.entry.ttlMs) {
      // Stored by another request meanwhile and still fresh: served as a hit (already
      // counted as a miss: one lookup, one count).
      prepared.writeHit(res, hit.ageSec, head)
      return true
    }
    this.#sink.stale?.()
    this.#log.debug({ url: request.url, ageSec: hit.ageSec }, 'upstream failed; serving a stale stored response')
    prepared.writeStale(res, hit.ageSec, head)
    return true
  }

  /** RFC 9111 §4.4: a non-error response to an unsafe method invalidates the URL (and Location, Content-Location). */
  #invalidate (request: FastifyRequest, res: UpstreamResponse): void {
    const status = res.statusCode
    if (status < 200 || status > 399) return
    let dropped = 0
    for (const target of invalidationTargets(request, { status, headers: res.headers })) {
      dropped += this.#store.invalidateUrl(target.host, target.url)
      const primary = primaryKeyFor(target.host, target.url)
      if (primary !== undefined) this.#fetcher.noteInvalidated(primary)
    }
    if (dropped > 0) {
      this.#invalidated += dropped
      this.#sink.invalidated?.(dropped)
    }
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
