// The watcher that turns /targets into snapshots (after Curator's ServiceCache and Traefik's
// KV provider): a re-armed children watch on the targets path plus one re-armed data watch per
// target. An event rebuilds a whole immutable snapshot, emitted only when it differs; an empty
// snapshot is real news ("no targets left") and is emitted too. The most frequent event, a count
// flush rewriting one target's count, patches that one target in instead (`counted`), so a
// thousand targets cost a count flush no more than ten do. When ZooKeeper is unreachable
// nothing fires and the last snapshot stays in use (static stability); after a new session the
// watches re-read everything. The request path reads only the latest snapshot, never ZooKeeper.
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { watchChildren, watchData, type DataValue, type Watch, type ZkSession } from '../zk/index.js'
import { decodeTarget } from './codec.js'
import { sameRoutes, type Route } from '../routes.js'

// Shared by every target without routes (the default pool): no allocation per parse.
const NO_ROUTES: readonly Route[] = Object.freeze([])

export interface TargetInfo {
  readonly name: string
  readonly url: string
  readonly origin: string
  /** The count in ZooKeeper (all proxies' flushed requests). */
  readonly requests: number
  readonly revision: string | undefined
  readonly startedAt: string | undefined
  /** What it serves (`--route`); empty: the default pool, for requests no route matches. */
  readonly routes: readonly Route[]
  /** Proxies remove the matched route's path prefix from what they forward to it. */
  readonly stripPrefix: boolean
  /** Changes when the znode is re-created (its czxid): resets ejection and local counts. */
  readonly generation: string
  readonly version: number
  /** True when the znode holds the bare-integer form (written back in that form). */
  readonly bare: boolean
  /** Each proxy's share of `requests` (see request-counter.ts), when the node keeps the ledger. */
  readonly countedBy?: Readonly<Record<string, number>> | undefined
}

export interface Snapshot {
  readonly targets: readonly TargetInfo[]
  /** Znodes present but rejected (malformed), with the reason: for the admin API. */
  readonly rejected: ReadonlyArray<{ readonly name: string, readonly reason: string }>
  /** Names kept in `targets` by the re-registration grace although their znode is gone. */
  readonly held?: readonly string[]
  /**
   * Set when this snapshot differs from the one before only in the counts (requests, version,
   * countedBy) of these targets: the same targets, routes, revisions, addresses and rejections.
   * Consumers that keep per-target state update these alone; those that follow membership skip it.
   */
  readonly counted?: readonly TargetInfo[]
}

export interface TargetSetOptions {
  readonly session: ZkSession
  readonly targetsPath: string
  readonly logger: Logger
  /** Optional filter (an address policy, an ACL check); see Admission. */
  readonly admit?: (t: TargetInfo) => Admission
  /**
   * The re-registration grace (default 5000 ms, 0 turns it off): removals seen within this long
   * after a reconnect that would empty a pool or take most of it are held back this long, so
   * targets re-registering at once (new nodes, same names) never leave the pool empty.
   */
  readonly graceMs?: number
  /** The pool a target belongs to (default: one pool for all). */
  readonly poolOf?: (t: TargetInfo) => string
  readonly now?: () => number
}

export const DEFAULT_REREGISTRATION_GRACE_MS = 5000

export interface TargetSetStats {
  /** Target removals held back by the re-registration grace. */
  deferred: number
  /** Held targets whose name came back within the grace (re-registered). */
  returned: number
  /** Held targets removed when the grace ended (they did not come back). */
  expired: number
}

/**
 * What `admit` says about a target: undefined admits it; a string rejects it (logged once per
 * znode version); `{ wait }` leaves it out without a warning until the filter has decided
 * (e.g. its ACL is being read) and then calls `refresh()`.
 */
export type Admission = string | { readonly wait: string } | undefined

interface Entry {
  readonly watch: Watch
  value: DataValue | null | undefined
  /** Set while the znode cannot be read (e.g. an ACL that shuts us out): listed as rejected. */
  unreadable?: string | undefined
}

