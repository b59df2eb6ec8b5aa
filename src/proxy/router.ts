// The request path's view of the targets: the latest snapshot turned into mutable LiveTarget
// objects (in-flight counters, a reference to the target's count cell), so choosing a target
// per request is one allocation-free scan (LeastUsedStrategy.pick) and failover asks for the
// next one in order. With routes, the same choice is made within one pool (`pool(host, path)`):
// the targets declaring the route the request matches. Counts and ejections stay per target, so
// a target serving two routes is one target with one load. The proxy sees snapshots, never
// znodes.
import { Ejections } from '../balancer/ejection.js'
import { LeastUsedStrategy } from '../balancer/least-used.js'
import { DEFAULT_POOL_KEY, RouteTable } from '../balancer/route-table.js'
import type { TargetState, Clock, RandomSource } from '../balancer/types.js'
import { sameRoutes, stripPathPrefix, type Route } from '../routes.js'
import type { RevisionLiveness } from '../cache/index.js'

/** What the router needs to know of a target (a subset of the registry's TargetInfo). */
export interface RoutableTarget {
  readonly name: string
  readonly origin: string
  readonly url: string
  readonly generation: string
  readonly requests: number
  readonly revision: string | undefined
  readonly startedAt: string | undefined
  /** Empty or absent: the default pool. */
  readonly routes?: readonly Route[] | undefined
  /** It serves from `/` what its routes' path prefixes name (`--strip-prefix`). */
  readonly stripPrefix?: boolean | undefined
}

/** The count cell shared with the batched counter (registry/request-counter.ts). */
export interface CountView {
  readonly total: number
  pending: number
}

export class LiveTarget implements TargetState {
  readonly name: string
  readonly origin: string
  readonly generation: string
  info: RoutableTarget
  inFlight = 0
  readonly #count: CountView

  constructor (info: RoutableTarget, count: CountView) {
    this.name = info.name
    this.origin = info.origin
    this.generation = info.generation
    this.info = info
    this.#count = count
  }

