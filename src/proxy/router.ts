// The request path's view of the targets: the latest snapshot turned into mutable LiveTarget
// objects (in-flight counters, a reference to the target's count cell), so choosing a target
// per request is one allocation-free scan (LeastUsedStrategy.pick) and failover asks for the
// next one in order. The proxy sees snapshots, never znodes (CONVENTIONS.md boundaries).
import { Ejections } from '../balancer/ejection.js'
import { LeastUsedStrategy } from '../balancer/least-used.js'
import type { TargetState, Clock, RandomSource } from '../balancer/types.js'

/** What the router needs to know of a target (a subset of the registry's TargetInfo). */
export interface RoutableTarget {
  readonly name: string
  readonly origin: string
  readonly url: string
  readonly generation: string
  readonly requests: number
  readonly revision: string | undefined
  readonly startedAt: string | undefined
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
}

export interface RouterOptions {
  /** Gives the shared count cell for a target (created by the counter for each generation). */
  readonly countFor: (t: RoutableTarget) => CountView
  readonly clock?: Clock
  readonly random?: RandomSource
  readonly ejectBaseMs?: number
  readonly ejectMaxMs?: number
}

export class Router {
  readonly #opts: RouterOptions
  readonly ejections: Ejections
  readonly #strategy: LeastUsedStrategy
  #targets: LiveTarget[] = []
  #byName = new Map<string, LiveTarget>()
  #hasView = false

  constructor (opts: RouterOptions) {
    this.#opts = opts
    this.ejections = new Ejections({ clock: opts.clock ?? Date.now, baseMs: opts.ejectBaseMs, maxMs: opts.ejectMaxMs })
    this.#strategy = new LeastUsedStrategy({ random: opts.random ?? Math.random, ejections: this.ejections })
  }

  /** False until the first snapshot: the proxy answers 503 until it has a view. */
  get hasView (): boolean { return this.#hasView }
  get targets (): readonly LiveTarget[] { return this.#targets }

  update (targets: readonly RoutableTarget[]): void {
    const next: LiveTarget[] = []
    const byName = new Map<string, LiveTarget>()
    for (const info of targets) {
      const old = this.#byName.get(info.name)
      let live: LiveTarget
      if (old !== undefined && old.generation === info.generation && old.origin === info.origin) {
        old.info = info
        live = old
      } else {
        live = new LiveTarget(info, this.#opts.countFor(info))
        // Requests still in flight to the old registration finish on their own.
      }
      next.push(live)
      byName.set(info.name, live)
    }
    this.#targets = next
    this.#byName = byName
    this.#hasView = true
    this.ejections.prune(new Set(byName.keys()))
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
}
