// Health checks for `zkproxy register --health-path` (after SmartStack's nerve): GET the
// backend's health path on a fixed cadence and report transitions only, with hysteresis —
// `unhealthyAfter` consecutive failures to go down, `healthyAfter` consecutive 2xx to come back —
// so one slow answer does not make the target flap in every proxy's view.
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import { request } from 'undici'

export interface ProbeResult {
  /** The HTTP status, when the backend answered at all. */
  readonly status?: number
  /** Why there was no answer (refused, timed out, ...). */
  readonly error?: string
  readonly durationMs: number
}

export type Probe = (url: URL, timeoutMs: number) => Promise<ProbeResult>

/**
 * One GET with a deadline covering the whole exchange. Never throws. A fresh connection each
 * time (`reset`): a pooled keep-alive socket could hide a backend that stopped accepting.
 */
export async function probeHttp (url: URL, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now()
  const elapsed = (): number => Math.round(performance.now() - started)
  try {
    const res = await request(url, {
      method: 'GET',
      reset: true,
      headers: { 'user-agent': 'zkproxy-register', accept: '*/*', 'cache-control': 'no-cache' },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs)
    })
    // The body is not looked at, but it must be consumed or the socket is never released;
    // past the limit undici drops the connection instead of reading on.
    await res.body.dump({ limit: 64 * 1024, signal: AbortSignal.timeout(timeoutMs) })
    return { status: res.statusCode, durationMs: elapsed() }
  } catch (err) {
    return { error: describe(err, timeoutMs), durationMs: elapsed() }
  }
}

function describe (err: unknown, timeoutMs: number): string {
  const e = err as { name?: string, code?: string, message?: string, cause?: { code?: string, message?: string } }
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
    return `no answer within ${timeoutMs} ms`
  }
  // undici wraps socket errors; the OS code (ECONNREFUSED, ENOTFOUND) is what an operator needs.
  return e.message ?? e.cause?.message ?? e.code ?? String(err)
}

export function isHealthyStatus (status: number | undefined): boolean {
  return status !== undefined && status >= 200 && status < 300
}

export type HealthStatus = 'unknown' | 'healthy' | 'unhealthy'

/** Timers, injectable so the thresholds can be tested without waiting. */
export interface Scheduler {
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

const realScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => { clearTimeout(handle as NodeJS.Timeout) }
}

export interface HealthCheckerOptions {
  /** The full URL to GET (backend origin + health path). */
  readonly url: URL
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly unhealthyAfter: number
  readonly healthyAfter: number
  readonly probe?: Probe
  readonly scheduler?: Scheduler
}

export interface CheckEvent extends ProbeResult {
  readonly healthy: boolean
}

/**
 * Events: 'check' (CheckEvent, every check), 'healthy' and 'unhealthy' (the CheckEvent that
 * crossed the threshold; only on transitions, the first one out of 'unknown' included).
 */
export class HealthChecker extends EventEmitter {
  readonly #opts: HealthCheckerOptions
  readonly #probe: Probe
  readonly #timers: Scheduler
  #status: HealthStatus = 'unknown'
  #successes = 0
  #failures = 0
  #timer: unknown
  #running = false
  // A probe still in flight when stop() and start() follow each other must not start a second
  // loop: each loop carries the generation it was started in.
  #generation = 0

  constructor (opts: HealthCheckerOptions) {
    super()
    for (const k of ['intervalMs', 'timeoutMs', 'unhealthyAfter', 'healthyAfter'] as const) {
      if (!Number.isSafeInteger(opts[k]) || opts[k] < 1) throw new RangeError(`${k} must be a positive integer, got ${opts[k]}`)
    }
    this.#opts = opts
    this.#probe = opts.probe ?? probeHttp
    this.#timers = opts.scheduler ?? realScheduler
  }

  get status (): HealthStatus { return this.#status }

  /** Checks at once, then every `intervalMs` (measured from the start of each check). */
  start (): this {
    if (this.#running) return this
    this.#running = true
    void this.#tick(++this.#generation)
    return this
  }

  stop (): void {
    this.#running = false
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  async #tick (generation: number): Promise<void> {
    this.#timer = undefined
    let result: ProbeResult
    try {
      result = await this.#probe(this.#opts.url, this.#opts.timeoutMs)
    } catch (err) {
      // An injected probe may throw; the real one never does.
      result = { error: (err as Error).message, durationMs: 0 }
    }
    if (!this.#running || generation !== this.#generation) return
    this.#record(result)
    // Checks never overlap: a slow answer delays the next check instead of stacking them.
    if (this.#running && generation === this.#generation) {
      this.#timer = this.#timers.setTimeout(() => { void this.#tick(generation) }, Math.max(0, this.#opts.intervalMs - result.durationMs))
    }
  }

  #record (result: ProbeResult): void {
    const healthy = isHealthyStatus(result.status)
    const ev: CheckEvent = { ...result, healthy }
    this.emit('check', ev)
    if (healthy) {
      this.#failures = 0
      this.#successes++
      if (this.#status !== 'healthy' && this.#successes >= this.#opts.healthyAfter) this.#set('healthy', ev)
    } else {
      this.#successes = 0
      this.#failures++
      if (this.#status !== 'unhealthy' && this.#failures >= this.#opts.unhealthyAfter) this.#set('unhealthy', ev)
    }
  }

  #set (status: 'healthy' | 'unhealthy', ev: CheckEvent): void {
    this.#status = status
    this.emit(status, ev)
  }
}
