// What the primary and its workers say to each other over the cluster's IPC channel (`--workers
// N`). The primary holds the one ZooKeeper session: it sends each worker the targets (with the
// counts it knows), revision changes and purges; workers send back what they routed, in batches, and answer
// metrics scrapes. Plain JSON values only: the channel serializes with JSON.
import type { TargetInfo } from '../registry/target-set.js'
import type { PurgeFilter } from '../purge-filter.js'
import type { MetricsJson } from '../admin/metrics.js'

/** Primary → worker. */
export type ToWorker =
  /**
   * The latest snapshot's targets; `requests` is the primary's total (ZooKeeper + unflushed).
   * `counted`: only the targets whose counts moved (Snapshot.counted), the rest as before.
   */
  | { readonly type: 'zkproxy:targets', readonly targets: readonly TargetInfo[], readonly counted?: boolean }
  /** `/cacheAge` changed: the worker's cache clears the pools carrying the new revision. */
  | { readonly type: 'zkproxy:revision', readonly revision: string, readonly previous: string | undefined }
  /** A fleet-wide purge to apply (the primary watches the purge log). */
  | { readonly type: 'zkproxy:purge', readonly filter: PurgeFilter, readonly reason: string }
  /** Scrape: answer with `zkproxy:metrics` and the same id. */
  | { readonly type: 'zkproxy:metrics-request', readonly id: number }
  /** Graceful stop: drain (--drain-ms), send the last report, exit. */
  | { readonly type: 'zkproxy:drain' }

/** Requests routed to one registration (name + generation) since the last report; may be negative (a request that never reached it is taken back). */
export type CountDelta = readonly [name: string, generation: string, delta: number]

/** Worker → primary. */
export type ToPrimary =
  | { readonly type: 'zkproxy:listening', readonly url: string }
  /** Start-up failed (e.g. the port is taken): the primary reports it and exits 2. */
  | { readonly type: 'zkproxy:failed', readonly message: string, readonly code: string | undefined }
  /**
   * Sent every --count-flush-ms when something changed: count deltas, and the worker's in-flight
   * requests and open tunnels per target (absolute values, replacing the previous report's).
   */
  | {
    readonly type: 'zkproxy:report'
    readonly deltas: readonly CountDelta[]
    readonly inFlight: ReadonlyArray<readonly [name: string, n: number]>
    readonly tunnels: ReadonlyArray<readonly [name: string, n: number]>
  }
  | { readonly type: 'zkproxy:metrics', readonly id: number, readonly metrics: MetricsJson }

// Other messages share the channel (node:cluster's own, prom-client's): ours are prefixed.
function ours (m: unknown): boolean {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('zkproxy:')
}

export function isToWorker (m: unknown): m is ToWorker { return ours(m) }
export function isToPrimary (m: unknown): m is ToPrimary { return ours(m) }
