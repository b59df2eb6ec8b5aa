// Scrape-time metrics: figures that already exist as numbers in the running proxy (counter
// stats, cache sizes, session state, in-flight requests) are read when Prometheus asks, via
// prom-client `collect` callbacks, so they cost nothing on the request path.
import { Counter, Gauge, type Aggregator, type Registry } from 'prom-client'
import type { LiveTarget, Router } from '../proxy/router.js'
import type { SessionState } from '../registry/session-view.js'
import { viewAgeSeconds, type PathView, type RuntimeView } from './runtime-view.js'

/**
 * Which collectors a registry gets. `all`: one process does everything (the default). With
 * `--workers N` the primary holds the ZooKeeper side (`control`: session, counts, the targets
 * as ZooKeeper has them) and each worker the request path (`path`: in-flight, ejections,
 * tunnels, cache); the primary's /metrics merges them with prom-client's AggregatorRegistry,
 * which sums unless a metric names another `aggregator` (the ones below say why).
 */
export type CollectorPart = 'all' | 'control' | 'path'

export interface CollectorViews {
  readonly control: () => RuntimeView | undefined
  readonly path: () => PathView | undefined
}

const SESSION_STATES: readonly SessionState[] = ['connecting', 'connected', 'suspended', 'expired', 'auth_failed', 'closed']

export function registerCollectors (registry: Registry, views: CollectorViews, part: CollectorPart = 'all'): void {
  if (part !== 'path') registerControl(registry, views.control)
  if (part !== 'control') registerPath(registry, views.path)
  registerProcess(registry)
}

function helpers<V> (registry: Registry, view: () => V | undefined, router: (v: V) => Router): {
  gauge: (name: string, help: string, value: (v: V | undefined) => number, aggregator?: Aggregator) => void
  mirror: (name: string, help: string, value: (v: V) => number | undefined) => void
  perTarget: (name: string, help: string, value: (t: LiveTarget, r: Router) => number, aggregator?: Aggregator) => void
} {
  return {
    gauge: (name, help, value, aggregator = 'sum') => {
      registry.registerMetric(new Gauge({ name, help, aggregator, registers: [], collect () { this.set(value(view())) } }))
    },
    // Totals kept elsewhere as plain numbers, exported as counters by copying them at scrape time.
    mirror: (name, help, value) => {
      registry.registerMetric(new Counter({
        name,
        help,
        registers: [],
        collect () {
          const v = view()
          const n = v === undefined ? undefined : value(v)
          this.reset()
          if (n !== undefined && n > 0) this.inc(n)
        }
      }))
    },
    // Per-target gauges are rebuilt from the live targets on every scrape: a target that left
    // disappears from them at once, with no bookkeeping.
    perTarget: (name, help, value, aggregator = 'sum') => {
      registry.registerMetric(new Gauge({
        name,
        help,
        labelNames: ['target'],
        aggregator,
        registers: [],
        collect () {
          this.reset()
          const v = view()
          if (v === undefined) return
          const r = router(v)
          for (const t of r.targets) this.set({ target: t.name }, value(t, r))
        }
      }))
    }
  }
}

/** The ZooKeeper side: session, the targets as ZooKeeper has them, their counts. */
function registerControl (registry: Registry, view: () => RuntimeView | undefined): void {
  const { gauge, mirror, perTarget } = helpers(registry, view, v => v.router)

  registry.registerMetric(new Gauge({
    name: 'zkproxy_zookeeper_session_state',
    help: 'ZooKeeper session state: 1 for the current state, 0 for the others.',
    labelNames: ['state'],
    registers: [],
    collect () {
      const current = view()?.session.state
      for (const s of SESSION_STATES) this.set({ state: s }, s === current ? 1 : 0)
    }
  }))
  gauge('zkproxy_targets_rejected', 'Target znodes present but ignored (malformed data or refused by policy).', v => v?.targets.snapshot?.rejected.length ?? 0)
  perTarget('zkproxy_target_requests', 'Requests routed to the target by all proxies: its ZooKeeper count plus this proxy\'s unflushed ones.', t => t.requests)
  // Routes as an info metric to join on `target`, rather than a `route` label on the per-target
  // series: a target serving two routes would be counted twice in every sum over them.
  registry.registerMetric(new Gauge({
    name: 'zkproxy_target_route_info',
    help: 'One series per route a target declares (route="(default)" for the default pool), value 1; join on target.',
    labelNames: ['target', 'route'],
    registers: [],
    collect () {
      this.reset()
      for (const p of view()?.router.pools ?? []) for (const t of p.targets) this.set({ target: t.name, route: p.key }, 1)
    }
  }))

  mirror('zkproxy_count_flushes_total', 'Batched count flushes to ZooKeeper (one per tick with unflushed requests).', v => v.counter.stats.flushes)
  mirror('zkproxy_count_writes_total', 'Versioned count writes (setData) that succeeded.', v => v.counter.stats.writes)
  mirror('zkproxy_count_conflicts_total', 'Count writes that met a version conflict (another proxy wrote first) and were retried.', v => v.counter.stats.conflicts)
  mirror('zkproxy_count_failures_total', 'Count writes that failed (the requests are kept for the next flush).', v => v.counter.stats.failures)
  mirror('zkproxy_count_dropped_total', 'Counted requests dropped because their target left for good or another registration took its name.', v => v.counter.stats.dropped)
  mirror('zkproxy_count_carried_total', 'Unflushed requests carried from a target\'s gone node to the node it re-registered with.', v => v.counter.stats.carried)
  gauge('zkproxy_count_unflushed', 'Requests counted by this proxy for live targets and not yet written to ZooKeeper.', v => v?.counter.unflushed ?? 0)
  gauge('zkproxy_count_awaiting_return', 'Requests counted for targets whose znode is gone, kept for 60 s in case the same registration comes back.', v => v?.counter.awaitingReturn ?? 0)
  gauge('zkproxy_targets_held', 'Targets kept in the view by the re-registration grace although their znode is gone.', v => v?.targets.heldCount ?? 0)
  mirror('zkproxy_target_removals_deferred_total', 'Target removals held back by the re-registration grace (right after a reconnect, they would have emptied most of a pool).', v => v.targets.stats.deferred)
  mirror('zkproxy_target_removals_expired_total', 'Held targets removed when the re-registration grace ended without them coming back.', v => v.targets.stats.expired)
  gauge('zkproxy_targets_view_age_seconds', 'Age of the view served: a saved view (--state-file) since it was saved, a live one since ZooKeeper was last reachable (0 while connected).', v => v === undefined ? 0 : viewAgeSeconds(v))
  gauge('zkproxy_targets_view_saved', '1 while the view saved by --state-file is served (ZooKeeper has not delivered one yet).', v => v?.savedView?.inUse === true ? 1 : 0)
}

