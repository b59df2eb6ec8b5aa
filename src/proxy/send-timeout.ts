// nginx's send_timeout for the responses the exchange writes: a client that takes no byte of its
// response for --send-timeout-ms is cut. Progress is a write callback (Node calls it once the
// chunk went to the kernel), so a client that reads slowly but steadily is never cut, and one
// that stopped reading is cut however much of its response is still buffered for it. Without
// this, a client that never reads would hold its response buffer, and for a response larger than
// --response-buffer-bytes an upstream connection, for as long as it keeps the socket open.
//
// Watched only once a response's writes back up (a write that Node does not take at once): a
// response that goes out as fast as it is written (nearly all of them) costs no timer at all.
// Then one timer per response, armed only while writes are outstanding and re-armed at most
// once per timeout period (not per chunk).

export class SendTimeout {
  readonly #timeoutMs: number
  readonly #cut: () => void
  #outstanding = 0
  #progressAt = 0
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  /** The write callback to pass with each chunk. */
  readonly written = (): void => {
    if (this.#outstanding > 0) this.#outstanding--
    this.#progressAt = performance.now()
  }

  /** The client's socket drained ('drain'): everything written so far went out. */
  readonly caughtUp = (): void => {
    this.#outstanding = 0
    this.#progressAt = performance.now()
  }

  constructor (timeoutMs: number, cut: () => void) {
    this.#timeoutMs = timeoutMs
    this.#cut = cut
  }

  /** A chunk is about to be written with `written` as its callback. */
  writing (): void {
    if (this.#stopped) return
    // Time without progress counts from the first chunk that waits, not from the last progress.
    if (this.#outstanding++ === 0) this.#progressAt = performance.now()
    if (this.#timer === undefined) this.#arm(this.#timeoutMs)
  }

  /** The response is over (finished or its client gone): nothing to watch any more. */
  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm (ms: number): void {
    this.#timer = setTimeout(this.#check, ms)
    // The response's own end always stops it; it never keeps the process alive.
    this.#timer.unref()
  }

  readonly #check = (): void => {
    this.#timer = undefined
    if (this.#stopped || this.#outstanding <= 0) return
    const idle = performance.now() - this.#progressAt
    if (idle >= this.#timeoutMs) {
      this.stop()
      this.#cut()
      return
    }
    this.#arm(this.#timeoutMs - idle)
  }
}
