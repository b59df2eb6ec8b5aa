// Request bodies pass through untouched (no JSON parsing: a proxy forwards bytes). A body with
// a Content-Length up to --retry-body-limit is buffered so failover can send it again; larger
// or chunked bodies stream straight to the target (not replayable, so not retried). Anything
// over --body-limit is refused with 413: up front when Content-Length says so, or as soon as a
// chunked body crosses the limit.
import { Transform, pipeline, type TransformCallback } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { createError } from '../errors.js'

export interface BodyLimits {
  readonly retryBodyLimitBytes: number
  readonly bodyLimitBytes: number
}

type Done = (err: Error | null, body?: unknown) => void

// Errors travel with the limited stream itself (undici sees it destroyed).
const ignore = (): void => {}

function tooLarge (limit: number): Error {
  const err = createError('ZKPROXY_ERR_PROXY_BODY_TOO_LARGE', `limit is ${limit} bytes`)
  return err
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

export function bodyParser (limits: BodyLimits): (request: FastifyRequest, payload: NodeJS.ReadableStream, done: Done) => void {
  return (request, payload, done) => {
    const declared = request.headers['content-length']
    const length = declared === undefined ? undefined : Number(declared)
    if (length !== undefined && length > limits.bodyLimitBytes) { done(tooLarge(limits.bodyLimitBytes)); return }
    if (length !== undefined && length <= limits.retryBodyLimitBytes) {
      const chunks: Buffer[] = []
      let size = 0
      payload.on('data', (c: Buffer) => { chunks.push(c); size += c.length })
      payload.on('error', (err: Error) => { done(err) })
      payload.on('end', () => { done(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)) })
      return
    }
    if (length !== undefined) { done(null, payload); return } // Node enforces the length itself
    // pipeline(), not pipe(): a client that aborts mid-upload must end the upstream request
    // too, or it would hold an upstream connection (and the in-flight count) forever.
    const limited = new LimitStream(limits.bodyLimitBytes)
    pipeline(payload, limited, ignore)
    done(null, limited)
  }
}
