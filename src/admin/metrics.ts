// Prometheus metrics for one proxy (names `zkproxy_<noun>_<unit|total>`). Each
// ProxyMetrics owns its own Registry, never prom-client's global one, so several proxies can
// live in one process (the integration tests do). Per-request work is one increment on a
// label child cached per target; everything that already exists as a number somewhere
// (counter stats, cache stats, session state, in-flight) is read at scrape time by `collect`.
import { AggregatorRegistry, Counter, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import type { FailureStage, ForwardHooks } from '../proxy/failover.js'
import type { LiveTarget } from '../proxy/router.js'
import { registerCollectors, type CollectorPart } from './collectors.js'
import type { Snapshot } from '../registry/target-set.js'
import type { ConnectedEvent, SessionState } from '../registry/session-view.js'
import type { PathView, RuntimeView } from './runtime-view.js'

export type { PathView, RuntimeView } from './runtime-view.js'

/** One registry's metrics as `Registry.getMetricsAsJSON()` gives them (what workers send). */
export type MetricsJson = Array<MetricObjectWithValues<MetricValue<string>>>

// Status codes are folded into classes: the label set stays bounded by targets × 6.
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const
export type StatusClass = typeof CLASSES[number]
const STAGES: readonly FailureStage[] = ['connect', 'sent', 'timeout', 'other']
// Loopback replicas answer in about a millisecond, remote ones in tens: start fine, end at 10 s.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/**
 * A departed target's series are dropped only after this long, so that the scrapes in between
 * still see its last values (dropping them at once would lose its final requests), while a
 * proxy that sees thousands of short-lived replicas over weeks does not keep them all.
 */
export const DEPARTED_SERIES_TTL_MS = 10 * 60_000

export function statusClass (status: number): StatusClass {
  const i = Math.floor(status / 100) - 1
  return i >= 0 && i < 5 ? CLASSES[i]! : 'other'
}

interface TargetChildren {
  readonly responses: Array<Counter.Internal | undefined>
  readonly latency: Histogram.Internal<'target'>
}

/** Per-target figures of this proxy, for the dashboard (`ProxyMetrics.perTarget`). */
export interface TargetTally {
  readonly responses: Record<StatusClass, number>
  readonly latencySumSeconds: number
  readonly latencyCount: number
  readonly failovers: number
  readonly ejections: number
}

/** Process-wide figures of this proxy, for the dashboard (`ProxyMetrics.tallies`). */
export interface Tallies {
  readonly reconnects: number
  readonly expirations: number
  readonly cacheHits: number
  readonly cacheMisses: number
  readonly cacheStale: number
}

export class ProxyMetrics {
  readonly registry = new Registry()
  readonly #responses: Counter<'target' | 'code'>
  readonly #latency: Histogram<'target'>
  readonly #failovers: Counter<'target' | 'stage'>
  readonly #ejections: Counter<'target'>
  readonly #reconnects: Counter
  readonly #expirations: Counter
  readonly #snapshots: Counter

  // Keyed by the router's LiveTarget objects (one per registration), so the lookup per request
  // is one WeakMap get and a gone registration's entry is collected with it.
  readonly #children = new WeakMap<LiveTarget, TargetChildren>()
  readonly #departed = new Map<string, number>()
  #liveNames = new Set<string>()
  #view: RuntimeView | undefined
  #pathView: PathView | undefined
  #others: (() => Promise<MetricsJson[]>) | undefined
  readonly #now: () => number

  /** `part`: which scrape-time collectors this registry gets (see CollectorPart). */
  constructor (opts: { now?: () => number, part?: CollectorPart } = {}) {
    this.#now = opts.now ?? Date.now
    const registers = [this.registry]
    const view = (): RuntimeView | undefined => this.#view

    this.#responses = new Counter({ name: 'zkproxy_requests_total', help: 'Requests forwarded to a target and answered by it, by status class of its response.', labelNames: ['target', 'code'], registers })
    this.#latency = new Histogram({ name: 'zkproxy_request_duration_seconds', help: 'Forwarded requests: from the first attempt until the client had the whole response (failovers included, cache hits not).', labelNames: ['target'], buckets: LATENCY_BUCKETS, registers })
    this.#failovers = new Counter({ name: 'zkproxy_failovers_total', help: 'Attempts that failed and were retried on another target, by the target that failed and the stage of the failure.', labelNames: ['target', 'stage'], registers })
    this.#ejections = new Counter({ name: 'zkproxy_ejections_total', help: 'Times a target was ejected locally after a connection failure.', labelNames: ['target'], registers })
    this.#reconnects = new Counter({ name: 'zkproxy_zookeeper_reconnects_total', help: 'ZooKeeper connections re-established after the first (same or new session).', registers })
    this.#expirations = new Counter({ name: 'zkproxy_zookeeper_session_expirations_total', help: 'ZooKeeper sessions lost (expired, or disconnected longer than the session timeout).', registers })
    this.#snapshots = new Counter({ name: 'zkproxy_target_snapshots_total', help: 'New snapshots of the targets taken from ZooKeeper watches (membership or data changed).', registers })

    registerCollectors(this.registry, { control: view, path: () => this.#view ?? this.#pathView }, opts.part)
  }

  get contentType (): string { return this.registry.contentType }

  async render (): Promise<string> {
    return await (await this.#merged()).metrics()
  }

  /**
   * With workers: every scrape (and the dashboard's figures) merges this registry with the
   * workers' (`others` asks them), summed by prom-client's AggregatorRegistry.
   */
  aggregateWith (others: () => Promise<MetricsJson[]>): void { this.#others = others }

  /** This registry alone, as a worker sends it to the primary. */
  async json (): Promise<MetricsJson> {
    this.#purgeDeparted()
    return await this.registry.getMetricsAsJSON()
  }

  async #merged (): Promise<Registry> {
    this.#purgeDeparted()
    if (this.#others === undefined) return this.registry
    const [own, others] = await Promise.all([this.registry.getMetricsAsJSON(), this.#others()])
    // Our own first: a metric's aggregator is taken from the first registry that has it.
    return AggregatorRegistry.aggregate([own, ...others])
  }

  /** A worker's request path (no ZooKeeper session, counter or target set of its own). */
  observePath (view: PathView): void { this.#pathView = view }

  /** Hooks for the exchange (src/proxy/exchange.ts): per-request work is a cached child's inc(). */
  readonly forwardHooks: ForwardHooks = {
    onUpstreamResponse: (t, status) => {
      const c = this.#childrenOf(t)
      const i = CLASSES.indexOf(statusClass(status))
      let child = c.responses[i]
      if (child === undefined) {
        child = this.#responses.labels(t.name, CLASSES[i]!)
        c.responses[i] = child
      }
      child.inc()
    },
    onComplete: (t, _status, durationMs) => { this.#childrenOf(t).latency.observe(durationMs / 1000) },
    onFailover: (t, stage) => { this.#failovers.inc({ target: t.name, stage }) },
    onEjection: (t) => { this.#ejections.inc({ target: t.name }) }
  }

  /** Starts reading the runtime: scrape-time gauges, and session and membership events. */
  observe (view: RuntimeView): void {
    this.#view = view
    let connectedBefore = view.session.state === 'connected'
    view.session.on('connected', (_e: ConnectedEvent) => {
      if (connectedBefore) this.#reconnects.inc()
      connectedBefore = true
    })
    view.session.on('state', (s: SessionState) => { if (s === 'expired') this.#expirations.inc() })
    // Our own previous names: the router has already applied this snapshot when we hear of it.
    view.targets.on('snapshot', (snap: Snapshot) => {
      this.#snapshots.inc()
      if (snap.counted !== undefined) return // the same targets, new counts
      const live = new Set(snap.targets.map(t => t.name))
      for (const name of live) this.#departed.delete(name)
      for (const name of this.#liveNames) if (!live.has(name)) this.#departed.set(name, this.#now())
      this.#liveNames = live
    })
  }

  /** This proxy's own per-target figures (for the dashboard), read from the series. */
  async perTarget (): Promise<Map<string, TargetTally>> {
    type Mutable = { -readonly [K in keyof TargetTally]: TargetTally[K] }
    const out = new Map<string, Mutable>()
    const get = (name: string): Mutable => {
      let e = out.get(name)
      if (e === undefined) {
        e = { responses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 }, latencySumSeconds: 0, latencyCount: 0, failovers: 0, ejections: 0 }
        out.set(name, e)
      }
      return e
    }
    const registry = this.#others === undefined ? undefined : await this.#merged()
    const values = async (m: { get: () => Promise<{ values: Array<MetricValue<string> & { metricName?: string }> }> }, name: string): Promise<Array<MetricValue<string> & { metricName?: string }>> =>
      registry === undefined ? (await m.get()).values : ((await registry.getSingleMetric(name)?.get())?.values ?? [])
    for (const v of await values(this.#responses, 'zkproxy_requests_total')) get(String(v.labels.target)).responses[v.labels.code as StatusClass] += v.value
    for (const v of await values(this.#latency, 'zkproxy_request_duration_seconds')) {
      if (v.metricName === 'zkproxy_request_duration_seconds_sum') get(String(v.labels.target)).latencySumSeconds = v.value
      else if (v.metricName === 'zkproxy_request_duration_seconds_count') get(String(v.labels.target)).latencyCount = v.value
    }
    for (const v of await values(this.#failovers, 'zkproxy_failovers_total')) get(String(v.labels.target)).failovers += v.value
    for (const v of await values(this.#ejections, 'zkproxy_ejections_total')) get(String(v.labels.target)).ejections += v.value
    return out
  }

  /** Process-wide tallies for the dashboard. */
  async tallies (): Promise<Tallies> {
    const one = async (c: Counter): Promise<number> => (await c.get()).values[0]?.value ?? 0
    return {
      reconnects: await one(this.#reconnects),
      expirations: await one(this.#expirations),
      cacheHits: this.#view?.cache?.stats().hits ?? 0,
      cacheMisses: this.#view?.cache?.stats().misses ?? 0,
      cacheStale: this.#view?.cache?.stats().stale ?? 0
    }
  }

  #childrenOf (t: LiveTarget): TargetChildren {
    let c = this.#children.get(t)
    if (c === undefined) {
      c = { responses: [], latency: this.#latency.labels(t.name) }
      this.#children.set(t, c)
    }
    return c
  }

  #purgeDeparted (): void {
    const cutoff = this.#now() - DEPARTED_SERIES_TTL_MS
    for (const [name, since] of this.#departed) {
      if (since > cutoff) continue
      this.#departed.delete(name)
      for (const code of CLASSES) this.#responses.remove({ target: name, code })
      for (const stage of STAGES) this.#failovers.remove({ target: name, stage })
      this.#latency.remove({ target: name })
      this.#ejections.remove({ target: name })
    }
  }
}