/** Events: 'snapshot' (Snapshot). `snapshot` is undefined until the first complete read. */
export class TargetSet extends EventEmitter {
  readonly #opts: TargetSetOptions
  readonly #log: Logger
  readonly #entries = new Map<string, Entry>()
  #childrenWatch: Watch | undefined
  #childrenKnown = false
  #snapshot: Snapshot | undefined
  #lastKey = ''
  /** Each target's position in the snapshot's `targets`. */
  #index = new Map<string, number>()
  // One warning per znode version, not one per re-read.
  readonly #warned = new Map<string, string>()
  readonly #parsed = new WeakMap<DataValue, TargetInfo | { reason: string }>()
  readonly #now: () => number
  readonly #graceMs: number
  /** When the session last came back after being away (undefined: never away yet). */
  #reconnectedAt: number | undefined
  #away = false
  readonly #held = new Map<string, { info: TargetInfo, until: number }>()
  #graceTimer: NodeJS.Timeout | undefined
  readonly stats: TargetSetStats = { deferred: 0, returned: 0, expired: 0 }
  readonly #onState = (s: string): void => {
    if (s === 'connected') {
      if (this.#away) this.#reconnectedAt = this.#now()
      this.#away = false
    } else if (s !== 'closed') {
      this.#away = true
    }
  }

  constructor (opts: TargetSetOptions) {
    super()
    this.#opts = opts
    this.#log = opts.logger
    this.#now = opts.now ?? Date.now
    this.#graceMs = opts.graceMs ?? DEFAULT_REREGISTRATION_GRACE_MS
  }

