// What the admin side reads of a running proxy (built by src/cli/proxy-runtime.ts). A module of
// its own so that metrics.ts and the scrape-time collectors both depend on it, not on each other.
import type { Router } from '../proxy/router.js'
import type { CacheStageStats } from '../proxy/cache-stage.js'
import type { TunnelStats } from '../proxy/tunnel.js'
import type { RequestCounter } from '../registry/request-counter.js'
import type { SessionView } from '../registry/session-view.js'
import type { TargetSet } from '../registry/target-set.js'
import type { SavedViewStatus } from '../registry/state-file.js'

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
  /** With --state-file: whether the saved view is being served, and from when it is. */
  readonly savedView?: SavedViewStatus | undefined
}

/** The request path's part of a runtime: what a worker process has (no ZooKeeper). */
export type PathView = Pick<RuntimeView, 'router' | 'cache' | 'listener'>

/**
 * How old the view being served is, in seconds: a saved view since it was saved, a live one
 * since ZooKeeper was last reachable (0 while connected). 0 before any view.
 */
export function viewAgeSeconds (v: RuntimeView, now = Date.now()): number {
  const saved = v.savedView
  if (saved?.inUse === true && saved.savedAt !== undefined) return Math.max(0, (now - saved.savedAt) / 1000)
  if (!v.router.hasView) return 0
  const since = v.session.unreachableSince
  return since === undefined ? 0 : Math.max(0, (now - since) / 1000)
}
