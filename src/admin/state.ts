// What the admin listener reports, computed from the running proxy's memory on each call
// (nothing here reads ZooKeeper): health, the target rows, and the dashboard's whole state.
import type { CounterStats } from '../registry/request-counter.js'
import type { SessionState } from '../registry/session-view.js'
import type { ProxyMetrics, StatusClass } from './metrics.js'
import { viewAgeSeconds, type RuntimeView } from './runtime-view.js'
import type { DepartedTarget, HitWindow, RecentActivity } from './recent.js'

export type HealthStatus = 'ok' | 'degraded' | 'unavailable'

export interface Health {
  readonly statusCode: 200 | 503
  readonly body: {
    readonly status: HealthStatus
    readonly degraded: boolean
    readonly reasons: readonly string[]
    readonly id: string
    readonly zookeeper: SessionState
    readonly view: boolean
    readonly targets: number
    readonly routable: number
    /** How old the view served is, in seconds (see viewAgeSeconds). */
    readonly viewAgeSeconds: number
    /** True while the view saved by --state-file is served. */
    readonly savedView: boolean
  }
}

/**
 * 503 only when the proxy cannot route at all for lack of a view (start-up without ZooKeeper).
 * With a view it is 200, `degraded` when ZooKeeper is not connected (static stability: the last
 * known targets keep serving, so taking every proxy out of a load balancer during a ZooKeeper
 * outage would turn a partial fault into a total one) or when no target is registered (every
 * proxy shares that view, and a clear 503 no_targets beats a connection refused).
 */
export function health (v: RuntimeView): Health {
  const state = v.session.state
  const targets = v.router.targets
  let routable = 0
  for (const t of targets) if (!v.router.isEjected(t)) routable++
  const reasons: string[] = []
  let status: HealthStatus = 'ok'
  if (!v.router.hasView) {
    status = 'unavailable'
    reasons.push(`no view of the targets yet (ZooKeeper session ${state})`)
  } else if (state === 'closed' || v.listener.closing) {
    status = 'unavailable'
    reasons.push('the proxy is stopping')
  } else {
    const saved = v.savedView
    if (saved?.inUse === true) {
      reasons.push(`serving the view saved in ${saved.path} at ${new Date(saved.savedAt ?? 0).toISOString()} (${Math.round(viewAgeSeconds(v))} s old) until ZooKeeper delivers one`)
    } else if (state !== 'connected') {
      reasons.push(`ZooKeeper session ${state}: serving the last known targets`)
    }
    if (targets.length === 0) reasons.push('no target is registered: requests are answered 503 no_targets')
    if (reasons.length > 0) status = 'degraded'
  }
  return {
    statusCode: status === 'unavailable' ? 503 : 200,
    body: { status, degraded: status === 'degraded', reasons, id: v.id, zookeeper: state, view: v.router.hasView, targets: targets.length, routable, viewAgeSeconds: Math.round(viewAgeSeconds(v) * 10) / 10, savedView: v.savedView?.inUse === true }
  }
}

export interface TargetRow {
  readonly name: string
  readonly url: string
  /** All proxies' requests to it (its ZooKeeper count plus this proxy's unflushed ones). */
  readonly requests: number
  /** Requests in flight to it from this proxy, its open WebSocket tunnels included. */
  readonly inFlight: number
  /** Open WebSocket tunnels from this proxy to it. */
  readonly tunnels: number
  readonly ejected: boolean
  readonly ejectedUntil: string | null
  /** Requests to it failed and it has not answered since (ejected, or its ejection lapsed unprobed). */
  readonly failing: boolean
  /** Drained on this proxy by an operator (POST /targets/:name/drain): no new requests but as a last resort. */
  readonly drained: boolean
  readonly revision: string | null
  readonly startedAt: string | null
  /** Its routes in canonical form (`shop.example.com`, `example.com/api`); empty: the default pool. */
  readonly routes: readonly string[]
  /** `--strip-prefix`: the matched route's path prefix is removed from what it is sent. */
  readonly stripPrefix: boolean
}

