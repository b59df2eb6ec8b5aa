// Forwarding with failover. reply-from's own retries re-send to the same upstream (and it
// re-sends a GET answered 503 up to ten times: `retryDelay` returning null turns that off), so
// moving to a *different* target is ours: when an attempt fails before any byte went to the
// client (before its head, or after it: the head is held back until the first body byte),
// reply.from() is called again with the next least-used target. That is safe because
// reply-from rebuilds everything from the request on each call (proved by the failover tests);
// the only thing that cannot be rebuilt is a streamed request body, so only buffered bodies
// (up to --retry-body-limit) are replayed. RFC 9110 §9.2.2: after a request may
// have reached the origin, only idempotent methods are retried.
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.js'
import { sendProblem } from './answers.js'
import { LARGE_BODY_BYTES, noteStreamed } from './spent-buffers.js'
import type { LiveTarget, Router } from './router.js'
import { attemptFailed, exhaustedMessage, type AttemptLog, type FailureContext, type ForwardHooks } from './failover.js'

export { failureStage, type FailureStage, type ForwardHooks } from './failover.js'

export interface UpstreamResponse {
  readonly statusCode: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly stream: NodeJS.ReadableStream
}

export interface ForwardOptions {
  readonly router: Router
  readonly attempts: number
  readonly proto: 'http' | 'https'
  readonly logger: Logger
  readonly hooks?: ForwardHooks
}

/** How the final response goes to the client (default: stream it). The cache replaces this. */
export interface Respond {
  (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse, t: LiveTarget): void
  /**
   * Called instead of sending the 502/503/504 error when no target answered (none live, every
   * attempt failed, or a timeout); returns true when it answered the client itself (the
   * cache serves a stale response there: stale-if-error).
   */
  onFailure?: (reply: FastifyReply, statusCode: 502 | 503 | 504) => boolean
}

const noRetryDelay = (): null => null
const countStreamed = (chunk: Buffer): void => { noteStreamed(chunk.length) }

type FromOptions = Parameters<FastifyReply['from']>[1]

/**
 * Holds an upstream response until its first body byte is buffered or it has ended, then
 * calls `ready` with it; calls `failed` instead when the stream errors first (the target went
 * away after its head). A body that ended empty before anyone listened is handed on as a fresh
 * empty stream (its own 'end' has been emitted, and whoever reads it next waits for one).
 * Returns a function that drops the response (the client went away meanwhile).
 */
export function holdHead (res: UpstreamResponse, ready: (res: UpstreamResponse) => void, failed: (err: Error) => void): () => void {
  const stream = res.stream as Readable
  const empty = (): UpstreamResponse => ({ statusCode: res.statusCode, headers: res.headers, stream: Readable.from([], { objectMode: false }) })
  // Already over (undici settled it before reply-from called back): no event will come.
  if (stream.errored !== null) {
    failed(stream.errored)
    return () => {}
  }
  if (stream.readableEnded) {
    ready(empty())
    return () => {}
  }
  const stop = (): void => {
    stream.off('readable', onReadable)
    stream.off('end', onEnd)
    stream.off('error', onError)
  }
  // Removing the 'readable' listener lets the next consumer (a pipe, 'data') make it flow.
  const onReadable = (): void => { stop(); ready(res) }
  const onEnd = (): void => { stop(); ready(empty()) }
  const onError = (err: Error): void => { stop(); failed(err) }
  stream.on('readable', onReadable)
  stream.on('end', onEnd)
  stream.on('error', onError)
  return () => {
    stop()
    discard(stream)
  }
}

const ignore = (): void => {}

/**
 * Destroys a response body nobody will read. undici's body turns the destroy into an abort
 * error, emitted on the next tick; with a listener removed (holdHead's) and undici's own not
 * yet attached, that error would have none and crash the process.
 */
function discard (stream: Readable): void {
  stream.on('error', ignore)
  stream.destroy()
}

/** True when `err` or one of its causes carries `code`. */
function hasCode (err: unknown, code: string): boolean {
  let e = err as { code?: unknown, cause?: unknown } | undefined
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e.code === code) return true
    e = e.cause as typeof e
  }
  return false
}

interface OurFromOptions {
  body?: Buffer
  contentType?: string
  getUpstream: () => string
  rewriteRequestHeaders: (request: FastifyRequest, headers: Record<string, unknown>) => Record<string, unknown>
  rewriteHeaders: (headers: Record<string, unknown>) => Record<string, unknown>
  retryDelay: () => null
  onResponse: (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse) => void
  onError: (reply: FastifyReply, e: { error: Error }) => void
}

export function noTargetsMessage (hasView: boolean): string {
  return hasView ? 'no live target is registered' : 'no view of the targets yet (waiting for ZooKeeper)'
}

export function sendNoTargets (reply: FastifyReply, hasView: boolean): void {
  sendProblem(reply, 'ZKPROXY_ERR_PROXY_NO_TARGETS', noTargetsMessage(hasView))
}

