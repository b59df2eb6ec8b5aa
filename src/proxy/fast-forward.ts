// The raw forwarding path for the common case: a GET or HEAD without a body, with the cache
// off. It does what forward.ts does through fastify and reply-from (same target choice,
// counting, header rules, failover, ejection, answers, metrics hooks) straight from Node's
// request to undici's dispatcher and back, without a fastify request, a reply, a readable
// stream per response or reply-from's per-call closures: profiling showed those, not
// discovery or counting, to be where the proxy spent its time (README "Performance").
//
// Anything else (a body, the cache on, --access-log, an unusual header) takes the fastify path,
// which remains the reference behaviour; app.ts decides. The integration suites run both paths:
// most of them use --cache-ttl 0, so their plain GETs come through here.
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

/** Forwards a plain GET/HEAD; false (nothing done) when no target is routable: the caller answers. */
export type FastForward = (req: IncomingMessage, res: ServerResponse) => boolean

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
  return (req, res) => {
    const first = router.pick()
    if (first === undefined) return false
    const headers = upstreamHeaderList(req, proto, trust?.(req.socket.remoteAddress ?? '') === true)
    new Exchange(failures, dispatcher, req, res, headers, timed ? performance.now() : 0).start(first)
    return true
  }
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

  constructor (ctx: FailureContext, dispatcher: Dispatcher, req: IncomingMessage, res: ServerResponse, headers: string[], startedAt: number) {
    this.#ctx = ctx
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
    this.#head = downstreamRawHeaders(rawHeaders)
    this.#resume = resume
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#head !== undefined && !this.#writeHead()) {
      this.#abort?.(this.#unwritable!)
      return false
    }
    this.#bytes += chunk.length
    if (this.#bytes > LARGE_BODY_BYTES) noteStreamed(chunk.length)
    if (this.#res.write(chunk)) return true
    // Backpressure: undici stops reading from the target until the client has caught up.
    this.#res.once('drain', this.#resume!)
    return false
  }

  onComplete (): void {
    if (this.#head !== undefined && !this.#writeHead()) {
      this.onError(this.#unwritable!)
      return
    }
    this.#res.end()
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