/** The request path: what each process that serves requests holds (its router, tunnels, cache). */
function registerPath (registry: Registry, view: () => PathView | undefined): void {
  const { gauge, mirror, perTarget } = helpers(registry, view, v => v.router)

  registry.registerMetric(new Gauge({
    name: 'zkproxy_targets',
    help: 'Targets in the current snapshot, by local state: routable, ejected after failures (or by an operator), or drained by an operator.',
    labelNames: ['state'],
    // Ejection is per worker: the most any worker sees (summing would count a target per worker).
    aggregator: 'max',
    registers: [],
    collect () {
      const v = view()
      let ejected = 0
      let drained = 0
      for (const t of v?.router.targets ?? []) {
        // A drained target is skipped like an ejected one; counted once, as drained.
        if (v!.router.ejections.isDrained(t.name, t.generation)) drained++
        else if (v!.router.isEjected(t)) ejected++
      }
      this.set({ state: 'routable' }, (v?.router.targets.length ?? 0) - ejected - drained)
      this.set({ state: 'ejected' }, ejected)
      this.set({ state: 'drained' }, drained)
    }
  }))
  gauge('zkproxy_targets_view', '1 once the proxy has a complete view of the targets (until then it answers 503).', v => v?.router.hasView === true ? 1 : 0, 'min')
  perTarget('zkproxy_target_in_flight_requests', 'Requests this proxy has in flight to the target.', t => t.inFlight)
  perTarget('zkproxy_target_ejected', '1 while the target is ejected locally.', (t, r) => r.ejections.ejectedUntil(t.name) !== undefined && r.isEjected(t) ? 1 : 0, 'max')
  perTarget('zkproxy_target_drained', '1 while the target is drained on this proxy by an operator.', (t, r) => r.ejections.isDrained(t.name, t.generation) ? 1 : 0, 'max')
  registry.registerMetric(new Gauge({
    name: 'zkproxy_pool_targets',
    help: 'Targets per pool (route, or "(default)"), by local state: routable, or ejected after failures.',
    labelNames: ['route', 'state'],
    aggregator: 'max',
    registers: [],
    collect () {
      this.reset()
      const v = view()
      for (const p of v?.router.pools ?? []) {
        let ejected = 0
        for (const t of p.targets) if (v!.router.isEjected(t)) ejected++
        this.set({ route: p.key, state: 'routable' }, p.targets.length - ejected)
        this.set({ route: p.key, state: 'ejected' }, ejected)
      }
    }
  }))

  gauge('zkproxy_tunnels_open', 'WebSocket tunnels open now.', v => v?.listener.tunnels.stats().open ?? 0)
  mirror('zkproxy_tunnels_opened_total', 'WebSocket tunnels opened (upgrades sent to a target).', v => v.listener.tunnels.stats().opened)
  mirror('zkproxy_tunnels_refused_total', 'WebSocket upgrades refused with 503 because --max-tunnels were open.', v => v.listener.tunnels.stats().refused)
  registry.registerMetric(new Counter({
    name: 'zkproxy_tunnels_closed_total',
    help: 'WebSocket tunnels ended, by reason: client or target closed, idle timeout, drain, error.',
    labelNames: ['reason'],
    registers: [],
    collect () {
      this.reset()
      const closed = view()?.listener.tunnels.stats().closed
      if (closed !== undefined) for (const [reason, n] of Object.entries(closed)) if (n > 0) this.inc({ reason }, n)
    }
  }))
  registry.registerMetric(new Counter({
    name: 'zkproxy_tunnel_bytes_total',
    help: 'Bytes carried by WebSocket tunnels, by direction: up (client to target) or down.',
    labelNames: ['direction'],
    registers: [],
    collect () {
      this.reset()
      const s = view()?.listener.tunnels.stats()
      if (s !== undefined && s.bytesUp > 0) this.inc({ direction: 'up' }, s.bytesUp)
      if (s !== undefined && s.bytesDown > 0) this.inc({ direction: 'down' }, s.bytesDown)
    }
  }))
  perTarget('zkproxy_target_tunnels', 'WebSocket tunnels this proxy has open to the target.', (t) => view()?.listener.tunnels.perTarget().get(t.name) ?? 0)

  mirror('zkproxy_cache_hits_total', 'Requests answered from a fresh cached response (304s from it and coalesced waiters included).', v => v.cache?.stats().hits)
  mirror('zkproxy_cache_misses_total', 'Cache lookups with no usable response: the request was forwarded.', v => v.cache?.stats().misses)
  mirror('zkproxy_cache_stale_total', 'Stale cached responses served because every target failed (stale-if-error).', v => v.cache?.stats().stale)
  mirror('zkproxy_cache_revalidating_total', 'Stale cached responses served while another request revalidated them (stale-while-revalidate); also counted as hits.', v => v.cache?.stats().revalidating)
  registry.registerMetric(new Counter({
    name: 'zkproxy_cache_bypasses_total',
    help: 'Requests that did not consult the cache, by reason.',
    labelNames: ['reason'],
    registers: [],
    collect () {
      this.reset()
      const bypasses = view()?.cache?.stats().bypasses
      if (bypasses !== undefined) for (const [reason, n] of Object.entries(bypasses)) if (n > 0) this.inc({ reason }, n)
    }
  }))
  mirror('zkproxy_cache_coalesced_total', 'Misses that waited for another request\'s upstream response instead of sending their own.', v => v.cache?.stats().coalesced)
  mirror('zkproxy_cache_stores_total', 'Responses stored in the cache.', v => v.cache?.stats().stored)
  mirror('zkproxy_cache_stored_bytes_total', 'Body bytes of the responses stored in the cache.', v => v.cache?.stats().storedBytes)
  mirror('zkproxy_cache_invalidated_total', 'Cached responses dropped by a successful unsafe request to their URL (RFC 9111 section 4.4).', v => v.cache?.stats().invalidated)
  mirror('zkproxy_cache_clears_total', 'Times the whole cache was dropped because the content revision changed.', v => v.cache?.stats().clears)
  mirror('zkproxy_cache_revision_drops_total', 'Cached responses dropped because no live target of their pool carries their content revision any more.', v => v.cache?.stats().revisionDrops)
  mirror('zkproxy_cache_purged_total', 'Cached responses dropped by fleet-wide purges.', v => v.cache?.stats().purged)
  mirror('zkproxy_cache_evictions_total', 'Cached responses evicted to stay within the entry and byte bounds.', v => v.cache?.stats().evictions)
  mirror('zkproxy_cache_expirations_total', 'Cached responses dropped because their lifetime (and stale window) ended.', v => v.cache?.stats().expirations)
  gauge('zkproxy_cache_entries', 'Responses in the cache.', v => v?.cache?.stats().entries ?? 0)
  gauge('zkproxy_cache_size_bytes', 'Bytes held by the cache.', v => v?.cache?.stats().bytes ?? 0)
  gauge('zkproxy_cache_uncacheable_keys', 'Keys remembered as not storable: their misses are not coalesced.', v => v?.cache?.stats().uncacheableKeys ?? 0)
}

/** This process's own figures; with workers, summed over the processes (start time: the oldest). */
function registerProcess (registry: Registry): void {
  const gauge = (name: string, help: string, value: () => number, aggregator: Aggregator = 'sum'): void => {
    registry.registerMetric(new Gauge({ name, help, aggregator, registers: [], collect () { this.set(value()) } }))
  }
  // Process figures without prom-client's default collectors: those install process-wide
  // observers once per registry and never remove them, which several proxies in one process
  // (the tests) would pile up. These are read on demand.
  gauge('zkproxy_process_start_time_seconds', 'Start time of the process, in seconds since the Unix epoch.', () => Math.round(performance.timeOrigin / 1000), 'min')
  gauge('zkproxy_process_resident_memory_bytes', 'Resident set size of the process.', () => process.memoryUsage.rss())
  gauge('zkproxy_nodejs_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed)
  registry.registerMetric(new Counter({
    name: 'zkproxy_process_cpu_seconds_total',
    help: 'User and system CPU time spent by the process.',
    registers: [],
    collect () {
      const u = process.cpuUsage()
      this.reset()
      this.inc((u.user + u.system) / 1e6)
    }
  }))
}
