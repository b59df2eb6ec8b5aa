// A worker's request counts (`--workers N`): what it routed since its last report, per target
// registration, and the totals its least-used choice balances on.
import type { CountView, RoutableTarget } from '../proxy/router.js'
import type { TargetInfo } from '../registry/target-set.js'
import type { CountDelta } from './worker-messages.js'

/**
 * A target's count as this worker sees it: `base` is the primary's total from the last targets
 * message (ZooKeeper's count plus every worker's unflushed requests the primary has received),
 * `pending` is routed here and not yet reported, `sent` reported since that message. The total
 * only steers the least-used choice; the exact count is the primary's.
 */
export class WorkerCount implements CountView {
  base: number
  pending = 0
  sent = 0
  constructor (readonly name: string, readonly generation: string, base: number) { this.base = base }
  get total (): number { return this.base + this.pending + this.sent }
}

export class WorkerCounts {
  readonly #cells = new Map<string, WorkerCount>()
  // Cells of registrations that left or were re-created, kept until their pending is reported
  // (the primary then drops it with the registration, as one process would).
  #retired: WorkerCount[] = []

  cellFor (t: RoutableTarget): WorkerCount {
    const cell = this.#cells.get(t.name)
    if (cell !== undefined && cell.generation === t.generation) return cell
    const fresh = new WorkerCount(t.name, t.generation, t.requests)
    if (cell !== undefined) this.#retired.push(cell)
    this.#cells.set(t.name, fresh)
    return fresh
  }

  update (targets: readonly TargetInfo[]): void {
    const live = new Set<string>()
    for (const t of targets) {
      live.add(t.name)
      const cell = this.cellFor(t)
      cell.base = t.requests
      cell.sent = 0
    }
    for (const [name, cell] of this.#cells) {
      if (live.has(name)) continue
      this.#retired.push(cell)
      this.#cells.delete(name)
    }
  }

  /** Only these targets' counts moved (a `counted` targets message). */
  counted (targets: readonly TargetInfo[]): void {
    for (const t of targets) {
      const cell = this.cellFor(t)
      cell.base = t.requests
      cell.sent = 0
    }
  }

  /** The deltas since the last call (pending moves to sent). */
  take (): CountDelta[] {
    const out: CountDelta[] = []
    for (const c of [...this.#cells.values(), ...this.#retired]) {
      if (c.pending === 0) continue
      out.push([c.name, c.generation, c.pending])
      c.sent += c.pending
      c.pending = 0
    }
    this.#retired = []
    return out
  }
}
