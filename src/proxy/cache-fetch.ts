// Misses on their way upstream and into the store. `respond()` builds the forwarder's Respond
// for one GET: it decides storability when the response head arrives (RFC 9111 §3 via
// `evaluate`), streams the body to the client through a BodyCopy, and stores the copy once
// the upstream ended. The client never waits for the store.
//
// Ordering against clears and invalidations: a response that was requested before the cache
// was cleared (new revision) or its URL invalidated (an unsafe method, RFC 9111 §4.4) may be
// the old content, so it is passed on but not stored. `#seq` numbers those events; a miss
// remembers the number when it started and compares at store time.
import { pipeline, type Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createEntry, evaluate, primaryKey, type CacheRequest, type CachedEntry, type ResponseCache } from '../cache/index.js'
import type { Respond, UpstreamResponse } from './forward.js'
import { PreparedResponse } from './cache-respond.js'
import { BodyCopy } from './body-copy.js'

/** Reports what a waiter may be served (undefined: nothing; fetch your own). */
export type Settle = (prepared: PreparedResponse | undefined) => void

export interface MissFetcherOptions {
  readonly store: ResponseCache
  readonly now: () => number
  readonly cacheTtlSec: number
  readonly defaultTtlSec: number
  /** The copy of a body is given up past this size (the store would refuse it anyway). */
  readonly maxObjectBytes: number
  /** A response was stored. */
  readonly onStored: (entry: CachedEntry, prepared: PreparedResponse) => void
  /** Answers from a stale stored response if there is one (stale-if-error); true when it did. */
  readonly serveStale: (request: FastifyRequest, reply: FastifyReply) => boolean
  /** --trust-proxy: whose X-Forwarded-Host the forwarder passes on as sent. */
  readonly trustForwarded?: (peerAddress: string) => boolean
}

/** Misses for one URL in flight, and the last invalidation that happened while they were. */
interface InFlight {
  count: number
  invalidatedAt: number
}

// RFC 5861 §4: "an error is any situation that would result in a 500, 502, 503, or 504".
const ERROR_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504])
const ignore = (): void => {}

export class MissFetcher {
  readonly #opts: MissFetcherOptions
  #seq = 0
  #clearedAt = 0
  readonly #inFlight = new Map<string, InFlight>()

  constructor (opts: MissFetcherOptions) {
    this.#opts = opts
  }

  /** The whole cache was cleared: responses requested before now are not stored. */
  noteCleared (): void {
    this.#clearedAt = ++this.#seq
  }

  /** `primary` was invalidated: its responses requested before now are not stored. */
  noteInvalidated (primary: string): void {
    const inFlight = this.#inFlight.get(primary)
    if (inFlight !== undefined) inFlight.invalidatedAt = ++this.#seq
  }

  /**
   * The Respond for a GET that goes upstream and may be stored. `lead` is a coalescing
   * leader's settle, called exactly once however the exchange ends; `staleOnError` lets a
   * failing upstream be answered from a stale stored copy.
   */
  respond (request: FastifyRequest, reply: FastifyReply, lead: Settle | undefined, staleOnError: boolean): Respond {
    const primary = primaryKey(request)
    const startedAt = this.#seq
    const inFlight = primary === undefined ? undefined : this.#track(primary)
    let done = false
    const finish: Settle = (prepared) => {
      if (done) return
      done = true
      if (inFlight !== undefined && --inFlight.count === 0 && primary !== undefined) this.#inFlight.delete(primary)
      lead?.(prepared)
    }
    // Covers every way the exchange can end without a stored result (client gone, upstream
    // error mid-body): waiters must never wait for a leader that will not report.
    // A waiter whose client left while it waited has a response that is already closed.
    if (reply.raw.closed) finish(undefined)
    else reply.raw.once('close', () => { finish(undefined) })
    const mayStore = (): boolean =>
      this.#clearedAt <= startedAt && (inFlight === undefined || inFlight.invalidatedAt <= startedAt)

    const respond: Respond = (_request, rep, res) => {
      if (staleOnError && this.staleForError(request, rep, res)) {
        finish(undefined)
        return
      }
      rep.header('x-cache', 'MISS')
      this.#storeWhileSending(request, rep, res, mayStore, finish)
    }
    respond.onFailure = (rep) => {
      finish(undefined)
      return staleOnError && this.#opts.serveStale(request, rep)
    }
    return respond
  }

  /** An upstream 5xx for a GET/HEAD with a usable stale copy: drain the error, serve the copy. */
  staleForError (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): boolean {
    if (!ERROR_STATUSES.has(res.statusCode) || !this.#opts.serveStale(request, reply)) return false
    const body = res.stream as Readable
    body.on('error', ignore)
    body.resume() // read to the end so the upstream connection can be reused
    return true
  }

  #storeWhileSending (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse, mayStore: () => boolean, finish: Settle): void {
    const opts = this.#opts
    const status = res.statusCode
    const now = opts.now()
    const decision = evaluate(asSentUpstream(request, this.#opts.trustForwarded), { status, headers: res.headers }, {
      cacheTtlSec: opts.cacheTtlSec, defaultTtlSec: opts.defaultTtlSec, now
    })
    const declared = res.headers['content-length']
    if (!decision.storable || (typeof declared === 'string' && !opts.store.fits(Number(declared)))) {
      finish(undefined)
      reply.send(res.stream)
      return
    }
    const copy = new BodyCopy(opts.maxObjectBytes, (body) => {
      if (!mayStore()) {
        finish(undefined)
        return
      }
      const entry = createEntry({ req: request, status, headers: res.headers, body, decision, now })
      const prepared = new PreparedResponse(entry)
      if (opts.store.set(request, entry)) opts.onStored(entry, prepared)
      // Storable by policy even if the bounds refused it: waiters may share it.
      finish(prepared)
    }, () => { finish(undefined) })
    pipeline(res.stream as Readable, copy, (err) => { if (err !== undefined && err !== null) finish(undefined) })
    reply.send(copy)
  }

  #track (primary: string): InFlight {
    let inFlight = this.#inFlight.get(primary)
    if (inFlight === undefined) {
      inFlight = { count: 0, invalidatedAt: 0 }
      this.#inFlight.set(primary, inFlight)
    }
    inFlight.count++
    return inFlight
  }
}

/**
 * The request as the upstream saw it, for `evaluate()`: the forwarder replaces a client's
 * X-Forwarded-Host with the downstream Host (headers.ts), so a value the client sent there
 * never reached the origin and must not make the response look poisonable.
 */
function asSentUpstream (request: FastifyRequest, trust: ((peerAddress: string) => boolean) | undefined): CacheRequest {
  const h = request.headers
  if (h['x-forwarded-host'] === undefined) return request
  // From a trusted peer it did reach the origin: a value other than Host makes the response
  // unstorable (policy.ts), or one front client's X-Forwarded-Host would pick what all get.
  if (trust?.(request.raw.socket.remoteAddress ?? '') === true) return request
  return { method: request.method, url: request.url, headers: { ...h, 'x-forwarded-host': h.host } }
}
