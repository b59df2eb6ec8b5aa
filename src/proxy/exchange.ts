// The exchange stage: one client request and its attempts upstream, on undici's dispatcher
// with the handler API (onRequestStart / onResponseStart / onResponseData / onResponseEnd /
// onResponseError). One attempt is in flight at a time; each attempt is its own handler object,
// so a late callback of an attempt that was given up can never touch the next one.
//
// The response head is held back until the first body byte (or the end): a target that fails
// in between has sent the client nothing yet, so the request can still fail over (failover.ts
// decides when that is allowed), be answered from a stale copy (the recorder), or get an
// honest 502/504. Once a byte went out, a failure cuts the client's connection: a truncated
// response, never a complete-looking one. Backpressure runs both ways: undici pauses reading
// from the target once --response-buffer-bytes are waiting for a slow client (controller.pause /
// resume), and a streamed request body is read only as fast as the target takes it.
//
// Buffering where it protects: up to --response-buffer-bytes of a response wait in memory for a
// slow client while the target goes on sending, so a response that fits is read whole at the
// target's pace and its upstream connection is free again at once; the target counts the
// request as ended then too. A larger response holds its connection until the client caught up.
// A client that takes no byte for --send-timeout-ms is cut (send-timeout.ts). The connection
// to a target is bounded (upstream-slots.ts): 503 past the queue, 504 after the queue's deadline.
//
// The exchange never decides when the request is over: the connection does (connection.ts),
// calling `end()` exactly once when the response finished or the client went away.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { LiveTarget, Pool } from './router.js'
import { downstreamFields, type ResponseHeaders } from './headers.js'
import { writeProblem } from './answers.js'
import { LARGE_BODY_BYTES, noteStreamed } from './spent-buffers.js'
import { attemptFailed, exhaustedMessage, type AttemptLog, type FailureContext } from './failover.js'
import { SendTimeout } from './send-timeout.js'
import type { UpstreamSlots } from './upstream-slots.js'

/**
 * What a stage before the exchange (the cache) does with the response. Called in this order:
 * `head` once for the final response, `data` per body chunk, `end` after the last byte went
 * to the client; or `failed` when no target answered.
 */
export interface ResponseRecorder {
  /**
   * The final response head; `fields` is the flat list the client gets, and it may add to it.
   * False: it answered the client itself (a stale copy instead of an upstream error), and the
   * upstream body is read and dropped. Called again for the next target after a failover.
   * `target` answered, as a member of `pool`: a stored copy remembers both, so it is served
   * only while that pool still has a target at the same content revision.
   */
  head: (status: number, fields: string[], headers: ResponseHeaders, target: LiveTarget, pool: Pool) => boolean
  data: (chunk: Buffer) => void
  end: () => void
  /** No target answered (none live, all failed, or a timeout); true when it answered the client. */
  failed: (status: 502 | 503 | 504) => boolean
}

/** A request body: none, read completely (replayable on failover), or streamed (not replayable). */
export type RequestBody = Buffer | Readable | undefined

/** The flags of the exchange (src/config.ts documents each). */
export interface ExchangeLimits {
  readonly responseBufferBytes: number
  readonly sendTimeoutMs: number
  readonly upstreamConnections: number
  readonly upstreamQueue: number
  readonly upstreamQueueTimeoutMs: number
}

export interface ExchangeContext extends FailureContext {
  readonly dispatcher: Dispatcher
  readonly limits: ExchangeLimits
  readonly slots: UpstreamSlots
}

export interface ExchangeInit {
  readonly method: string
  /** The pool the request was routed to: its targets are the only ones tried. */
  readonly pool: Pool
  /** The request-target as this target must see it (a target may strip the route's prefix). */
  readonly pathFor: (t: LiveTarget) => string
  readonly headers: string[]
  readonly body: RequestBody
  readonly recorder: ResponseRecorder | undefined
  /** performance.now() when the request arrived, or 0 when nobody times requests. */
  readonly startedAt: number
}

class QueueTimeout extends Error {
  readonly code = 'ZKPROXY_ERR_PROXY_UPSTREAM_QUEUE_TIMEOUT'
  constructor () {
    super('no connection to the target became free in time')
    this.name = 'QueueTimeout'
  }
}

class AbortedByClient extends Error {
  readonly code = 'ZKPROXY_CLIENT_GONE'
  constructor () {
    super('the client closed the connection')
    this.name = 'AbortedByClient'
  }
}

