// The batched request counter. Each routed request adds 1 to a local cell; every
// --count-flush-ms the non-zero cells are written to their znodes with versioned setData
// (compare-and-set, re-read and retry on BadVersion). So ZooKeeper writes per second are
// bounded by targets × flush rate, whatever the request rate, and several proxies sharing the
// same targets lose no increment. A proxy that asked ZooKeeper per request measured 0.07× nginx
// and lost 96% of its updates to version conflicts; this is the fix.
import type { Logger } from 'pino'
import { updateWithRetry, isRetryable, type ZkSession } from '../zk/index.js'
import type { TargetInfo } from './target-set.js'

/**
 * One target's count as this proxy sees it, read on the request path without any lookup:
 * `base` is the highest count known to be in ZooKeeper (from the watch, or from our own
 * successful write, which the watch reports a moment later); `pending` is routed but not yet
 * flushed; `flushing` is in a write right now. Counts only grow, so max() merges both views.
 */
export class CountCell {
  readonly name: string
  readonly generation: string
  base: number
  pending = 0
  flushing = 0

  constructor (name: string, generation: string, base: number) {
    this.name = name
    this.generation = generation
    this.base = base
  }

  get total (): number { return this.base + this.pending + this.flushing }
}

export interface CounterStats {
  flushes: number
  writes: number
  conflicts: number
  dropped: number
  failures: number
}

export interface RequestCounterOptions {
  readonly session: ZkSession
  readonly targetsPath: string
  readonly flushMs: number
  readonly logger: Logger
}

export class RequestCounter {
  readonly #opts: RequestCounterOptions
  readonly #log: Logger
  readonly #cells = new Map<string, CountCell>()
  readonly #bare = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined
  readonly stats: CounterStats = { flushes: 0, writes: 0, conflicts: 0, dropped: 0, failures: 0 }

  constructor (opts: RequestCounterOptions) {
    this.#opts = opts
    this.#log = opts.logger
  }

  start (): this {
    this.#timer = setInterval(() => { void this.flush() }, this.#opts.flushMs)
    this.#timer.unref()
    return this
  }

  /** Stops the timer and writes what is left (best effort; a lost connection keeps it unwritten). */
  async stop (): Promise<void> {
    clearInterval(this.#timer)
    // A flush already running took its snapshot before the last requests: wait for it, then
    // write what came after.
    await this.#flushing
    await this.flush()
  }

  /** Applies a snapshot: cells for new targets/generations, ZooKeeper counts merged, gone ones dropped. */
  update (targets: readonly TargetInfo[]): void {
    const live = new Set<string>()
    for (const t of targets) {
      live.add(t.name)
      if (t.bare) this.#bare.add(t.name); else this.#bare.delete(t.name)
      const cell = this.#cells.get(t.name)
      if (cell === undefined || cell.generation !== t.generation) {
        // A re-created znode starts a new count series: what we had not flushed belonged to
        // the old registration, whose node is gone.
        if (cell !== undefined && cell.pending + cell.flushing !== 0) this.stats.dropped += cell.pending + cell.flushing
        this.#cells.set(t.name, new CountCell(t.name, t.generation, t.requests))
      } else if (t.requests > cell.base) {
        cell.base = t.requests
      }
    }
    for (const [name, cell] of this.#cells) {
      if (!live.has(name)) {
        // The target left: its unflushed delta has nowhere to go.
        this.stats.dropped += cell.pending
        this.#cells.delete(name)
      }
    }
  }

  cell (name: string): CountCell | undefined { return this.#cells.get(name) }

  /** Writes every non-zero cell; one flush at a time (a slow flush delays the next tick). */
  async flush (): Promise<void> {
    if (this.#flushing !== undefined) return await this.#flushing
    this.#flushing = this.#flushAll().finally(() => { this.#flushing = undefined })
    return await this.#flushing
  }

  async #flushAll (): Promise<void> {
    if (this.#opts.session.state !== 'connected') return // keep counting; flushed after reconnecting
    const due = [...this.#cells.values()].filter(c => c.pending !== 0)
    if (due.length === 0) return
    this.stats.flushes++
    await Promise.all(due.map(async c => { await this.#flushCell(c) }))
  }

  async #flushCell (cell: CountCell): Promise<void> {
    const delta = cell.pending
    cell.pending = 0
    cell.flushing += delta
    const path = `${this.#opts.targetsPath}/${cell.name}`
    const bare = this.#bare.has(cell.name)
    try {
      const r = await updateWithRetry(this.#opts.session, path, (data, stat) => {
        // Never write into a re-created node with the old registration's delta.
        if (String(stat.czxid) !== cell.generation) return undefined
        return bumpCount(data, delta, bare)
      })
      cell.flushing -= delta
      if (r === undefined) {
        this.stats.dropped += delta
        return
      }
      this.stats.writes++
      this.stats.conflicts += r.conflicts
      const written = readCount(r.written)
      if (written !== undefined && written > cell.base) cell.base = written
    } catch (err) {
      cell.flushing -= delta
      if ((err as { code?: string }).code === 'ZKPROXY_ERR_ZK_NO_NODE') {
        this.stats.dropped += delta // the target vanished: its delta goes with it
        return
      }
      // Connection trouble (or anything else): keep the delta for the next flush.
      cell.pending += delta
      this.stats.failures++
      if (!isRetryable(err)) this.#log.warn({ err, target: cell.name }, 'count flush failed')
    }
  }
}

/** Adds `delta` to the znode's count, keeping every other field (and the bare-integer form). */
export function bumpCount (data: Buffer, delta: number, bare: boolean): Buffer | undefined {
  const text = data.toString('utf8').trim()
  if (bare || /^\d+$/.test(text)) {
    if (!/^\d+$/.test(text)) return undefined
    return Buffer.from(String(Math.max(0, Number(text) + delta)))
  }
  let obj: unknown
  try { obj = JSON.parse(text) } catch { return undefined }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return undefined
  const o = obj as Record<string, unknown>
  const current = typeof o['requests'] === 'number' && Number.isSafeInteger(o['requests']) ? o['requests'] : 0
  o['requests'] = Math.max(0, current + delta)
  return Buffer.from(JSON.stringify(o))
}

function readCount (data: Buffer): number | undefined {
  const text = data.toString('utf8').trim()
  if (/^\d+$/.test(text)) return Number(text)
  try {
    const n = (JSON.parse(text) as { requests?: unknown }).requests
    return typeof n === 'number' ? n : undefined
  } catch { return undefined }
}
