// Misses on their way upstream and into the store, as the exchange's recorders (exchange.ts):
// `record()` for a GET that may be stored decides storability when the response head arrives
// (RFC 9111 §3 via `evaluate`), keeps a copy of the body while it goes to the client, and
// stores the copy once the upstream ended; `pass()` only marks the response. The client never
// waits for the store.
//
// Ordering against clears and invalidations: a response that was requested before the cache
// was cleared (new revision) or its URL invalidated (an unsafe method, RFC 9111 §4.4) may be
// the old content, so it is passed on but not stored. `#seq` numbers those events; a miss
// remembers the number when it started and compares at store time.
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  createEntry, evaluate, isResponseVerdict, primaryKey, type CacheRequest, type CachedEntry, type HeaderMap, type ResponseCache, type RevisionCell,
  type RevisionLiveness, type Storable
} from '../cache/index.js'
import type { ResponseRecorder } from './exchange.js'
import { PreparedResponse } from './cache-respond.js'
import { fieldMap, setField } from './headers.js'

/** Reports what a waiter may be served (undefined: nothing; fetch your own). */
export type Settle = (prepared: PreparedResponse | undefined) => void

export interface MissFetcherOptions {
  readonly store: ResponseCache
  readonly now: () => number
  readonly cacheTtlSec: number
  readonly defaultTtlSec: number
  /** The targeted cache-control field obeyed first (RFC 9213); absent: CDN-Cache-Control. */
  readonly targetedField?: string
  /** The copy of a body is given up past this size (the store would refuse it anyway). */
  readonly maxObjectBytes: number
  /** A response was stored. */
  readonly onStored: (entry: CachedEntry, prepared: PreparedResponse) => void
  /**
   * The response's own verdict on storing (pass-memory.ts): true when it was storable, false
   * when the response itself forbade it or was too large. Not called for errors, or when the
   * request alone made it unstorable.
   */
  readonly onVerdict?: (request: CacheRequest, storable: boolean) => void
  /** Answers from a stale stored response if there is one (stale-if-error); true when it did. */
  readonly serveStale: (request: CacheRequest, res: ServerResponse) => boolean
  /** --trust-proxy: whose X-Forwarded-Host the forwarder passes on as sent. */
  readonly trustForwarded?: (peerAddress: string) => boolean
  /** Which (pool, revision) pairs have a live target; absent: entries carry no revision. */
  readonly liveness?: RevisionLiveness | undefined
}

/** Misses for one URL in flight, and the last invalidation that happened while they were. */
interface InFlight {
  count: number
  invalidatedAt: number
}

/** One miss's bookkeeping: settle it once (however it ends), and may its response be stored? */
interface MissTicket {
  readonly finish: Settle
  /** Already settled: nothing more may be stored for it (a later attempt after a failover). */
  readonly settled: () => boolean
  /** No clear and no invalidation of its URL since it started. */
  readonly mayStore: () => boolean
}

/** A response head that may be stored, with what storing it needs. */
interface Keepable {
  readonly status: number
  readonly headers: HeaderMap
  readonly decision: Storable
  readonly now: number
  readonly source: RevisionCell | undefined
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
   * The recorder for a GET that may be stored. `lead` is a coalescing leader's settle, called
   * exactly once however the exchange ends; `staleOnError` lets a failing upstream be answered
   * from a stale stored copy.
   */
  record (req: IncomingMessage, res: ServerResponse, lead: Settle | undefined, staleOnError: boolean): ResponseRecorder {
    const request = req as CacheRequest
    const ticket = this.#begin(request, res, lead)
    const { finish, mayStore } = ticket
    let keep: Keepable | undefined
    let chunks: Buffer[] | undefined
    let size = 0
    return {
      head: (status, fields, _headers, target, pool) => {
        // Called again after a failover (the first target's head could not be passed on).
        chunks = undefined
        size = 0
        if (staleOnError && this.#staleForStatus(status, request, res)) {
          finish(undefined)
          return false
        }
        const headers = fieldMap(fields)
        setField(fields, 'x-cache', 'MISS')
        // A first target's head already settled this miss (its waiters went their own way, and
        // its URL is no longer tracked for invalidations): this response is passed on only.
        const source = this.#opts.liveness?.cell(pool.key, target.info.revision)
        if (status === 304 && !ticket.settled() && mayStore()) this.#freshen(request, req.socket.remoteAddress ?? '', headers, source)
        keep = ticket.settled()
          ? undefined
          : this.#keepable(request, req.socket.remoteAddress ?? '', status, headers, mayStore, source)
        if (keep === undefined) finish(undefined)
        else chunks = []
        return true
      },
      data: (chunk) => {
        if (chunks === undefined) return
        size += chunk.length
        if (size <= this.#opts.maxObjectBytes) {
          chunks.push(chunk)
          return
        }
        chunks = undefined
        this.#unstorable(request, mayStore)
        finish(undefined)
      },
      end: () => {
        if (chunks === undefined || keep === undefined) return
        const body = joinChunks(chunks, size)
        chunks = undefined
        this.#store(request, keep, body, mayStore, finish)
      },
      failed: () => {
        finish(undefined)
        return staleOnError && this.#opts.serveStale(request, res)
      }
    }
  }