export function targetRows (v: RuntimeView): TargetRow[] {
  const tunnels = v.listener.tunnels.perTarget()
  return v.router.targets.map((t) => {
    const until = v.router.isEjected(t) ? v.router.ejections.ejectedUntil(t.name) : undefined
    return {
      name: t.name,
      url: t.info.url,
      requests: t.requests,
      inFlight: t.inFlight,
      tunnels: tunnels.get(t.name) ?? 0,
      ejected: until !== undefined,
      ejectedUntil: until === undefined ? null : new Date(until).toISOString(),
      failing: v.router.ejections.isFailing(t.name, t.generation),
      drained: v.router.ejections.isDrained(t.name, t.generation),
      revision: t.info.revision ?? null,
      startedAt: t.info.startedAt ?? null,
      routes: t.routes?.map(r => r.key) ?? [],
      stripPrefix: t.info.stripPrefix === true
    }
  })
}

/** One pool of this proxy's route table: a route (or `(default)`) and its targets' names. */
export interface PoolRow {
  readonly route: string
  readonly targets: readonly string[]
  /** Targets not ejected: 0 means requests for the route are answered from ejected ones or 503. */
  readonly routable: number
}

export function poolRows (v: RuntimeView): PoolRow[] {
  return v.router.pools.map(p => {
    let routable = 0
    for (const t of p.targets) if (!v.router.isEjected(t)) routable++
    return { route: p.key, targets: p.targets.map(t => t.name), routable }
  })
}

/** One target on the dashboard: the API row plus this proxy's own figures for it. */
export interface DashboardTarget extends TargetRow {
  readonly responses: Record<StatusClass, number>
  readonly latencySumSeconds: number
  readonly latencyCount: number
  readonly failovers: number
  readonly ejections: number
}

/** Everything the dashboard shows, pushed whole on every update (the page keeps no model). */
export interface DashboardState {
  readonly id: string
  readonly url: string
  readonly startedAt: string
  readonly now: number
  readonly health: Health['body']
  readonly zookeeper: { readonly state: SessionState, readonly sessionId: string | null, readonly connect: string, readonly reconnects: number, readonly expirations: number }
  readonly targets: readonly DashboardTarget[]
  readonly pools: readonly PoolRow[]
  readonly rejected: ReadonlyArray<{ readonly name: string, readonly reason: string }>
  readonly cache: { readonly entries: number, readonly bytes: number, readonly hits: number, readonly misses: number, readonly stale: number, readonly evictions: number, readonly lastMinute: HitWindow | null } | null
  readonly counts: CounterStats
  /** Targets that left in the last few minutes, newest first. */
  readonly departed: readonly DepartedTarget[]
}

const NO_RESPONSES: Record<StatusClass, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 }

export async function dashboardState (v: RuntimeView, metrics: ProxyMetrics, recent: RecentActivity, startedAt: string): Promise<DashboardState> {
  const [perTarget, tallies] = await Promise.all([metrics.perTarget(), metrics.tallies()])
  const stats = v.cache?.stats()
  return {
    id: v.id,
    url: v.url,
    startedAt,
    now: Date.now(),
    health: health(v).body,
    zookeeper: {
      state: v.session.state,
      sessionId: v.session.sessionId ?? null,
      connect: v.session.connectString,
      reconnects: tallies.reconnects,
      expirations: tallies.expirations
    },
    targets: targetRows(v).map(row => {
      const own = perTarget.get(row.name)
      return { ...row, responses: own?.responses ?? NO_RESPONSES, latencySumSeconds: own?.latencySumSeconds ?? 0, latencyCount: own?.latencyCount ?? 0, failovers: own?.failovers ?? 0, ejections: own?.ejections ?? 0 }
    }),
    pools: poolRows(v),
    rejected: v.targets.snapshot?.rejected ?? [],
    // Lookups are the cache layer's own request-level counts; sizes come from the store.
    cache: stats === undefined
      ? null
      : { entries: stats.entries, bytes: stats.bytes, hits: tallies.cacheHits, misses: tallies.cacheMisses, stale: tallies.cacheStale, evictions: stats.evictions, lastMinute: recent.hitWindow() },
    counts: { ...v.counter.stats },
    departed: recent.departed()
  }
}
