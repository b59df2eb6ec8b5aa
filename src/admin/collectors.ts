// Scrape-time metrics: figures that already exist as numbers in the running proxy (counter
// stats, cache sizes, session state, in-flight requests) are read when Prometheus asks, via
// prom-client `collect` callbacks, so they cost nothing on the request path.
import { Counter, Gauge, type Registry } from 'prom-client'
import type { LiveTarget, Router } from '../proxy/router.js'
import type { SessionState } from '../zk/index.js'
import { viewAgeSeconds, type RuntimeView } from './metrics.js'

const SESSION_STATES: readonly SessionState[] = ['connecting', 'connected', 'suspended', 'expired', 'auth_failed', 'closed']

export function registerCollectors (registry: Registry, view: () => RuntimeView | undefined): void {
  const gauge = (name: string, help: string, value: (v: RuntimeView | undefined) => number): void => {
    registry.registerMetric(new Gauge({ name, help, registers: [], collect () { this.set(value(view())) } }))
  }
  // Totals kept elsewhere as plain numbers, exported as counters by copying them at scrape time.
  const mirror = (name: string, help: string, value: (v: RuntimeView) => number | undefined): void => {
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
  }
  // Per-target gauges are rebuilt from the live targets on every scrape: a target that left
  // disappears from them at once, with no bookkeeping.
  const perTarget = (name: string, help: string, value: (t: LiveTarget, r: Router) => number): void => {
    registry.registerMetric(new Gauge({
      name,
      help,
      labelNames: ['target'],
      registers: [],
      collect () {
        this.reset()
        const v = view()
        for (const t of v?.router.targets ?? []) this.set({ target: t.name }, value(t, v!.router))
      }
    }))
  }

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
  registry.registerMetric(new Gauge({
    name: 'zkproxy_targets',
    help: 'Targets in the current snapshot, by local state: routable, or ejected after failures.',
    labelNames: ['state'],
    registers: [],
    collect () {
      const v = view()
      let ejected = 0
      for (const t of v?.router.targets ?? []) if (v!.router.isEjected(t)) ejected++
      this.set({ state: 'routable' }, (v?.router.targets.length ?? 0) - ejected)
      this.set({ state: 'ejected' }, ejected)
    }
  }))
  gauge('zkproxy_targets_rejected', 'Target znodes present but ignored (malformed data or refused by policy).', v => v?.targets.snapshot?.rejected.length ?? 0)
  gauge('zkproxy_targets_view', '1 once the proxy has a complete view of the targets (until then it answers 503).', v => v?.router.hasView === true ? 1 : 0)
  gauge('zkproxy_targets_view_age_seconds', 'Age of the view served: a saved view (--state-file) since it was saved, a live one since ZooKeeper was last reachable (0 while connected).', v => v === undefined ? 0 : viewAgeSeconds(v))
  gauge('zkproxy_targets_view_saved', '1 while the view saved by --state-file is served (ZooKeeper has not delivered one yet).', v => v?.savedView?.inUse === true ? 1 : 0)
  perTarget('zkproxy_target_requests', 'Requests routed to the target by all proxies: its ZooKeeper count plus this proxy\'s unflushed ones.', t => t.requests)
  perTarget('zkproxy_target_in_flight_requests', 'Requests this proxy has in flight to the target.', t => t.inFlight)
  perTarget('zkproxy_target_ejected', '1 while the target is ejected locally.', (t, r) => r.isEjected(t) ? 1 : 0)

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

  mirror('zkproxy_cache_evictions_total', 'Cached responses evicted to stay within the entry and byte bounds.', v => v.cache?.stats().evictions)
  mirror('zkproxy_cache_expirations_total', 'Cached responses dropped because their lifetime (and stale window) ended.', v => v.cache?.stats().expirations)
  gauge('zkproxy_cache_entries', 'Responses in the cache.', v => v?.cache?.stats().entries ?? 0)
  gauge('zkproxy_cache_size_bytes', 'Bytes held by the cache.', v => v?.cache?.stats().bytes ?? 0)
  gauge('zkproxy_cache_uncacheable_keys', 'Keys remembered as not storable: their misses are not coalesced.', v => v?.cache?.stats().uncacheableKeys ?? 0)

  // Process figures without prom-client's default collectors: those install process-wide
  // observers once per registry and never remove them, which several proxies in one process
  // (the tests) would pile up. These are read on demand.
  gauge('zkproxy_process_start_time_seconds', 'Start time of the process, in seconds since the Unix epoch.', () => Math.round(performance.timeOrigin / 1000))
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
