// Polling with a deadline instead of sleeps (a flaky test is a race to find, not a sleep to lengthen). One timing object scales
// every timeout so a slow CI machine can stretch them all at once.

import { setTimeout as sleep } from 'node:timers/promises'

function readScale (raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 1
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0) {
    throw new Error(`ZKPROXY_TEST_TIME_SCALE must be a positive number, got ${JSON.stringify(raw)}`)
  }
  return n
}

/** Multiplier for every test timeout; from env ZKPROXY_TEST_TIME_SCALE (default 1, CI may set 2). */
export const timing: { scale: number } = { scale: readScale(process.env['ZKPROXY_TEST_TIME_SCALE']) }

/** `n` milliseconds scaled by `timing.scale`. */
export function ms (n: number): number {
  return Math.round(n * timing.scale)
}

export interface UntilOptions {
  /** Deadline, taken literally: pass `ms(n)` to scale it. Default `ms(5000)`. */
  timeoutMs?: number
  /** Pause between attempts. Default 50 ms. */
  intervalMs?: number
  /** What we are waiting for; named in the timeout error. */
  message?: string
  /** Stops waiting at once, rejecting with the signal's reason (e.g. the awaited process died). */
  signal?: AbortSignal
}

const PENDING = Symbol('pending')

/**
 * Calls `fn` until it returns something other than `undefined` and returns that value.
 * A throwing/rejecting `fn` counts as "not yet" (the last error is reported on timeout),
 * so conditions may probe things that are still starting up.
 */
export async function untilValue<T> (
  fn: () => T | undefined | Promise<T | undefined>,
  opts: UntilOptions = {}
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? ms(5000)
  const intervalMs = opts.intervalMs ?? 50
  const started = Date.now()
  const deadline = started + timeoutMs
  let lastError: unknown
  let attempts = 0
  for (;;) {
    opts.signal?.throwIfAborted()
    attempts++
    const remaining = deadline - Date.now()
    try {
      // A probe that never settles must not outlive the deadline.
      const value = await raceDeadline(Promise.resolve().then(fn), Math.max(remaining, 0))
      if (value !== PENDING && value !== undefined) return value
      if (value === PENDING) lastError = new Error('the last attempt did not settle before the deadline')
    } catch (err) {
      lastError = err
    }
    opts.signal?.throwIfAborted()
    const left = deadline - Date.now()
    if (left <= 0) {
      const what = opts.message ?? 'condition'
      let text = `until: timed out after ${Date.now() - started} ms (limit ${timeoutMs} ms, ${attempts} attempts) waiting for ${what}`
      if (lastError !== undefined) text += `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
      throw new Error(text, lastError === undefined ? undefined : { cause: lastError })
    }
    await sleep(Math.min(intervalMs, left), undefined, opts.signal === undefined ? undefined : { signal: opts.signal })
      .catch(() => {}) // an abort is reported by throwIfAborted() above, with its reason
  }
}

/** Resolves once `cond` returns true; throws an error naming `opts.message` on timeout. */
export async function until (
  cond: () => boolean | Promise<boolean>,
  opts: UntilOptions = {}
): Promise<void> {
  await untilValue(async () => ((await cond()) ? true : undefined), opts)
}

async function raceDeadline<T> (p: Promise<T>, limitMs: number): Promise<T | typeof PENDING> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<typeof PENDING>((resolve) => {
    // Give a probe that is already settled one chance even at a zero limit.
    timer = setTimeout(() => resolve(PENDING), Math.max(limitMs, 1))
  })
  try {
    return await Promise.race([p, expired])
  } finally {
    clearTimeout(timer)
  }
}