export function createForwarder (opts: ForwardOptions): (request: FastifyRequest, reply: FastifyReply, respond?: Respond) => void {
  const { router, attempts, proto, hooks } = opts
  const log = opts.logger
  const failures: FailureContext = { router, attempts, log, hooks }
  const trust = hooks?.trustForwarded
  const rewriteRequestHeaders = (request: FastifyRequest, headers: Record<string, unknown>): Record<string, unknown> =>
    upstreamRequestHeaders(request.raw, headers as never, proto, trust?.(request.raw.socket.remoteAddress ?? '') === true) as Record<string, unknown>
  const rewriteHeaders = (headers: Record<string, unknown>): Record<string, unknown> =>
    downstreamResponseHeaders(headers as never) as Record<string, unknown>
  const defaultRespond: Respond = (_req, reply, res) => { reply.send(res.stream) }

  return function forward (request, reply, respond = defaultRespond) {
    const first = router.pick()
    if (first === undefined) {
      if (respond.onFailure?.(reply, 503) !== true) sendNoTargets(reply, router.hasView)
      return
    }
    const body = request.body
    // Buffered (or absent) bodies can be sent again; a streamed one cannot.
    const replayable = body === undefined || body === null || Buffer.isBuffer(body) || typeof body === 'string'
    // A buffered body is handed to reply-from explicitly, with the client's Content-Type:
    // otherwise it re-encodes application/json bodies (JSON.stringify of a Buffer).
    const bodyOptions = Buffer.isBuffer(body)
      ? { body, contentType: request.headers['content-type'] ?? 'application/octet-stream' }
      : undefined
    const tries: AttemptLog = { n: 0, tried: undefined }
    // Only timed when someone listens: no clock read per request otherwise.
    const startedAt = hooks?.onComplete === undefined ? 0 : performance.now()
    // The attempt in flight, ended exactly once: by its error, or when the client connection
    // closes (response done, or the client went away, even before reply-from answered: it
    // then calls neither onResponse nor onError).
    let current: LiveTarget | undefined
    let status = 0
    // Set while a response head is held back (holdHead): drops that response.
    let drop: (() => void) | undefined
    reply.raw.once('close', () => {
      drop?.()
      if (current === undefined) return
      router.end(current)
      if (status !== 0) hooks?.onComplete?.(current, status, performance.now() - startedAt)
      current = undefined
    })

    // The attempt in flight failed: before its head (reply-from's onError) or after it, before
    // any body byte (holdHead). Fail over, or answer.
    const failed = (rep: FastifyReply, t: LiveTarget, error: Error): void => {
      if (current !== t) return // the client already went away and ended this attempt
      drop = undefined
      // A failed attempt's head is not the answer (the close listener reports `status`).
      status = 0
      router.end(t)
      current = undefined
      const { stage, next } = attemptFailed(failures, t, error, tries, request.method, replayable, rep.sent)
      if (next !== undefined) {
        attempt(next)
        return
      }
      if (rep.sent) return
      if (hasCode(error, 'ZKPROXY_ERR_PROXY_BODY_TOO_LARGE')) {
        // The request body crossed --body-limit while streaming up: the client's fault.
        sendProblem(rep, 'ZKPROXY_ERR_PROXY_BODY_TOO_LARGE')
        return
      }
      if (respond.onFailure?.(rep, stage === 'timeout' ? 504 : 502) === true) return
      log.debug({ target: t.name, stage, attempts: tries.n, err: error }, 'upstream failed')
      if (stage === 'timeout') sendProblem(rep, 'ZKPROXY_ERR_PROXY_UPSTREAM_TIMEOUT', `target ${t.name} did not answer in time`)
      else sendProblem(rep, 'ZKPROXY_ERR_PROXY_UPSTREAM_FAILED', exhaustedMessage(tries, attempts, t, error), { attempts: tries.n })
    }

    const attempt = (t: LiveTarget): void => {
      tries.n++
      router.begin(t)
      current = t
      // reply-from copies the target's header fields onto the reply before onResponse: a
      // failure after the head puts back what the reply had before this attempt.
      const before = { ...reply.getHeaders() }
      const fromOptions: OurFromOptions = {
        getUpstream: () => t.origin,
        rewriteRequestHeaders,
        rewriteHeaders,
        retryDelay: noRetryDelay,
        ...bodyOptions,
        onResponse: (req, rep, res) => {
          // reply-from may call onError and then onResponse for one attempt (a status fastify
          // refuses): the attempt is over, its body is nobody's.
          if (current !== t) {
            discard(res.stream as Readable)
            return
          }
          router.succeeded(t)
          // Still in flight until the client has the whole response (the close listener above).
          status = res.statusCode
          hooks?.onUpstreamResponse?.(t, res.statusCode)
          // The head waits for the first body byte (or the end), as on the raw path: a target
          // that fails in between has sent the client nothing yet, so the request can still
          // fail over, get a stale copy or an honest 502.
          drop = holdHead(res, (ready) => {
            drop = undefined
            if (current !== t) {
              discard(ready.stream as Readable)
              return
            }
            // The consumer attaches in this same tick (the buffered bytes flow on the next).
            respond(req, rep, ready, t)
            // Large bodies (or of unknown size) get a second 'data' listener beside the pipe
            // that sends them: it follows the pipe's pace and only counts bytes (spent-buffers.ts).
            const declared = ready.headers['content-length']
            if (typeof declared !== 'string' || Number(declared) > LARGE_BODY_BYTES) ready.stream.on('data', countStreamed)
          }, (error) => {
            if (current !== t) return
            for (const name of Object.keys(rep.getHeaders())) rep.removeHeader(name)
            rep.headers(before)
            failed(rep, t, error)
          })
        },
        onError: (rep, { error }) => { failed(rep, t, error) }
      }
      // reply-from's typings are written for every server flavour (http2 included); ours is
      // HTTP/1.1 only, so the callbacks are typed for that and cast once here.
      reply.from(undefined, fromOptions as unknown as FromOptions)
    }
    attempt(first)
  }
}
