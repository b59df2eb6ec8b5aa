// A cap on the requests one client address has in the proxy at once (--max-requests-per-client),
// counted from arrival to end, pipelined ones waiting their turn included: one address (a
// client pipelining thousands of requests, or hundreds of connections that never read) cannot
// take the upstream connections, the queues or the memory everyone shares. Beyond the cap: 429.
// Addresses behind one NAT share the cap; operators set it with that in mind (docs/security.md).

export class ClientLimit {
  readonly #max: number
  readonly #active = new Map<string, number>()

  /** `max` 0: no cap. */
  constructor (max: number) { this.#max = max }

  /** Takes a place for `client`; false when it already has `max` requests in. */
  enter (client: string): boolean {
    if (this.#max === 0) return true
    const n = this.#active.get(client) ?? 0
    if (n >= this.#max) return false
    this.#active.set(client, n + 1)
    return true
  }

  leave (client: string): void {
    if (this.#max === 0) return
    const n = (this.#active.get(client) ?? 1) - 1
    if (n <= 0) this.#active.delete(client)
    else this.#active.set(client, n)
  }

  /** Requests counted for `client` (all addresses without an argument). */
  active (client?: string): number {
    if (client !== undefined) return this.#active.get(client) ?? 0
    let n = 0
    for (const v of this.#active.values()) n += v
    return n
  }
}