export class Exchange {
  readonly #ctx: ExchangeContext
  readonly #req: IncomingMessage
  readonly #res: ServerResponse
  readonly #init: ExchangeInit
  readonly #replayable: boolean
  readonly #tries: AttemptLog = { n: 0, tried: undefined }
  /** The attempt in flight; undefined between attempts and once the request ended. */
  #current: Attempt | undefined
  /** The status passed to the client (0: none yet). */
  #status = 0
  #ended = false
  /** The target of the current attempt has finished its response (and no longer counts it). */
  #released = false
  #last: LiveTarget | undefined
  #send: SendTimeout | undefined

  constructor (ctx: ExchangeContext, req: IncomingMessage, res: ServerResponse, init: ExchangeInit) {
    this.#ctx = ctx
    this.#req = req
    this.#res = res
    this.#init = init
    this.#replayable = init.body === undefined || Buffer.isBuffer(init.body)
  }

  /** The target of the last attempt (for the access log), once there is one. */
  get target (): LiveTarget | undefined { return this.#last }

  start (first: LiveTarget): void {
    if (this.#ended) return
    const { limits, slots } = this.#ctx
    const full = (x: LiveTarget): boolean => slots.held(x.origin) >= limits.upstreamConnections + limits.upstreamQueue
    let t = first
    if (full(t)) {
      // Another target of the pool with room, else a clear answer now rather than a wait without end.
      const other = this.#init.pool.next(new Set([...(this.#tries.tried ?? []), t.name]))
      if (other === undefined || full(other)) {
        if (this.#init.recorder?.failed(503) !== true) {
          writeProblem(this.#req, this.#res, 'ZKPROXY_ERR_PROXY_UPSTREAM_BUSY', `target ${t.name} has ${limits.upstreamConnections} connections busy and ${limits.upstreamQueue} requests waiting`)
        }
        return
      }
      t = other
    }
    this.#tries.n++
    this.#ctx.router.begin(t)
    const attempt = new Attempt(this, t)
    this.#current = attempt
    this.#released = false
    this.#last = t
    const init = this.#init
    // Every connection to it is busy: this one waits in undici's queue, with a deadline.
    if (slots.held(t.origin) >= limits.upstreamConnections) attempt.deadline(limits.upstreamQueueTimeoutMs)
    slots.take(t.origin)
    this.#ctx.dispatcher.dispatch({
      origin: t.origin,
      path: init.pathFor(t),
      method: init.method as Dispatcher.HttpMethod,
      headers: init.headers,
      body: init.body ?? null
    }, attempt)
  }

  /**
   * The request is over: its response finished, or its client went away (`gone`). Ends the
   * attempt in flight exactly once; a client that left cuts it.
   */
  end (gone: boolean): void {
    if (this.#ended) return
    this.#ended = true
    this.#send?.stop()
    const a = this.#current
    if (a === undefined) return
    this.#current = undefined
    if (!this.#released) this.#ctx.router.end(a.target)
    if (gone || !this.#res.writableFinished) a.abort(new AbortedByClient())
    const status = this.#status
    if (status !== 0) this.#ctx.hooks?.onComplete?.(a.target, status, this.#init.startedAt === 0 ? 0 : performance.now() - this.#init.startedAt)
  }

  // ---- called by the current attempt ----

  isCurrent (a: Attempt): boolean { return this.#current === a }

  /** The attempt waited too long for a connection: 504, no failover (the pool is as busy). */
  queueTimedOut (a: Attempt): void {
    if (this.#current !== a) return
    this.#current = undefined
    this.#ctx.router.end(a.target)
    // Not the target's fault: no ejection. undici still holds the request in its queue; it is
    // aborted the moment a connection takes it, before a byte is sent.
    a.abort(new QueueTimeout())
    if (this.#init.recorder?.failed(504) === true) return
    writeProblem(this.#req, this.#res, 'ZKPROXY_ERR_PROXY_UPSTREAM_QUEUE_TIMEOUT',
      `no connection to target ${a.target.name} became free within ${this.#ctx.limits.upstreamQueueTimeoutMs} ms`)
  }

  /** undici is done with an attempt (answered, failed or aborted): its place is free. */
  settled (a: Attempt): void {
    this.#ctx.slots.give(a.target.origin)
  }

  /** The final head arrived: ask the recorder, then hold it until the first body byte. */
  onHead (a: Attempt, status: number, headers: ResponseHeaders): string[] | undefined {
    this.#ctx.router.succeeded(a.target)
    this.#ctx.hooks?.onUpstreamResponse?.(a.target, status)
    const fields = downstreamFields(headers)
    const recorder = this.#init.recorder
    if (recorder !== undefined && !recorder.head(status, fields, headers, a.target, this.#init.pool)) return undefined
    return fields
  }

  /**
   * An interim (1xx) response from the target, passed on before the final head: 103 Early Hints
   * with its Link fields, 102 Processing. Not to an HTTP/1.0 client (RFC 9110 §15.2: a server
   * "MUST NOT send a 1xx response to an HTTP/1.0 client"), not once the final head went out,
   * and other 1xx codes (100 is the proxy's own business with its client) are dropped.
   */
  interim (status: number, headers: ResponseHeaders): void {
    const res = this.#res
    if (res.headersSent || this.#req.httpVersionMajor !== 1 || this.#req.httpVersionMinor < 1 || res.destroyed) return
    try {
      if (status === 102) {
        res.writeProcessing()
      } else if (status === 103) {
        const link = headers['link']
        if (link !== undefined && link !== '') res.writeEarlyHints({ link })
      }
    } catch (err) {
      // A hint that Node refuses to write (an odd Link value) is only a hint.
      this.#ctx.log.debug({ err, status }, 'interim response not passed on')
    }
  }

  /** Writes the held head; false when Node refuses it (undici's parser is more lenient). */
  writeHead (a: Attempt, status: number, fields: string[]): boolean {
    try {
      this.#res.writeHead(status, fields)
      this.#status = status
      return true
    } catch (err) {
      this.#ctx.log.debug({ target: a.target.name, err }, 'upstream response cannot be passed on')
      return false
    }
  }

  /** A body chunk; false when the client's socket is full (the attempt pauses until 'drain'). */
  write (chunk: Buffer, resume: () => void): boolean {
    this.#init.recorder?.data(chunk)
    const res = this.#res
    const send = this.#send
    if (send === undefined) {
      if (res.write(chunk)) return true
      // The client's socket backed up: from now on its progress is watched (send-timeout.ts).
      const watch = this.#send = new SendTimeout(this.#ctx.limits.sendTimeoutMs, this.#cutSlowClient)
      watch.writing()
      res.on('drain', watch.caughtUp)
    } else {
      send.writing()
      if (res.write(chunk, send.written)) return true
    }
    // A slow client: up to --response-buffer-bytes wait here while the target goes on sending
    // (its connection is free sooner); past that the target is paused until the client caught up.
    if (res.writableLength <= this.#ctx.limits.responseBufferBytes) return true
    res.once('drain', resume)
    return false
  }

  readonly #cutSlowClient = (): void => {
    this.#ctx.log.debug({ target: this.#last?.name, sendTimeoutMs: this.#ctx.limits.sendTimeoutMs }, 'client took no response byte in time: cut')
    // The socket, not the response: a response queued behind a pipelined one has none yet. The
    // connection's close ends every request on it.
    this.#req.socket.destroy()
  }

  /** Sends the written head at once (Node holds it back until the first body byte otherwise). */
  flushHead (): void {
    this.#res.flushHeaders()
  }

  finish (): void {
    // The target has sent everything: it no longer counts this request, even while a slow
    // client is still reading the buffered end of it.
    const a = this.#current
    if (a !== undefined && !this.#released) {
      this.#released = true
      this.#ctx.router.end(a.target)
    }
    this.#res.end()
    // After the last byte was handed on: storing never holds up the response.
    this.#init.recorder?.end()
  }

  /** The attempt failed: before any byte went to the client, fail over or answer; after, cut. */
  failed (a: Attempt, err: Error): void {
    const t = a.target
    const res = this.#res
    if (res.headersSent) {
      // Part of the response went out: nothing to retry, nothing to answer; cut the client off
      // so it sees a truncated response. The close that follows ends the request.
      this.#ctx.log.debug({ target: t.name, err }, 'upstream failed mid-response')
      res.destroy()
      return
    }
    this.#ctx.router.end(t)
    this.#current = undefined
    const { stage, next } = attemptFailed(this.#ctx, t, err, this.#tries, this.#init.method, this.#replayable, false, this.#init.pool)
    if (next !== undefined) {
      this.start(next)
      return
    }
    if (carries(err, 'ZKPROXY_ERR_PROXY_BODY_TOO_LARGE')) {
      // The request body crossed --body-limit while streaming up: the client's fault.
      writeProblem(this.#req, res, 'ZKPROXY_ERR_PROXY_BODY_TOO_LARGE', err.message)
      return
    }
    if (this.#init.recorder?.failed(stage === 'timeout' ? 504 : 502) === true) return
    this.#ctx.log.debug({ target: t.name, stage, attempts: this.#tries.n, err }, 'upstream failed')
    if (stage === 'timeout') writeProblem(this.#req, res, 'ZKPROXY_ERR_PROXY_UPSTREAM_TIMEOUT', `target ${t.name} did not answer in time`)
    else writeProblem(this.#req, res, 'ZKPROXY_ERR_PROXY_UPSTREAM_FAILED', exhaustedMessage(this.#tries, this.#ctx.attempts, t, err), { attempts: this.#tries.n })
  }
}

/**
 * Responses whose head is passed on at once instead of with the first body byte: server-sent
 * events (`text/event-stream`), and any response whose target says `X-Accel-Buffering: no`
 * (nginx's convention for a response that must not be held back).
 */
export function streamsAtOnce (headers: ResponseHeaders): boolean {
  const type = headers['content-type']
  if (typeof type === 'string' && type.trimStart().toLowerCase().startsWith('text/event-stream')) return true
  const buffering = headers['x-accel-buffering']
  return typeof buffering === 'string' && buffering.trim().toLowerCase() === 'no'
}

/** True when `err` or one of its causes carries `code` (undici may wrap a body stream's error). */
function carries (err: unknown, code: string): boolean {
  let e = err as { code?: unknown, cause?: unknown } | undefined
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e.code === code) return true
    e = e.cause as typeof e
  }
  return false
}

/** One attempt to one target: undici's handler for a single dispatch. */
class Attempt implements Dispatcher.DispatchHandler {
  readonly #exchange: Exchange
  readonly target: LiveTarget
  #controller: Dispatcher.DispatchController | undefined
  /** Set before undici gave us a controller: abort as soon as it does. */
  #abortWith: Error | undefined
  #status = 0
  /** The response head, held back until the first body byte or the end. */
  #head: string[] | undefined
  /** The recorder answered the client itself: the upstream body is read and dropped. */
  #dropping = false
  #bytes = 0
  #queueTimer: NodeJS.Timeout | undefined
  #settled = false
  readonly #resume = (): void => { this.#controller?.resume() }

  constructor (exchange: Exchange, target: LiveTarget) {
    this.#exchange = exchange
    this.target = target
  }

  abort (err: Error): void {
    clearTimeout(this.#queueTimer)
    if (this.#controller === undefined) this.#abortWith = err
    else this.#controller.abort(err)
  }

  /** Gives up waiting for a connection after `ms`. */
  deadline (ms: number): void {
    this.#queueTimer = setTimeout(() => { this.#exchange.queueTimedOut(this) }, ms)
  }

  #settle (): void {
    clearTimeout(this.#queueTimer)
    if (this.#settled) return
    this.#settled = true
    this.#exchange.settled(this)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    // A connection took it: no longer waiting in the queue.
    clearTimeout(this.#queueTimer)
    this.#controller = controller
    if (this.#abortWith !== undefined) controller.abort(this.#abortWith)
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: ResponseHeaders): void {
    if (!this.#exchange.isCurrent(this)) return
    // RFC 9110 §15.2: a 1xx is interim, the final response follows. It is never taken for the
    // final one, never reaches the recorder (so never stored), and is passed on where it can be.
    if (statusCode < 200) {
      this.#exchange.interim(statusCode, headers)
      return
    }
    if (statusCode > 599) {
      // RFC 9110 §15 defines 100-599; a status outside is a broken response (nginx: 502 too).
      const err = new Error(`the target answered with status ${statusCode}`)
      this.#exchange.failed(this, err)
      controller.abort(err)
      return
    }
    this.#status = statusCode
    const fields = this.#exchange.onHead(this, statusCode, headers)
    if (fields === undefined) {
      this.#dropping = true
      return
    }
    this.#head = fields
    // A stream of events starts when it starts: its head goes out now, not with a first event
    // that may come minutes later. A failure after this is a cut, not a failover.
    if (streamsAtOnce(headers) && this.#flushHead()) this.#exchange.flushHead()
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#dropping || !this.#exchange.isCurrent(this)) return
    if (!this.#flushHead()) return
    this.#bytes += chunk.length
    if (this.#bytes > LARGE_BODY_BYTES) noteStreamed(chunk.length)
    // Backpressure: undici stops reading from the target until the client has caught up.
    if (!this.#exchange.write(chunk, this.#resume)) controller.pause()
  }

  onResponseEnd (): void {
    this.#settle()
    if (this.#dropping || !this.#exchange.isCurrent(this)) return
    if (!this.#flushHead()) return
    this.#exchange.finish()
  }

  onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
    this.#settle()
    // Given up already (the client left, or a later attempt runs), or the recorder answered.
    if (this.#dropping || !this.#exchange.isCurrent(this)) return
    this.#exchange.failed(this, err)
  }

  /** Writes the held head if there is one; false (and the attempt failed) when Node refused it. */
  #flushHead (): boolean {
    const head = this.#head
    if (head === undefined) return true
    this.#head = undefined
    if (this.#exchange.writeHead(this, this.#status, head)) return true
    const err = new Error('the target\'s response head cannot be passed on')
    // Failed first, then aborted: the abort's own error callback then finds the attempt given up.
    this.#exchange.failed(this, err)
    this.#controller?.abort(err)
    return false
  }
}
