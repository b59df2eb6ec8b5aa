import type { Ejections } from './ejection.js'
import type { RandomSource, TargetState } from './types.js'

/** What the strategy needs from ejection bookkeeping; lets tests pass a stub. */
export type EjectionView = Pick<Ejections, 'isEjected' | 'lastFailureAt'>

export interface LeastUsedStrategyOptions {
  readonly random: RandomSource
  readonly ejections: EjectionView
}

// Load order (docs/architecture.md, balancing): fewest requests, then fewest in-flight.
// Explicit comparisons rather than subtraction, so huge counts cannot lose precision.
function compareLoad (a: TargetState, b: TargetState): number {
  if (a.requests !== b.requests) return a.requests < b.requests ? -1 : 1
  if (a.inFlight !== b.inFlight) return a.inFlight < b.inFlight ? -1 : 1
  return 0
}

// Last-resort order: least recently failed first (it has had longest to recover), then
// by load. A target without a recorded failure counts as failed at the dawn of time.
function compareFailure (aAt: number, a: TargetState, bAt: number, b: TargetState): number {
  if (aAt !== bAt) return aAt < bAt ? -1 : 1
  return compareLoad(a, b)
}

/**
 * Least-used strategy (Curator's ProviderStrategy role): `pick` is the per-request hot
 * path, `order` builds the failover sequence when the first choice failed. Both agree:
 * non-ejected targets by (requests, inFlight) with random tie-breaks, then, only when
 * there are not enough of those, ejected targets least recently failed first, because
 * a last-resort attempt beats answering 502/503 outright.
 */
export class LeastUsedStrategy {
  readonly #random: RandomSource
  readonly #ejections: EjectionView

  constructor ({ random, ejections }: LeastUsedStrategyOptions) {
    this.#random = random
    this.#ejections = ejections
  }

  /**
   * The first target `order()` would return, without allocating or sorting: one linear
   * scan, ties broken uniformly by reservoir sampling (the k-th equal minimum replaces
   * the current choice with probability 1/k).
   */
  pick (targets: readonly TargetState[], exclude?: ReadonlySet<string>): string | undefined {
    let best: TargetState | undefined
    let bestTies = 0
    // Best ejected target, only used when no target at all is healthy.
    let fallback: TargetState | undefined
    let fallbackAt = 0
    let fallbackTies = 0
    // Indexed loop: guaranteed not to allocate an iterator on the hot path.
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]
      if (target === undefined || exclude?.has(target.name) === true) continue
      if (this.#ejections.isEjected(target.name, target.generation)) {
        // Once a healthy target is known the fallback can never be used: skip the lookup.
        if (best !== undefined) continue
        const at = this.#ejections.lastFailureAt(target.name) ?? -Infinity
        const cmp = fallback === undefined ? -1 : compareFailure(at, target, fallbackAt, fallback)
        if (cmp < 0) {
          fallback = target
          fallbackAt = at
          fallbackTies = 1
        } else if (cmp === 0 && this.#random() * ++fallbackTies < 1) {
          fallback = target
        }
        continue
      }
      const cmp = best === undefined ? -1 : compareLoad(target, best)
      if (cmp < 0) {
        best = target
        bestTies = 1
      } else if (cmp === 0 && this.#random() * ++bestTies < 1) {
        best = target
      }
    }
    return (best ?? fallback)?.name
  }

  /**
   * The failover order, at most `maxAttempts` names (pass Infinity for all): healthy
   * targets least used first, then ejected ones least recently failed first.
   */
  order (targets: readonly TargetState[], maxAttempts: number, exclude?: ReadonlySet<string>): string[] {
    const limit = Math.floor(maxAttempts)
    // `!(limit > 0)` also rejects NaN.
    if (!(limit > 0) || targets.length === 0) return []
    const healthy: TargetState[] = []
    const ejected: TargetState[] = []
    for (const target of targets) {
      if (exclude?.has(target.name) === true) continue
      if (this.#ejections.isEjected(target.name, target.generation)) ejected.push(target)
      else healthy.push(target)
    }

    // Shuffle, then a stable sort (guaranteed since ES2019): equal keys keep their
    // shuffled relative order, which makes every tie order equally likely.
    this.#shuffle(healthy)
    healthy.sort(compareLoad)
    const names: string[] = []
    for (const target of healthy) {
      if (names.length >= limit) return names
      names.push(target.name)
    }
    if (names.length >= limit || ejected.length === 0) return names

    // Look each failure time up once rather than on every comparison.
    const at = new Map<TargetState, number>()
    for (const target of ejected) at.set(target, this.#ejections.lastFailureAt(target.name) ?? -Infinity)
    this.#shuffle(ejected)
    ejected.sort((a, b) => compareFailure(at.get(a) ?? -Infinity, a, at.get(b) ?? -Infinity, b))
    for (const target of ejected) {
      if (names.length >= limit) break
      names.push(target.name)
    }
    return names
  }

  // Fisher-Yates, in place.
  #shuffle (items: TargetState[]): void {
    for (let i = items.length - 1; i > 0; i--) {
      // min() guards against a random source that returns exactly 1.
      const j = Math.min(i, Math.floor(this.#random() * (i + 1)))
      const a = items[i]
      const b = items[j]
      if (a === undefined || b === undefined) continue
      items[i] = b
      items[j] = a
    }
  }
}