  /**
   * The recorder for a request whose response is never stored (a HEAD, a request with no cache
   * key): marked `X-Cache: MISS`, and with `staleOnError` a stale stored copy instead of an
   * upstream error.
   */
  pass (req: IncomingMessage, res: ServerResponse, staleOnError: boolean): ResponseRecorder {
    const request = req as CacheRequest
    return {
      head: (status, fields) => {
        if (staleOnError && this.#staleForStatus(status, request, res)) return false
        setField(fields, 'x-cache', 'MISS')
        return true
      },
      data: ignore,
      end: ignore,
      failed: () => staleOnError && this.#opts.serveStale(request, res)
    }
  }

  /** An upstream error status (RFC 5861 §4) with a usable stale copy: the copy is served. */
  #staleForStatus (status: number, request: CacheRequest, res: ServerResponse): boolean {
    return ERROR_STATUSES.has(status) && this.#opts.serveStale(request, res)
  }

  /** Starts one miss's bookkeeping; `res` is the client's response. */
  #begin (request: CacheRequest, res: ServerResponse, lead: Settle | undefined): MissTicket {
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
    const settled = (): boolean => done
    // Covers every way the exchange can end without a stored result (client gone, upstream
    // error mid-body): waiters must never wait for a leader that will not report.
    // A waiter whose client left while it waited has a response that is already closed.
    if (res.closed) finish(undefined)
    else res.once('close', () => { finish(undefined) })
    const mayStore = (): boolean =>
      this.#clearedAt <= startedAt && (inFlight === undefined || inFlight.invalidatedAt <= startedAt)
    return { finish, settled, mayStore }
  }

  /**
   * RFC 9111 §4.3.4: a 304 to a conditional request that went upstream (the client's own
   * validators) freshens the stored response it validates: "the cache MUST ... use other header
   * fields provided in the 304 (Not Modified) response to replace all instances of the
   * corresponding header fields in the stored response" (§3.2; Content-Length excepted). Which
   * stored response: the one whose strong ETag equals the 304's strong ETag; else, with a weak
   * ETag or a Last-Modified, the one carrying the same; else, with no validator at all, a stored
   * response that has none either. The 304 itself goes to the client unchanged.
   */
  #freshen (request: CacheRequest, peer: string, headers: HeaderMap, source: RevisionCell | undefined): void {
    const opts = this.#opts
    const stored = opts.store.getStale(request)?.entry
    if (stored === undefined || !validates(headers, stored)) return
    const merged: HeaderMap = { ...stored.headers }
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || NOT_UPDATED.has(name)) continue
      merged[name] = value
    }
    const now = opts.now()
    const sent = asSentUpstream(request, peer, opts.trustForwarded)
    const decision = evaluate(sent, { status: stored.status, headers: merged }, {
      cacheTtlSec: opts.cacheTtlSec, defaultTtlSec: opts.defaultTtlSec, now, ...(opts.targetedField === undefined ? {} : { targetedField: opts.targetedField })
    })
    if (!decision.storable) {
      // The origin now says it must not be kept (no-store, private …): it is not served again.
      opts.store.dropWhere((entry) => entry === stored)
      return
    }
    const entry = createEntry({ req: request, status: stored.status, headers: merged, body: stored.body, decision, now, source })
    if (opts.store.set(request, entry)) opts.onStored(entry, new PreparedResponse(entry))
  }

  /** The response head's storability (RFC 9111 §3) and size; undefined: pass it on, keep nothing. */
  #keepable (request: CacheRequest, peer: string, status: number, headers: HeaderMap, mayStore: () => boolean, source: RevisionCell | undefined): Keepable | undefined {
    const opts = this.#opts
    const now = opts.now()
    const decision = evaluate(asSentUpstream(request, peer, opts.trustForwarded), { status, headers }, {
      cacheTtlSec: opts.cacheTtlSec, defaultTtlSec: opts.defaultTtlSec, now, ...(opts.targetedField === undefined ? {} : { targetedField: opts.targetedField })
    })
    const declared = headers['content-length']
    if (!decision.storable) {
      if (isResponseVerdict(decision.reason, status, request.headers['authorization'] !== undefined)) this.#unstorable(request, mayStore)
      return undefined
    }
    if (typeof declared === 'string' && !opts.store.fits(Number(declared))) {
      this.#unstorable(request, mayStore)
      return undefined
    }
    return { status, headers, decision, now, source }
  }

  /** The response says its URL cannot be stored; old news after a clear or an invalidation. */
  #unstorable (request: CacheRequest, mayStore: () => boolean): void {
    if (mayStore()) this.#opts.onVerdict?.(request, false)
  }

  /** The whole body arrived: store it unless a clear or an invalidation came meanwhile. */
  #store (request: CacheRequest, keep: Keepable, body: Buffer, mayStore: () => boolean, finish: Settle): void {
    if (!mayStore()) {
      finish(undefined)
      return
    }
    this.#opts.onVerdict?.(request, true)
    const entry = createEntry({ req: request, status: keep.status, headers: keep.headers, body, decision: keep.decision, now: keep.now, source: keep.source })
    const prepared = new PreparedResponse(entry)
    if (this.#opts.store.set(request, entry)) this.#opts.onStored(entry, prepared)
    // Storable by policy even if the bounds refused it: waiters may share it.
    finish(prepared)
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

// §3.2: fields a 304 does not update in the stored response (its own framing and ours).
const NOT_UPDATED: ReadonlySet<string> = new Set(['content-length', 'x-cache', 'age', 'transfer-encoding', 'content-encoding'])

/** §4.3.4: whether a 304's validators select `stored` for updating. */
function validates (headers: HeaderMap, stored: CachedEntry): boolean {
  const etag = typeof headers['etag'] === 'string' ? headers['etag'].trim() : undefined
  const lastModified = typeof headers['last-modified'] === 'string' ? headers['last-modified'].trim() : undefined
  if (etag !== undefined) {
    if (stored.etag === undefined) return false
    const weak = etag.startsWith('W/') || stored.etag.trim().startsWith('W/')
    const a = etag.replace(/^W\//, '')
    const b = stored.etag.trim().replace(/^W\//, '')
    // Strong comparison when the 304's validator is strong; weak otherwise.
    return a === b && (!etag.startsWith('W/') ? !weak : true)
  }
  if (lastModified !== undefined) return stored.lastModified?.trim() === lastModified
  return stored.etag === undefined && stored.lastModified === undefined
}

/**
 * The request as the upstream saw it, for `evaluate()`: the forwarder replaces a client's
 * X-Forwarded-Host with the downstream Host and strips X-Host (headers.ts), so a value the client
 * sent there never reached the origin and must not make the response look poisonable.
 */
function asSentUpstream (request: CacheRequest, peer: string, trust: ((peerAddress: string) => boolean) | undefined): CacheRequest {
  const h = request.headers
  if (h['x-forwarded-host'] === undefined && h['x-host'] === undefined) return request
  // From a trusted peer it did reach the origin: a value other than Host makes the response
  // unstorable (policy.ts), or one front client's X-Forwarded-Host would pick what all get.
  if (trust?.(peer) === true) return request
  // From anyone else X-Host was stripped (headers.ts STRIPPED_FORWARDING).
  return { method: request.method, url: request.url, headers: { ...h, 'x-forwarded-host': h.host, 'x-host': undefined } }
}

/**
 * A body kept as chunks, copied into memory of its own: undici's chunks are views into the
 * socket's read buffer (64 KiB), and Buffer.concat takes small sizes from the shared 8 KiB
 * pool, so keeping either would pin far more memory than the cache's byte bound accounts for.
 */
export function joinChunks (chunks: readonly Buffer[], size: number): Buffer {
  const body = Buffer.allocUnsafeSlow(size)
  let offset = 0
  for (const chunk of chunks) offset += chunk.copy(body, offset)
  return body
}
