// Runs an async step never twice at once and never misses a request to run it: a kick while
// it runs makes it run once more afterwards (many kicks, one more run). Watches and the
// ephemeral node keeper are driven by this, because ZooKeeper events may arrive while the
// previous re-read is still in flight and must still be seen.
export class SerialTask {
  readonly #step: () => Promise<void>
  readonly #stopped: () => boolean
  #running = false
  #again = false

  /** `step` must handle its own errors; `stopped` ends the loop. */
  constructor (step: () => Promise<void>, stopped: () => boolean) {
    this.#step = step
    this.#stopped = stopped
  }

  kick (): void {
    if (this.#stopped()) return
    if (this.#running) { this.#again = true; return }
    this.#running = true
    void this.#loop().finally(() => { this.#running = false })
  }

  async #loop (): Promise<void> {
    do {
      this.#again = false
      await this.#step()
    } while (this.#again && !this.#stopped())
  }
}
