// How many requests each target origin has in undici's hands (on a connection or waiting for
// one), counted from dispatch until undici settles them: the bound on the wait for a connection.
// undici's Agent opens at most --upstream-connections per origin and queues the rest without a
// bound or a deadline; a queue like that turns slow clients into everyone's outage. So the
// exchange asks here first: past connections + --upstream-queue the request gets 503 at once,
// and one that has to queue gets a deadline (--upstream-queue-timeout-ms, then 504).
//
// Not the router's in-flight count: that one ends when the client's request ends, while a
// request given up in undici's queue still occupies its place there until a connection takes it
// (and aborts it before sending a byte).

export class UpstreamSlots {
  readonly #held = new Map<string, number>()

  /** Requests of `origin` in undici's hands. */
  held (origin: string): number { return this.#held.get(origin) ?? 0 }

  take (origin: string): void { this.#held.set(origin, this.held(origin) + 1) }

  give (origin: string): void {
    const n = this.held(origin) - 1
    if (n <= 0) this.#held.delete(origin)
    else this.#held.set(origin, n)
  }

  /** Origins with requests in undici's hands (0 once every request settled). */
  get total (): number {
    let n = 0
    for (const v of this.#held.values()) n += v
    return n
  }
}