  get requests (): number { return this.#count.total }
  get count (): CountView { return this.#count }
  /** Its routes as of the latest snapshot (the route table reads them). */
  get routes (): readonly Route[] | undefined { return this.info.routes }
}

/**
 * The targets of one route (or the default pool), with the router's choice restricted to them.
 * A Pool object lives as long as its route is declared by some target and is updated in place
 * by each snapshot, so a request holding it fails over among the pool's current targets; once
 * no target declares the route it is emptied (`live` false) and a new object replaces it if
 * the route comes back.
 */
export class Pool {
  readonly key: string
  /** Undefined for the default pool (targets without routes). */
  readonly route: Route | undefined
  readonly #strategy: LeastUsedStrategy
  readonly #byName: (name: string) => LiveTarget | undefined
  #targets: readonly LiveTarget[] = []
  #live = true

  constructor (key: string, route: Route | undefined, strategy: LeastUsedStrategy, byName: (name: string) => LiveTarget | undefined) {
    this.key = key
    this.route = route
    this.#strategy = strategy
    this.#byName = byName
  }

  get targets (): readonly LiveTarget[] { return this.#targets }
  /** False once no target declares the route any more. */
  get live (): boolean { return this.#live }
  get isDefault (): boolean { return this.route === undefined }

  /** The least-used target of this pool; undefined when it has none (503 no_targets). */
  pick (): LiveTarget | undefined {
    const name = this.#strategy.pick(this.#targets)
    return name === undefined ? undefined : this.#byName(name)
  }

  /** The next target of this pool to fail over to, never one already tried. */
  next (tried: ReadonlySet<string>): LiveTarget | undefined {
    const name = this.#strategy.pick(this.#targets, tried)
    return name === undefined ? undefined : this.#byName(name)
  }

  /**
   * The request target to send to `t` for a request `path` (origin-form) this pool matched:
   * unchanged, unless `t` declared `--strip-prefix`, which removes the route's path prefix
   * (`/api/x` → `/x`). Per target, so one pool may mix replicas mounted either way.
   */
  upstreamPath (t: LiveTarget, path: string): string {
    if (this.route === undefined || t.info.stripPrefix !== true) return path
    return stripPathPrefix(this.route.pathPrefix, path)
  }

  /** @internal the router's update */
  setTargets (targets: readonly LiveTarget[]): void { this.#targets = targets }
  /** @internal the router's update */
  retire (): void {
    this.#targets = []
    this.#live = false
  }
}

export interface RouterOptions {
  /** Gives the shared count cell for a target (created by the counter for each generation). */
  readonly countFor: (t: RoutableTarget) => CountView
  readonly clock?: Clock
  readonly random?: RandomSource
  readonly ejectBaseMs?: number
  readonly ejectMaxMs?: number
  /** Told the live revisions of each pool after every snapshot (the cache's coherence). */
  readonly liveness?: RevisionLiveness | undefined
}

export class Router {
  readonly #opts: RouterOptions
  readonly ejections: Ejections
  readonly #strategy: LeastUsedStrategy
  #targets: LiveTarget[] = []
  #byName = new Map<string, LiveTarget>()
  #hasView = false
  #table = new RouteTable<LiveTarget>([])
  #pools = new Map<string, Pool>()
  readonly #lookup = (name: string): LiveTarget | undefined => this.#byName.get(name)

  constructor (opts: RouterOptions) {
    this.#opts = opts
    this.ejections = new Ejections({ clock: opts.clock ?? Date.now, baseMs: opts.ejectBaseMs, maxMs: opts.ejectMaxMs })
    this.#strategy = new LeastUsedStrategy({ random: opts.random ?? Math.random, ejections: this.ejections })
    this.#rebuildPools()
  }

  /** False until the first snapshot: the proxy answers 503 until it has a view. */
  get hasView (): boolean { return this.#hasView }
  get targets (): readonly LiveTarget[] { return this.#targets }

  /** Every pool (the default one first, when there is one), for the admin API and metrics. */
  get pools (): readonly Pool[] { return [...this.#pools.values()] }

  update (targets: readonly RoutableTarget[]): void {
    const next: LiveTarget[] = []
    const byName = new Map<string, LiveTarget>()
    // Most snapshots only carry new counts (every flush of every proxy makes one): the pools
    // are rebuilt only when a target came, went, was re-created or changed its routes.
    let reshaped = targets.length !== this.#targets.length
    for (const info of targets) {
      const old = this.#byName.get(info.name)
      let live: LiveTarget
      if (old !== undefined && old.generation === info.generation && old.origin === info.origin) {
        if (!sameRoutes(old.info.routes, info.routes)) reshaped = true
        old.info = info
        live = old
      } else {
        live = new LiveTarget(info, this.#opts.countFor(info))
        reshaped = true
        // Requests still in flight to the old registration finish on their own.
      }
      next.push(live)
      byName.set(info.name, live)
    }
    this.#targets = next
    this.#byName = byName
    this.#hasView = true
    this.ejections.prune(new Set(byName.keys()))
    if (reshaped) this.#rebuildPools()
    this.#publishRevisions()
  }

  /**
   * A snapshot that only moved these targets' counts (Snapshot.counted): their info is swapped
   * in, nothing is rebuilt. False when one of them is not the live target the router has (then
   * the caller applies the whole snapshot with update()).
   */
  counted (targets: readonly RoutableTarget[]): boolean {
    for (const info of targets) {
      const live = this.#byName.get(info.name)
      if (live === undefined || live.generation !== info.generation || live.origin !== info.origin) return false
    }
    for (const info of targets) this.#byName.get(info.name)!.info = info
    return true
  }

  /**
   * Each pool's live revisions, for the cache: O(targets) per snapshot, so that a hit needs one
   * boolean read (coherence.ts). A target's revision may change without a re-shape (its znode
   * data rewritten), so this runs for every snapshot, not only when pools are rebuilt.
   */
  #publishRevisions (): void {
    const liveness = this.#opts.liveness
    if (liveness === undefined) return
    const pools = new Map<string, Set<string | undefined>>()
    for (const [key, pool] of this.#pools) {
      const revisions = new Set<string | undefined>()
      for (const t of pool.targets) revisions.add(t.info.revision)
      pools.set(key, revisions)
    }
    liveness.update(pools)
  }

  /**
   * The pool serving a request for `host` (the Host header as received) and `path` (the
   * origin-form request target). Undefined: no route matches and no target is in the default
   * pool, which the proxy answers `404 no_route`. Before the first view, and whenever no target
   * is registered at all, this is the (empty) default pool: `503 no_targets`, as without routes.
   */
  pool (host: string | undefined, path: string): Pool | undefined {
    const entry = this.#table.match(host, path)
    return entry === undefined ? undefined : this.#pools.get(entry.key)
  }

  /** The pool with this key (`shop.example.com/api`, or DEFAULT_POOL_KEY), if it exists. */
  poolByKey (key: string): Pool | undefined { return this.#pools.get(key) }

  #rebuildPools (): void {
    const table = new RouteTable<LiveTarget>(this.#targets)
    const pools = new Map<string, Pool>()
    for (const entry of table.pools) {
      const pool = this.#pools.get(entry.key) ?? new Pool(entry.key, entry.route, this.#strategy, this.#lookup)
      pool.setTargets(entry.targets)
      pools.set(entry.key, pool)
    }
    for (const [key, pool] of this.#pools) if (!pools.has(key)) pool.retire()
    this.#table = table
    this.#pools = pools
  }

  /** The least-used target, or undefined when none is registered. */
  pick (): LiveTarget | undefined {
    const name = this.#strategy.pick(this.#targets)
    return name === undefined ? undefined : this.#byName.get(name)
  }

  /** The next target to fail over to, never one already tried. */
  next (tried: ReadonlySet<string>): LiveTarget | undefined {
    const name = this.#strategy.pick(this.#targets, tried)
    return name === undefined ? undefined : this.#byName.get(name)
  }

  /** A request is routed to `t`: counted at once so a burst spreads before responses return. */
  begin (t: LiveTarget): void {
    t.inFlight++
    t.count.pending++
  }

  end (t: LiveTarget): void {
    t.inFlight--
  }

  succeeded (t: LiveTarget): void {
    this.ejections.noteSuccess(t.name)
  }

  /** `reached`: the request may have reached the backend (then it stays counted). */
  failed (t: LiveTarget, reached: boolean): void {
    this.ejections.noteFailure(t.name, t.generation)
    if (!reached) t.count.pending--
  }

  isEjected (t: LiveTarget): boolean {
    return this.ejections.isEjected(t.name, t.generation)
  }

  /** The live target with this name, if any (the admin API's controls name targets). */
  byName (name: string): LiveTarget | undefined { return this.#byName.get(name) }
}

export { DEFAULT_POOL_KEY }
