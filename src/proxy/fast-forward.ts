// The raw forwarding path for the common case: a GET or HEAD without a body, with the cache
// off. It does what forward.ts does through fastify and reply-from (same target choice,
// counting, header rules, failover, ejection, answers, metrics hooks) straight from Node's
// request to undici's dispatcher and back, without a fastify request, a reply, a readable
// stream per response or reply-from's per-call closures: profiling showed those, not
// discovery or counting, to be where the proxy spent its time (README "Performance").
//
// With the cache on, misses come through here too, with the cache's RawResponder (it adds
// X-Cache, keeps a copy of the body to store, and may answer from a stale copy instead of an
// error: cache-fetch.ts). Anything else (a body, preconditions, --access-log, an unusual
// header) takes the fastify path, which remains the reference behaviour; app.ts decides. The
// integration suites run both paths.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import type { LiveTarget, Router } from './router.js'
import { downstreamRawHeaders, upstreamHeaderList } from './headers.js'
import { writeProblem } from './answers.js'
import { LARGE_BODY_BYTES, noteStreamed } from './spent-buffers.js'
import { attemptFailed, exhaustedMessage, type AttemptLog, type FailureContext, type ForwardHooks } from './failover.js'

export interface FastForwardOptions {
  readonly router: Router
  readonly dispatcher: Dispatcher
  readonly attempts: number
  readonly proto: 'http' | 'https'
  readonly logger: Logger
  readonly hooks?: ForwardHooks | undefined
}

/**
 * What the cache does with a miss it forwards on the raw path (cache-fetch.ts). Called in this
 * order: head (once, for the final response), data (each body chunk), complete (the body went
 * to the client); or failed, when no target answered.
 */
export interface RawResponder {
  /**
   * The final response head; `fields` is the list the client gets, and it may add to it.
   * False: it answered the client itself (a stale copy instead of an upstream error), and the
   * upstream body is read and dropped.
   */
  head: (status: number, fields: string[]) => boolean
  data: (chunk: Buffer) => void
  complete: () => void
  /** Every attempt failed (or timed out); true when it answered the client itself. */
  failed: () => boolean
}

export interface FastForward {
  /** Forwards a plain GET/HEAD; false (nothing done) when no target is routable: the caller answers. */
  (req: IncomingMessage, res: ServerResponse, responder?: RawResponder): boolean
  /** True when forwarding now would start (a target is registered). */
  readonly routable: () => boolean
}

class AbortedByClient extends Error {
  constructor () {
    super('the client closed the connection')
    this.name = 'AbortedByClient'
  }
}

export function createFastForwarder (opts: FastForwardOptions): FastForward {
  const { router, dispatcher, proto, hooks } = opts
  const failures: FailureContext = { router, attempts: opts.attempts, log: opts.logger, hooks }
  const trust = hooks?.trustForwarded
  const timed = hooks?.onComplete !== undefined
  const forward = (req: IncomingMessage, res: ServerResponse, responder?: RawResponder): boolean => {
    const first = router.pick()
    if (first === undefined) return false
    const headers = upstreamHeaderList(req, proto, trust?.(req.socket.remoteAddress ?? '') === true)
    new Exchange(failures, dispatcher, req, res, headers, timed ? performance.now() : 0, responder).start(first)
    return true
  }
  return Object.assign(forward, { routable: () => router.targets.length > 0 })
}

