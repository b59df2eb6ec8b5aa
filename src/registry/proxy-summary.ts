// A proxy's own view of the targets' health, published into its `/proxies/<id>` znode so that
// `zkproxy status` can say which targets which proxies have set aside: a SIGKILLed replica
// keeps its znode until its session times out, but the proxies that tried it know at once.
// ZooKeeper is not a metrics store: the summary is small (names, not counts) and written at
// most once per interval, only when it changed, so writes per second stay below
// proxies / interval whatever the traffic (docs/znodes.md).
import type { Logger } from 'pino'
import { isRetryable, type ZkSession } from '../zk/index.js'

/** What changes in a proxy's announcement; the fixed part (url, admin, pid) comes from the caller. */
export interface ProxySummary {
  /** Targets this proxy set aside after failures and that have not answered since, sorted. */
  readonly ejected: readonly string[]
  /** Targets an operator drained on this proxy (its admin API), sorted. */
  readonly drained: readonly string[]
}

export interface SummaryWriterOptions {
  readonly session: ZkSession
  readonly path: string
  /** The whole node data for the current summary (the caller keeps its fixed fields in it). */
  readonly data: (summary: ProxySummary) => Buffer
  readonly summary: () => ProxySummary
  /** Whether our ephemeral node exists (written only then: creating it is the keeper's job). */
  readonly registered: () => boolean
  readonly logger: Logger
  /** Least time between two writes (default 5000 ms). */
  readonly minIntervalMs?: number
  /** How often the summary is compared with the last one written (default 1000 ms). */
  readonly checkMs?: number
}

export const SUMMARY_MIN_INTERVAL_MS = 5000

/** Rewrites the node when the summary changed, at most once per `minIntervalMs`. */
export class SummaryWriter {
  readonly #o: SummaryWriterOptions
  readonly #minIntervalMs: number
  #timer: NodeJS.Timeout | undefined
  #written = ''
  #lastWriteAt = Number.NEGATIVE_INFINITY
  #busy = false

  constructor (o: SummaryWriterOptions) {
    this.#o = o
    this.#minIntervalMs = o.minIntervalMs ?? SUMMARY_MIN_INTERVAL_MS
  }

  /** The summary now, as the node's data (for the keeper's (re)creation of the node). */
  current (): Buffer {
    const s = this.#o.summary()
    // Whatever a (re)created node holds is what was written.
    this.#written = JSON.stringify(s)
    return this.#o.data(s)
  }

  start (): this {
    this.#timer = setInterval(() => { void this.#check() }, this.#o.checkMs ?? 1000)
    this.#timer.unref()
    return this
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  async #check (): Promise<void> {
    const now = Date.now()
    if (this.#busy || now - this.#lastWriteAt < this.#minIntervalMs) return
    const s = this.#o.session
    if (s.state !== 'connected' || !this.#o.registered()) return
    const summary = this.#o.summary()
    const text = JSON.stringify(summary)
    if (text === this.#written) return
    this.#busy = true
    this.#lastWriteAt = now
    try {
      // Only our own node, at the version read: a node another session holds is not ours
      // to overwrite, and one re-created meanwhile gets the summary from its creation.
      const stat = await s.exists(this.#o.path)
      if (stat === null || stat.ephemeralOwner !== s.sessionId) return
      await s.set(this.#o.path, this.#o.data(summary), stat.version)
      this.#written = text
    } catch (err) {
      // Tried again at the next check after the interval; a conflict or a lost connection is
      // not worth a line each time.
      if (!isRetryable(err) && (err as { code?: string }).code !== 'ZKPROXY_ERR_ZK_BAD_VERSION' && (err as { code?: string }).code !== 'ZKPROXY_ERR_ZK_NO_NODE') {
        this.#o.logger.warn({ err, path: this.#o.path }, 'could not write the proxy summary')
      }
    } finally {
      this.#busy = false
    }
  }
}
