// A pass-through that keeps a copy of a response body while it streams to the client, so a
// miss can be stored without making the client wait (DESIGN.md "storing never delays the
// response"). The chunks go on to the client unchanged and at the client's pace (the
// transform only moves when the downstream pipe pulls); the copy is given up as soon as it
// passes the object limit, so a 100 MB download costs no more memory than without a cache.
import { Transform, type TransformCallback } from 'node:stream'

export class BodyCopy extends Transform {
  readonly #limit: number
  readonly #onComplete: (body: Buffer) => void
  readonly #onGiveUp: () => void
  #chunks: Buffer[] | undefined = []
  #size = 0

  /**
   * `onComplete` gets the whole body once the upstream ended (after the last chunk was
   * handed on); `onGiveUp` is called once when the body grew past `limitBytes`. Neither is
   * called when the stream fails: the owner watches the pipeline for that.
   */
  constructor (limitBytes: number, onComplete: (body: Buffer) => void, onGiveUp: () => void) {
    super()
    this.#limit = limitBytes
    this.#onComplete = onComplete
    this.#onGiveUp = onGiveUp
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const chunks = this.#chunks
    if (chunks !== undefined) {
      this.#size += chunk.length
      if (this.#size > this.#limit) {
        this.#chunks = undefined
        this.#onGiveUp()
      } else {
        // A reference until the end; the one copy is made there (see _flush).
        chunks.push(chunk)
      }
    }
    callback(null, chunk)
  }

  override _flush (callback: TransformCallback): void {
    // End the client's stream first: storing is bookkeeping that must not hold up the last byte.
    callback()
    const chunks = this.#chunks
    if (chunks === undefined) return
    this.#chunks = undefined
    // Always copied (joinChunks says why).
    this.#onComplete(joinChunks(chunks, this.#size))
  }
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
