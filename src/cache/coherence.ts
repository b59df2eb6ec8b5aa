// Revision coherence: a stored response is only as good as the content revision that produced
// it. Each entry holds a reference to the cell of its (pool, revision) pair; the cell is live
// while some live target of that pool carries that revision (or the pool has no live target at
// all: see update()). The router updates the cells on
// every snapshot; a hit reads one boolean (no lookup, no allocation), so the check costs next to
// nothing on the hit path. A cell that dies never comes back: if its revision returns to the
// pool later (a rollback), new responses get a new cell, and the old entries stay dropped, as
// they were dropped when the revision left.

/** Targets without a revision share this key: their answers are coherent among themselves. */
const NO_REVISION = '\u0000none'

/** The (pool, revision) an entry came from; `live` is kept current by RevisionLiveness. */
export interface RevisionCell {
  readonly pool: string
  readonly revision: string | undefined
  readonly live: boolean
}

interface MutableCell {
  readonly pool: string
  readonly revision: string | undefined
  live: boolean
}

/** For each pool key, the revisions its live targets carry (undefined: a target without one). */
export type PoolRevisions = ReadonlyMap<string, ReadonlySet<string | undefined>>

export class RevisionLiveness {
  #live: PoolRevisions = new Map()
  readonly #cells = new Map<string, Map<string, MutableCell>>()
  readonly #listeners = new Set<(dead: readonly RevisionCell[]) => void>()
  readonly #updates = new Set<() => void>()

  /** The cell for responses from a target of `pool` serving `revision` (created on first use). */
  cell (pool: string, revision: string | undefined): RevisionCell {
    const key = revision ?? NO_REVISION
    let byRevision = this.#cells.get(pool)
    let cell = byRevision?.get(key)
    if (cell !== undefined) return cell
    cell = { pool, revision, live: this.isLive(pool, revision) }
    // A dead pair is not remembered: nothing may be stored under it, and if it comes back it
    // gets a fresh cell.
    if (!cell.live) return cell
    if (byRevision === undefined) this.#cells.set(pool, byRevision = new Map())
    byRevision.set(key, cell)
    return cell
  }

  /** Whether a live target of `pool` carries `revision` right now. */
  isLive (pool: string, revision: string | undefined): boolean {
    return this.#live.get(pool)?.has(revision) === true
  }

  /**
   * The live targets' revisions per pool, from a new snapshot. Cells whose pair is no longer
   * carried die now, and the listeners hear of them (once per change, with all of them).
   */
  update (pools: PoolRevisions): void {
    this.#live = pools
    let dead: MutableCell[] | undefined
    for (const [pool, byRevision] of this.#cells) {
      const revisions = pools.get(pool)
      // A pool with no live target at all was not deployed but lost (an outage, every replica
      // stopping): no other content replaced its revision, so its entries stay, for stale-if-error
      // and for serving while it is empty. The revision dies when targets at another one arrive.
      if (revisions === undefined || revisions.size === 0) continue
      for (const [key, cell] of byRevision) {
        if (revisions.has(cell.revision)) continue
        cell.live = false
        byRevision.delete(key)
        ;(dead ??= []).push(cell)
      }
      if (byRevision.size === 0) this.#cells.delete(pool)
    }
    if (dead !== undefined) for (const listener of this.#listeners) listener(dead)
    for (const listener of this.#updates) listener()
  }

  /** The pools with a live target carrying `revision`. */
  carriers (revision: string): string[] {
    const pools: string[] = []
    for (const [pool, revisions] of this.#live) if (revisions.has(revision)) pools.push(pool)
    return pools
  }

  /** Subscribes to every update (after the cells were judged); returns the unsubscribe function. */
  onUpdate (listener: () => void): () => void {
    this.#updates.add(listener)
    return () => { this.#updates.delete(listener) }
  }

  /** Subscribes to cells dying; returns the unsubscribe function. */
  onDied (listener: (dead: readonly RevisionCell[]) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Live (pool, revision) pairs that have a cell, for the admin view and tests. */
  get size (): number {
    let n = 0
    for (const byRevision of this.#cells.values()) n += byRevision.size
    return n
  }
}
