/**
 * Request coalescing: concurrent misses for one key share one in-flight upstream call
 * (DESIGN "Concurrent misses for one key make one backend request"), like nginx's
 * `proxy_cache_lock`. Only the in-flight promise is shared; once it settles it is
 * forgotten, so a failure is handed to the callers that were waiting and never to later
 * ones (errors are not cached), and a success is cached, if at all, by the store.
 *
 * Each caller bounds its own wait: past `timeoutMs` it alone rejects with
 * `ZKPROXY_ERR_CACHE_COALESCE_TIMEOUT` and may make its own request (as nginx does after
 * `proxy_cache_lock_timeout`); the shared call keeps running for the others.
 *
 * The key decides who may share a result. Callers build it with
 * `ResponseCache.coalesceKey()` (URL + known Vary values) and, since the first response
 * for a URL may bring a Vary nobody knew, check `variantMatches()` before using the result.
 */

export const COALESCE_TIMEOUT_CODE = 'ZKPROXY_ERR_CACHE_COALESCE_TIMEOUT'

/** A waiter gave up on a shared in-flight call. Match on `code`, not on the class. */
export class CoalesceTimeoutError extends Error {
  readonly code = COALESCE_TIMEOUT_CODE
  readonly timeoutMs: number

  constructor (key: string, timeoutMs: number) {
    super(`waited more than ${timeoutMs} ms for a shared upstream request (${key})`)
    this.name = 'CoalesceTimeoutError'
    this.timeoutMs = timeoutMs
  }
}

export class Coalescer<T> {
  readonly #inflight = new Map<string, Promise<T>>()

  /** Keys with a call in flight. */
  get size (): number {
    return this.#inflight.size
  }

  /** Whether a call for `key` is in flight. */
  has (key: string): boolean {
    return this.#inflight.has(key)
  }

  /**
   * Runs `fn` unless a call for `key` is already in flight, in which case its outcome is
   * shared. `timeoutMs` bounds this caller's wait (≤ 0 or Infinity: no bound); the first
   * caller is bounded too, so every caller has the same contract.
   */
  run (key: string, fn: () => Promise<T>, timeoutMs: number): Promise<T> {
    let shared = this.#inflight.get(key)
    if (shared === undefined) {
      // `new Promise` turns a synchronous throw of fn into a rejection like any other.
      const started = new Promise<T>((resolve) => { resolve(fn()) })
      const tracked = started.finally(() => {
        // Forget only our own call: a later one for the same key may have replaced it.
        if (this.#inflight.get(key) === tracked) this.#inflight.delete(key)
      })
      shared = tracked
      this.#inflight.set(key, tracked)
    }
    return waitFor(shared, key, timeoutMs)
  }
}

function waitFor<T> (shared: Promise<T>, key: string, timeoutMs: number): Promise<T> {
  if (!(timeoutMs > 0) || timeoutMs === Infinity) return shared
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new CoalesceTimeoutError(key, timeoutMs)) }, timeoutMs)
    // A waiter's timer must not keep a shutting-down process alive; the call itself may.
    timer.unref()
    // Always attached, so a rejection after every waiter timed out is still handled.
    shared.then(
      (value) => { clearTimeout(timer); resolve(value) },
      (err: unknown) => { clearTimeout(timer); reject(err) }
    )
  })
}
