// The request body stage. Bodies pass through untouched (a proxy forwards bytes, and its header
// fields: nothing is added, not even a Content-Type). A body within --request-buffer-bytes
// (default --retry-body-limit) is read completely before a target is chosen: it then costs no
// upstream connection while a slow client uploads it, and failover can send it again. A chunked
// body is read up to that bound the same way: if it ends within it, it is sent whole (with its
// length); if not, what was read goes first and the rest streams. Larger bodies stream straight
// to the target (not replayable, so not retried once sent). Anything over --body-limit is
// refused with 413: up front when Content-Length says so, or as soon as a chunked body crosses
// the limit on its way up.
import type { IncomingMessage } from 'node:http'
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream'
import { createError } from '../errors.js'
import type { RequestBody } from './exchange.js'

export interface BodyLimits {
  readonly bodyLimitBytes: number
  readonly requestBufferBytes: number
}

export type BodyPlan =
  | { readonly kind: 'none' }
  | { readonly kind: 'buffer', readonly length: number }
  | { readonly kind: 'stream' }
  /** Chunked: read up to --request-buffer-bytes before choosing a target, stream the rest. */
  | { readonly kind: 'gather' }
  | { readonly kind: 'too-large' }

const NONE: BodyPlan = { kind: 'none' }
const STREAM: BodyPlan = { kind: 'stream' }
const GATHER: BodyPlan = { kind: 'gather' }
const TOO_LARGE: BodyPlan = { kind: 'too-large' }

/** What to do with the request's body, from its framing alone (the guard checked the framing). */
export function planBody (req: IncomingMessage, limits: BodyLimits): BodyPlan {
  const h = req.headers
  const declared = h['content-length']
  if (declared === undefined) return h['transfer-encoding'] === undefined ? NONE : limits.requestBufferBytes > 0 ? GATHER : STREAM
  const length = Number(declared)
  if (length > limits.bodyLimitBytes) return TOO_LARGE
  if (length === 0) return NONE
  return length <= limits.requestBufferBytes ? { kind: 'buffer', length } : STREAM
}

/**
 * Reads a whole body of `length` bytes (Node enforces the length); calls `done` once with it,
 * or with undefined when the client went away first.
 */
export function readBody (req: IncomingMessage, length: number, done: (body: Buffer | undefined) => void): void {
  const body = Buffer.allocUnsafe(length)
  let offset = 0
  let settled = false
  const settle = (b: Buffer | undefined): void => {
    if (settled) return
    settled = true
    done(b)
  }
  req.on('data', (chunk: Buffer) => { offset += chunk.copy(body, offset) })
  req.once('end', () => { settle(offset === length ? body : body.subarray(0, offset)) })
  req.once('error', () => { settle(undefined) })
  req.once('close', () => { if (!req.complete) settle(undefined) })
}

function tooLarge (limit: number): Error {
  return createError('ZKPROXY_ERR_PROXY_BODY_TOO_LARGE', `limit is ${limit} bytes`)
}

class LimitStream extends Transform {
  #seen = 0
  readonly #limit: number
  constructor (limit: number) { super(); this.#limit = limit }
  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.#limit) { cb(tooLarge(this.#limit)); return }
    cb(null, chunk)
  }
}

const ignore = (): void => {}

/** The body as a stream for undici, cut with 413 past --body-limit when its length is unknown. */
export function streamBody (req: IncomingMessage, limits: BodyLimits): RequestBody {
  if (req.headers['content-length'] !== undefined) return req as Readable
  // pipeline(), not pipe(): a client that aborts mid-upload ends the upstream request too, or it
  // would hold an upstream connection (and the in-flight count) until a timeout.
  const limited = new LimitStream(limits.bodyLimitBytes)
  pipeline(req, limited, ignore)
  return limited
}

/**
 * Reads a body of unknown length (chunked) up to `limits.requestBufferBytes`; calls `done` once
 * with the whole body when it ended within that bound (replayable), else with a stream of what
 * was read followed by the rest (cut with 413 past --body-limit); undefined when the client went
 * away first.
 */
export function gatherBody (req: IncomingMessage, limits: BodyLimits, done: (body: RequestBody | undefined) => void): void {
  const chunks: Buffer[] = []
  let size = 0
  let settled = false
  const settle = (b: RequestBody | undefined): void => {
    if (settled) return
    settled = true
    req.off('data', onData)
    done(b)
  }
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk)
    size += chunk.length
    if (size <= limits.requestBufferBytes) return
    // Past the bound: the rest streams. pause() first so that no chunk slips between the
    // buffered ones and the pipe.
    req.pause()
    const limited = new LimitStream(limits.bodyLimitBytes)
    for (const c of chunks) limited.write(c)
    chunks.length = 0
    settle(limited)
    pipeline(req, limited, ignore)
  }
  req.on('data', onData)
  req.once('end', () => { settle(Buffer.concat(chunks, size)) })
  req.once('error', () => { settle(undefined) })
  req.once('close', () => { if (!req.complete) settle(undefined) })
}
