// What the admin side reads of a running proxy (built by src/cli/proxy-runtime.ts). A module of
// its own so that metrics.ts and the scrape-time collectors both depend on it, not on each other.
import type { Router } from '../proxy/router.js'
import type { CacheStageStats } from '../proxy/cache-stage.js'
import type { TunnelStats } from '../proxy/tunnel.js'
import type { RequestCounter } from '../registry/request-counter.js'
import type { SessionView } from '../registry/session-view.js'
import type { TargetSet } from '../registry/target-set.js'

export interface RuntimeView {
  readonly url: string
  readonly id: string
  readonly session: SessionView
  readonly router: Router
  readonly counter: RequestCounter
  readonly targets: TargetSet
  /** Absent when --cache-ttl 0. Only `stats()` is read, so any cache with it fits. */
  readonly cache: { stats (): CacheStageStats } | undefined
  /** The public listener: draining after SIGTERM once `closing`; its WebSocket tunnels. */
  readonly listener: { readonly closing: boolean, readonly tunnels: { stats (): TunnelStats, perTarget (): Map<string, number> } }
  /** Publishes a fleet-wide purge (POST /purge); resolves to its sequence. Absent: no purges here. */
  readonly purge?: (filter: { host?: string, prefix?: string }) => Promise<number>
}

/** The request path's part of a runtime: what a worker process has (no ZooKeeper). */
export type PathView = Pick<RuntimeView, 'router' | 'cache' | 'listener'>
