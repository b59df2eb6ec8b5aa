// What happens when an attempt to reach a target fails (the exchange and WebSocket tunnels
// ask): classify the failure, eject the target when it did not answer, and pick the next
// target of the request's pool when the request may be sent again. RFC 9110 §9.2.2: once a request may have reached the origin, only idempotent methods
// are retried; a streamed body cannot be replayed at all; nothing is retried once a byte of
// the response went to the client (the caller checks that: `sent`).
import type { Logger } from 'pino'
import type { LiveTarget, Router } from './router.js'

/** Where an attempt failed: before the request could reach the backend, or after. */
export type FailureStage = 'connect' | 'sent' | 'timeout' | 'other'

// undici / Node error codes, translated once (foreign codes in one table).
const STAGE_BY_CODE: Record<string, FailureStage> = {
  ECONNREFUSED: 'connect',
  UND_ERR_CONNECT_TIMEOUT: 'connect',
  EHOSTUNREACH: 'connect',
  ENETUNREACH: 'connect',
  EADDRNOTAVAIL: 'connect',
  ENOTFOUND: 'connect',
  EAI_AGAIN: 'connect',
  ECONNRESET: 'sent',
  EPIPE: 'sent',
  UND_ERR_SOCKET: 'sent',
  UND_ERR_CLOSED: 'sent',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout'
}

export function failureStage (err: unknown): FailureStage {
  let e = err as { code?: unknown, cause?: unknown } | undefined
  // A wrapped error carries undici's as its cause; walk down to the first known code.
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    if (typeof e.code === 'string' && STAGE_BY_CODE[e.code] !== undefined) return STAGE_BY_CODE[e.code]!
    e = e.cause as typeof e
  }
  return 'other'
}

const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

export interface ForwardHooks {
  /** Counters for metrics; all optional. */
  onFailover?: (from: LiveTarget, stage: FailureStage) => void
  onEjection?: (t: LiveTarget) => void
  onUpstreamResponse?: (t: LiveTarget, statusCode: number) => void
  /** The client has the whole upstream response (or went away); `durationMs` since the first attempt. */
  onComplete?: (t: LiveTarget, statusCode: number, durationMs: number) => void
  /**
   * Not a counter but a question (--trust-proxy): may this downstream peer's X-Forwarded-Proto
   * and -Host be passed on as sent? Absent: nobody's are. It travels with the hooks because
   * they are what buildProxyApp hands the forwarder.
   */
  trustForwarded?: (peerAddress: string) => boolean
}

/** Where the next target comes from: the request's pool (the router's default pool when unrouted). */
export interface NextTarget {
  next: (tried: ReadonlySet<string>) => LiveTarget | undefined
}

/** One request's attempts: how many so far, and which targets were tried. */
export interface AttemptLog {
  n: number
  tried: Set<string> | undefined
}

export interface FailureContext {
  readonly router: Router
  readonly attempts: number
  readonly log: Logger
  readonly hooks: ForwardHooks | undefined
}

export interface FailureOutcome {
  readonly stage: FailureStage
  /** The target to try next, already counted in `log.tried`; undefined: answer the client. */
  readonly next: LiveTarget | undefined
}

/**
 * Records that the attempt to `t` failed with `error` (the caller has already ended it in the
 * router) and decides whether to fail over. `sent`: part of the response already went to the
 * client; `replayable`: the request body, if any, can be sent again.
 */
export function attemptFailed (ctx: FailureContext, t: LiveTarget, error: unknown, attempts: AttemptLog,
  method: string, replayable: boolean, sent: boolean, pool: NextTarget = ctx.router): FailureOutcome {
  const { router, log, hooks } = ctx
  const stage = failureStage(error)
  if (stage === 'connect' || stage === 'sent') {
    const wasEjected = router.isEjected(t)
    router.failed(t, stage === 'sent')
    if (!wasEjected && router.isEjected(t)) {
      log.info({ target: t.name, stage, until: router.ejections.ejectedUntil(t.name) }, 'target ejected')
      hooks?.onEjection?.(t)
    }
  }
  const mayRetry = !sent && attempts.n < ctx.attempts && replayable &&
    (stage === 'connect' || (stage === 'sent' && IDEMPOTENT.has(method)))
  if (!mayRetry) return { stage, next: undefined }
  attempts.tried ??= new Set()
  attempts.tried.add(t.name)
  // Failover stays inside the request's pool: another app's targets never answer for it.
  const next = pool.next(attempts.tried)
  if (next !== undefined) {
    hooks?.onFailover?.(t, stage)
    log.debug({ from: t.name, to: next.name, stage, err: error }, 'failover')
  }
  return { stage, next }
}

/** The message of the 502 sent when every attempt failed. */
export function exhaustedMessage (attempts: AttemptLog, max: number, last: LiveTarget, error: unknown): string {
  const detail = error instanceof Error ? error.message : String(error)
  return `every attempt failed (${attempts.n} of ${max}); last: ${last.name}: ${detail}`
}