/**
 * One client request and its attempts, as an undici dispatch handler (the legacy callback
 * interface, which undici calls without an adapter). One attempt is in flight at a time;
 * `current` is it, ended exactly once: by its error, or when the client's response closes.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly #ctx: FailureContext
  readonly #dispatcher: Dispatcher
  readonly #req: IncomingMessage
  readonly #res: ServerResponse
  readonly #headers: string[]
  readonly #startedAt: number
  readonly #tries: AttemptLog = { n: 0, tried: undefined }
  #current: LiveTarget | undefined
  #status = 0
  #abort: ((err: Error) => void) | undefined
  #resume: (() => void) | undefined
  /** The response head, held back until the first body byte or the end. */
  #head: string[] | undefined
  /** Why Node refused to write the head. */
  #unwritable: Error | undefined
  #clientGone = false
  /** Body bytes passed on so far (large bodies free their spent buffers early). */
  #bytes = 0
  readonly #responder: RawResponder | undefined
  /** The responder answered the client itself: the upstream body is read and dropped. */
  #dropping = false

  constructor (ctx: FailureContext, dispatcher: Dispatcher, req: IncomingMessage, res: ServerResponse, headers: string[], startedAt: number,
    responder: RawResponder | undefined) {
    this.#ctx = ctx
    this.#responder = responder
    this.#dispatcher = dispatcher
    this.#req = req
    this.#res = res
    this.#headers = headers
    this.#startedAt = startedAt
    res.once('close', () => { this.#closed() })
  }

  start (t: LiveTarget): void {
    this.#tries.n++
    this.#ctx.router.begin(t)
    this.#current = t
    this.#abort = undefined
    this.#head = undefined
    this.#dispatcher.dispatch({ origin: t.origin, path: this.#req.url!, method: this.#req.method as Dispatcher.HttpMethod, headers: this.#headers }, this)
  }

  onConnect (abort: (err?: Error) => void): void {
    if (this.#clientGone) abort(new AbortedByClient())
    else this.#abort = abort
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx informational responses are not passed on (the final response follows).
    if (statusCode < 200) return true
    const t = this.#current!
    this.#ctx.router.succeeded(t)
    this.#status = statusCode
    this.#ctx.hooks?.onUpstreamResponse?.(t, statusCode)
    // The head waits for the first body byte (or the end): a target that fails in between
    // has sent the client nothing yet, so the request can still fail over or get a 502.
    const head = downstreamRawHeaders(rawHeaders)
    this.#resume = resume
    if (this.#responder !== undefined && !this.#responder.head(statusCode, head)) {
      this.#dropping = true
      return true
    }
    this.#head = head
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#dropping) return true
    if (this.#head !== undefined && !this.#writeHead()) {
      this.#abort?.(this.#unwritable!)
      return false
    }
    this.#bytes += chunk.length
    if (this.#bytes > LARGE_BODY_BYTES) noteStreamed(chunk.length)
    this.#responder?.data(chunk)
    if (this.#res.write(chunk)) return true
    // Backpressure: undici stops reading from the target until the client has caught up.
    this.#res.once('drain', this.#resume!)
    return false
  }

  onComplete (): void {
    if (this.#dropping) return
    if (this.#head !== undefined && !this.#writeHead()) {
      this.onError(this.#unwritable!)
      return
    }
    this.#res.end()
    // After the last byte was handed on: storing never holds up the response.
    this.#responder?.complete()
  }

  /** Writes the waiting head; false when Node refuses it (undici's parser is more lenient). */
  #writeHead (): boolean {
    const fields = this.#head!
    this.#head = undefined
    try {
      this.#res.writeHead(this.#status, fields)
      return true
    } catch (err) {
      this.#ctx.log.debug({ target: this.#current?.name, err }, 'upstream response cannot be passed on')
      this.#unwritable = err as Error
      return false
    }
  }

  onError (err: Error): void {
    const t = this.#current
    if (t === undefined) return // the client already went away and ended this attempt
    // The client has its answer (a stale copy) and the close that follows ends the attempt.
    if (this.#dropping) return
    const res = this.#res
    if (res.headersSent) {
      // Part of the response went out: nothing to retry, nothing to answer; cut the client off
      // so it sees a truncated response rather than a complete-looking one. The close that
      // follows ends the attempt and records its latency (#closed).
      this.#ctx.log.debug({ target: t.name, err }, 'upstream failed mid-response')
      res.destroy()
      return
    }
    this.#ctx.router.end(t)
    this.#current = undefined
    const { stage, next } = attemptFailed(this.#ctx, t, err, this.#tries, this.#req.method!, true, false)
    if (next !== undefined) {
      this.start(next)
      return
    }
    if (this.#responder?.failed() === true) return
    this.#ctx.log.debug({ target: t.name, stage, attempts: this.#tries.n, err }, 'upstream failed')
    if (stage === 'timeout') writeProblem(this.#req, res, 'ZKPROXY_ERR_PROXY_UPSTREAM_TIMEOUT', `target ${t.name} did not answer in time`)
    else writeProblem(this.#req, res, 'ZKPROXY_ERR_PROXY_UPSTREAM_FAILED', exhaustedMessage(this.#tries, this.#ctx.attempts, t, err), { attempts: this.#tries.n })
  }

  /** The client's response closed: finished, or the client went away (then the attempt is cut). */
  #closed (): void {
    const t = this.#current
    if (t === undefined) return
    this.#current = undefined
    this.#ctx.router.end(t)
    if (!this.#res.writableFinished) {
      this.#clientGone = true
      this.#abort?.(new AbortedByClient())
    }
    if (this.#status !== 0) this.#ctx.hooks?.onComplete?.(t, this.#status, performance.now() - this.#startedAt)
  }
}
