// What the dashboard shows over time rather than as lifetime totals, kept in the admin side's
// memory: the cache's hit ratio over the last minute (a ring of once-a-second readings of the
// cumulative counts, so a lifetime 100% cannot hide a minute of misses), and targets that left,
// kept for a while with why and when (a replica that vanished from the table without a trace
// is a question nobody can answer afterwards).
import type { Snapshot } from '../registry/target-set.js'
import type { RuntimeView } from './runtime-view.js'

export const HIT_WINDOW_SEC = 60
/** How long a target that left stays listed. */
export const DEPARTED_KEEP_MS = 5 * 60_000
/** Departed targets listed at most (a fleet churning hundreds of replicas keeps the newest). */
const DEPARTED_MAX = 50

export interface HitWindow {
  /** Seconds actually covered (less than a minute just after start). */
  readonly seconds: number
  readonly hits: number
  readonly misses: number
  /** Requests that did not consult the cache (unsafe methods, `no-cache`/`no-store`, preconditions). */
  readonly bypassed: number
  /** hits / (hits + misses + bypassed); null when there was no request. */
  readonly ratio: number | null
}

/**
 * Why a target left, as far as one proxy can tell: ZooKeeper only says the znode is gone.
 * `session expired` when this proxy's requests to it were failing when it went (a crashed or
 * cut-off replica whose ephemeral node went with its session); `rejected` when the znode is
 * still there but its data no longer decodes; `deregistered` otherwise (the replica deleted
 * its own znode on SIGTERM, or someone deleted it).
 */
export type DepartureReason = 'deregistered' | 'session expired' | 'rejected'

export interface DepartedTarget {
  readonly name: string
  readonly url: string
  readonly reason: DepartureReason
  readonly at: string
}

interface Reading { t: number, hits: number, misses: number, bypassed: number }
interface Known { url: string, failing: boolean }

export class RecentActivity {
  readonly #v: RuntimeView
  readonly #now: () => number
  readonly #ring: Reading[] = []
  #known = new Map<string, Known>()
  #departed: Array<DepartedTarget & { t: number }> = []
  #timer: NodeJS.Timeout | undefined
  readonly #onSnapshot = (s: Snapshot): void => { this.#update(s) }

  constructor (v: RuntimeView, now: () => number = Date.now) {
    this.#v = v
    this.#now = now
  }

  start (): this {
    this.#v.targets.on('snapshot', this.#onSnapshot)
    this.#tick()
    this.#timer = setInterval(() => { this.#tick() }, 1000)
    this.#timer.unref()
    return this
  }

  stop (): void {
    this.#v.targets.off('snapshot', this.#onSnapshot)
    clearInterval(this.#timer)
  }

  hitWindow (): HitWindow | null {
    const now = this.#reading()
    if (now === undefined) return null
    const first = this.#ring[0] ?? now
    const hits = now.hits - first.hits
    const misses = now.misses - first.misses
    const bypassed = now.bypassed - first.bypassed
    const all = hits + misses + bypassed
    return { seconds: Math.round((now.t - first.t) / 1000), hits, misses, bypassed, ratio: all === 0 ? null : hits / all }
  }

  departed (): DepartedTarget[] {
    this.#expire()
    return this.#departed.map(({ t: _t, ...d }) => d)
  }

  #reading (): Reading | undefined {
    const s = this.#v.cache?.stats()
    if (s === undefined) return undefined
    const bypassed = s.bypasses.method + s.bypasses['request-no-cache'] + s.bypasses.precondition
    return { t: this.#now(), hits: s.hits, misses: s.misses, bypassed }
  }

  #tick (): void {
    const r = this.#reading()
    if (r !== undefined) {
      this.#ring.push(r)
      while (this.#ring.length > 1 && this.#ring[0]!.t < r.t - HIT_WINDOW_SEC * 1000) this.#ring.shift()
    }
    // Whether requests to each target are failing, remembered for the moment it leaves: by
    // then the router has forgotten it.
    const router = this.#v.router
    for (const t of router.targets) {
      const k = this.#known.get(t.name)
      if (k !== undefined) k.failing = router.ejections.isFailing(t.name, t.generation)
    }
  }

  #update (s: Snapshot): void {
    if (s.counted !== undefined) return // the same targets, new counts
    const now = this.#now()
    const next = new Map<string, Known>()
    for (const t of s.targets) next.set(t.name, { url: t.url, failing: this.#known.get(t.name)?.failing ?? false })
    const rejected = new Set(s.rejected.map(r => r.name))
    for (const [name, k] of this.#known) {
      if (next.has(name)) continue
      const reason: DepartureReason = rejected.has(name) ? 'rejected' : k.failing ? 'session expired' : 'deregistered'
      this.#departed.unshift({ name, url: k.url, reason, at: new Date(now).toISOString(), t: now })
    }
    // A target that came back is listed live again, not also as departed.
    this.#departed = this.#departed.filter(d => !next.has(d.name)).slice(0, DEPARTED_MAX)
    this.#known = next
  }

  #expire (): void {
    const cutoff = this.#now() - DEPARTED_KEEP_MS
    this.#departed = this.#departed.filter(d => d.t > cutoff)
  }
}