  get snapshot (): Snapshot | undefined { return this.#snapshot }
  /** Targets currently kept by the re-registration grace. */
  get heldCount (): number { return this.#held.size }

  /** Asks `admit` again about every target (its answer changed); emits if the view did. */
  refresh (): void { this.#rebuild() }

  start (): this {
    this.#opts.session.on('state', this.#onState)
    this.#childrenWatch = watchChildren(this.#opts.session, this.#opts.targetsPath, (children) => { this.#onChildren(children ?? []) }, this.#log)
    return this
  }

  close (): void {
    this.#opts.session.off('state', this.#onState)
    clearTimeout(this.#graceTimer)
    this.#childrenWatch?.close()
    for (const e of this.#entries.values()) e.watch.close()
    this.#entries.clear()
  }

  #onChildren (children: string[]): void {
    this.#childrenKnown = true
    const wanted = new Set(children)
    for (const [name, e] of this.#entries) {
      if (!wanted.has(name)) {
        e.watch.close()
        this.#entries.delete(name)
        this.#warned.delete(name)
      }
    }
    for (const name of children) {
      if (this.#entries.has(name)) continue
      const entry: Entry = { value: undefined, watch: undefined as unknown as Watch }
      this.#entries.set(name, entry)
      ;(entry as { watch: Watch }).watch = watchData(this.#opts.session, `${this.#opts.targetsPath}/${name}`, (value) => {
        entry.value = value
        entry.unreadable = undefined
        if (value === null || !this.#patch(name, value)) this.#rebuild()
      }, this.#log, (err) => {
        // One unreadable child must not freeze the whole view (the rebuild waits for every
        // child's first read): it is rejected until a read succeeds.
        entry.unreadable = (err as { code?: string }).code ?? 'unreadable'
        this.#rebuild()
      })
    }
    this.#rebuild()
  }

  #rebuild (): void {
    if (!this.#childrenKnown) return
    // Wait until every listed child has been read once, so start-up emits one full view
    // instead of a growing series of partial ones.
    for (const e of this.#entries.values()) if (e.value === undefined && e.unreadable === undefined) return
    const targets: TargetInfo[] = []
    const rejected: Array<{ name: string, reason: string }> = []
    for (const [name, e] of this.#entries) {
      if (e.unreadable !== undefined) {
        rejected.push({ name, reason: `znode cannot be read (${e.unreadable})` })
        continue
      }
      if (e.value === null || e.value === undefined) continue // deleted; the children watch follows
      const t = this.#decode(name, e.value)
      if (typeof t === 'string') rejected.push({ name, reason: t })
      else targets.push(t)
    }
    this.#applyGrace(targets)
    targets.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    const key = targets.map(t => `${t.name}@${t.generation}:${t.version}:${t.origin}:${t.requests}`).join('|') +
      '#' + rejected.map(r => `${r.name}:${r.reason}`).join('|')
    if (this.#snapshot !== undefined && key === this.#lastKey) return
    this.#lastKey = key
    const previous = this.#snapshot
    this.#snapshot = Object.freeze({ targets: Object.freeze(targets), rejected: Object.freeze(rejected), held: Object.freeze([...this.#held.keys()]) })
    this.#index = new Map(targets.map((t, i) => [t.name, i]))
    this.#logMembership(previous, this.#snapshot)
    this.emit('snapshot', this.#snapshot)
  }

  /**
   * A count flush: `name`'s znode changed, and if only in its count, the new snapshot is the
   * last one with that target replaced, marked `counted`. False: anything else changed (or the
   * grace holds targets), and the caller rebuilds.
   */
  #patch (name: string, value: DataValue): boolean {
    const snap = this.#snapshot
    const i = this.#index.get(name)
    if (snap === undefined || i === undefined || this.#held.size > 0) return false
    const old = snap.targets[i]!
    const t = this.#decode(name, value)
    if (typeof t === 'string' || !sameButCount(old, t)) return false
    if (t.version === old.version && t.requests === old.requests) return true // read again, unchanged
    const targets = snap.targets.slice()
    targets[i] = t
    // The key no longer describes the snapshot: the next rebuild emits whatever it finds.
    this.#lastKey = ''
    this.#snapshot = Object.freeze({ ...snap, targets: Object.freeze(targets), counted: Object.freeze([t]) })
    this.emit('snapshot', this.#snapshot)
    return true
  }

  /**
   * The re-registration grace. After ZooKeeper comes back, replicas whose sessions were lost
   * re-register (delete, create: new nodes, same names) at about the same moment, and a pool
   * seen between the deletions and the creations is empty: every request in that window would
   * get a 503. So right after a reconnect, removals that would empty a pool or take more than
   * half of it are held back (the targets stay in the snapshot, routable) until their names come
   * back or the grace ends; a legitimate scale-down is only delayed by the grace, once.
   */
  #applyGrace (targets: TargetInfo[]): void {
    const now = this.#now()
    const liveNames = new Set(targets.map(t => t.name))
    // Held once, removed when the grace ends: never held again for the same removal.
    const ended = new Set<string>()
    for (const [name, h] of this.#held) {
      if (liveNames.has(name)) {
        this.#held.delete(name)
        this.stats.returned++
        this.#log.info({ target: name, heldMs: now - (h.until - this.#graceMs) }, 'held target re-registered')
      } else if (h.until <= now) {
        this.#held.delete(name)
        ended.add(name)
        this.stats.expired++
        this.#log.info({ target: name, graceMs: this.#graceMs }, 'held target did not re-register within the grace: removed')
      }
    }
    const previous = this.#snapshot?.targets ?? []
    const inGrace = this.#graceMs > 0 && this.#reconnectedAt !== undefined && now - this.#reconnectedAt <= this.#graceMs
    if (inGrace) {
      const poolOf = this.#opts.poolOf ?? (() => '')
      const before = new Map<string, number>()
      const after = new Map<string, number>()
      for (const t of previous) before.set(poolOf(t), (before.get(poolOf(t)) ?? 0) + 1)
      for (const t of targets) after.set(poolOf(t), (after.get(poolOf(t)) ?? 0) + 1)
      for (const t of previous) {
        if (liveNames.has(t.name) || this.#held.has(t.name) || ended.has(t.name)) continue
        const pool = poolOf(t)
        const had = before.get(pool) ?? 0
        const left = after.get(pool) ?? 0
        // "Most of it": more than half of the pool gone at once.
        if (left > 0 && (had - left) * 2 <= had) continue
        this.#held.set(t.name, { info: t, until: now + this.#graceMs })
        this.stats.deferred++
        this.#log.info({ target: t.name, graceMs: this.#graceMs, pool, poolBefore: had, poolLeft: left }, 'target removal held back after a reconnect (re-registration grace)')
      }
    }
    for (const h of this.#held.values()) targets.push(h.info)
    this.#armGraceTimer()
  }

  #armGraceTimer (): void {
    clearTimeout(this.#graceTimer)
    this.#graceTimer = undefined
    if (this.#held.size === 0) return
    const next = Math.min(...[...this.#held.values()].map(h => h.until))
    this.#graceTimer = setTimeout(() => { this.#rebuild() }, Math.max(0, next - this.#now()) + 1)
    this.#graceTimer.unref()
  }

  /**
   * Decodes one znode value, once: every count flush by any proxy changes one target's znode
   * and rebuilds the snapshot, so the other targets' (unchanged) values come from this cache.
   * The watch hands over a new DataValue object only when the znode changed.
   */
  #parse (name: string, value: DataValue): TargetInfo | { reason: string } {
    const cached = this.#parsed.get(value)
    if (cached !== undefined) return cached
    const r = decodeTarget(name, value.data)
    const parsed = !r.ok
      ? { reason: r.reason }
      : {
          name,
          url: r.target.url,
          origin: r.target.origin,
          requests: r.target.requests,
          revision: r.target.revision,
          startedAt: r.target.startedAt,
          routes: r.target.routes ?? NO_ROUTES,
          stripPrefix: r.target.stripPrefix === true,
          generation: String(value.stat.czxid),
          version: value.stat.version,
          bare: /^\s*\d+\s*$/.test(value.data.toString('latin1')),
          countedBy: r.target.countedBy
        }
    this.#parsed.set(value, parsed)
    return parsed
  }

  #decode (name: string, value: DataValue): TargetInfo | string {
    const parsed = this.#parse(name, value)
    const versionKey = `${value.stat.czxid}:${value.stat.version}`
    let reason: Admission
    let info: TargetInfo | undefined
    if ('reason' in parsed) {
      reason = parsed.reason
    } else {
      info = parsed
      // Admission is asked every time: its answer may change (an ACL that is now in place).
      reason = this.#opts.admit?.(info)
    }
    if (reason === undefined) {
      this.#warned.delete(name)
      return info!
    }
    if (typeof reason !== 'string') {
      this.#log.debug({ target: name, reason: reason.wait }, 'target not admitted yet')
      return reason.wait
    }
    if (this.#warned.get(name) !== versionKey) {
      this.#warned.set(name, versionKey)
      this.#log.warn({ target: name, reason }, 'target ignored')
    }
    return reason
  }

  #logMembership (before: Snapshot | undefined, after: Snapshot): void {
    const was = new Set(before?.targets.map(t => t.name) ?? [])
    const now = new Set(after.targets.map(t => t.name))
    const joined = [...now].filter(n => !was.has(n))
    const left = [...was].filter(n => !now.has(n))
    if (before === undefined || joined.length > 0 || left.length > 0) {
      this.#log.info({ targets: after.targets.map(t => t.name), joined, left }, `targets: ${after.targets.length} live`)
    }
  }
}

/** The same registration, serving the same way: at most its count differs. */
function sameButCount (a: TargetInfo, b: TargetInfo): boolean {
  return a.generation === b.generation && a.url === b.url && a.origin === b.origin && a.revision === b.revision &&
    a.startedAt === b.startedAt && a.stripPrefix === b.stripPrefix && a.bare === b.bare && sameRoutes(a.routes, b.routes)
}
