// Registration: a process keeping its own ephemeral target znode alive (after Curator's
// ServiceDiscovery). EphemeralNode (src/zk) does the hard part — re-creating the node on every
// new session and replacing a node left by our own earlier session; this class decides what
// the node says (url, a fair starting count, revision, routes) and publishes the content revision.
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { createError, hasCode } from '../errors.js'
import { EphemeralNode, SerialTask, isRetryable, type ConnectedEvent, type DataValue, type EphemeralOptions, type EphemeralState, type SessionState, type ZkSession } from '../zk/index.js'
import { securePath, type NodeAcls } from './acl-policy.js'
import { decodeTarget, encodeRevision, encodeTarget, validateTargetName, type TargetData } from './codec.js'
import { DEFAULT_POOL_KEY, parseRoute } from '../routes.js'
import { writeRevision } from './revision.js'

export type RegistrationState =
  | 'stopped' // not started, or withdrawn by stop() (start() may be called again)
  | 'pending' // wanted, but our node does not exist on the current session (yet)
  | 'registered' // our node exists and is owned by our current session
  | 'conflict' // another live session holds the name; we take it when it goes

export interface RegistrationOptions {
  readonly session: ZkSession
  /** e.g. /targets; created (with parents) when missing. */
  readonly targetsPath: string
  /** e.g. /cacheAge; a persistent node holding the content revision. */
  readonly cacheAgePath: string
  readonly name: string
  /** The origin proxies route to, e.g. http://10.0.0.5:4000. */
  readonly url: string
  /** Undefined: the target carries no revision and nothing is written to /cacheAge. */
  readonly revision: string | undefined
  readonly startedAt?: Date
  /** `--route` values (HOST[/PATH-PREFIX]); none: the default pool. */
  readonly routes?: readonly string[] | undefined
  /** `--strip-prefix`: needs a route with a path prefix. */
  readonly stripPrefix?: boolean | undefined
  readonly logger: Logger
  /** With --zk-acl-*: the ACLs to put on the targets path, our node and /cacheAge. */
  readonly acls?: NodeAcls | undefined
}

export interface RevisionEvent {
  readonly revision: string
  /**
   * False when /cacheAge already held this revision, or another live target already carries
   * it (proxies keep their caches).
   */
  readonly changed: boolean
}

/** The count in a target znode, or undefined when it cannot be decoded. */
export function countOf (name: string, data: Buffer | null): number | undefined {
  const r = decodeTarget(name, data)
  return r.ok ? r.target.requests : undefined
}

/**
 * The count a new target must not start below: the lowest count among the other live targets it
 * will be balanced against (undecodable ones ignored); 0 when none. Balancing happens within a
 * pool, so with `routes` (canonical keys; empty: the default pool) only targets sharing a pool
 * count. A target in several pools takes the highest of those pools' minimums: starting below a
 * pool's minimum would flood it in that pool, while starting above one only idles it there for a
 * while, which is the failure a fleet survives.
 */
export function minimumCount (targets: Iterable<{ readonly name: string, readonly data: Buffer | null }>, self: string, routes: readonly string[] = []): number {
  const pools = routes.length === 0 ? [DEFAULT_POOL_KEY] : routes
  const minimums = new Map<string, number>()
  for (const t of targets) {
    if (t.name === self) continue
    const r = decodeTarget(t.name, t.data)
    if (!r.ok) continue
    const n = r.target.requests
    const theirs = r.target.routes === undefined ? [DEFAULT_POOL_KEY] : r.target.routes.map(x => x.key)
    for (const pool of theirs) {
      if (!pools.includes(pool)) continue
      const min = minimums.get(pool)
      if (min === undefined || n < min) minimums.set(pool, n)
    }
  }
  let floor = 0
  for (const min of minimums.values()) if (min > floor) floor = min
  return floor
}

/**
 * The count a (re)created node starts at. `requests` is cumulative and the balancer sends
 * traffic to the lowest one, so a first creation starts at the floor (the others' minimum) or it
 * would get every request until it caught up. A re-creation by the same process continues its
 * own count exactly: it is a ledger of requests routed (the proxies top it up with what they
 * wrote after our last look, see request-counter.ts), and lifting it to the floor would count
 * requests nobody routed. It lags the others only by what they got while it was gone.
 */
export function startingCount (last: number | undefined, floor: number): number {
  return last ?? floor
}

/** Events: 'state' (RegistrationState), 'revision' (RevisionEvent, once per instance). */
export class Registration extends EventEmitter {
  readonly path: string
  readonly name: string
  readonly url: string
  readonly revision: string | undefined
  /** The routes written to the znode, as given (duplicates dropped). */
  readonly routes: readonly string[]
  readonly stripPrefix: boolean
  readonly #routeKeys: readonly string[]
  readonly #opts: RegistrationOptions
  readonly #session: ZkSession
  readonly #log: Logger
  readonly #startedAt: string
  #state: RegistrationState = 'stopped'
  #wanted = false
  #node: EphemeralNode | undefined
  #beginning = false
  #beginAgain = false
  #stopping: Promise<void> | undefined
  #floor = 0
  #lastCount: number | undefined
  #lastLedger: Record<string, number> | undefined
  #czxid: number | undefined
  #revisionDone = false
  readonly #revisionTask = new SerialTask(async () => { await this.#publishRevision() }, () => this.#revisionDone || !this.#wanted || this.revision === undefined)
  readonly #onConnected = (_ev: ConnectedEvent): void => { this.#kick() }
  readonly #onSessionState = (s: SessionState): void => {
    // Expired or lost: the node went (or goes) with the old session; EphemeralNode re-creates it
    // on the next one. A mere disconnection ('suspended') keeps it: the session may well live.
    if ((s === 'expired' || s === 'connecting' || s === 'closed') && this.#state === 'registered') this.#setState('pending')
  }

  constructor (opts: RegistrationOptions) {
    super()
    const problem = validateTargetName(opts.name) ?? urlProblem(opts.name, opts.url)
    if (problem !== undefined) throw createError('ZKPROXY_ERR_CONFIG_INVALID', problem)
    try {
      if (opts.revision !== undefined) encodeRevision(opts.revision)
    } catch (err) {
      throw createError('ZKPROXY_ERR_CONFIG_INVALID', `revision: ${(err as Error).message}`)
    }
    const routes: string[] = []
    const keys: string[] = []
    for (const given of opts.routes ?? []) {
      const r = parseRoute(given)
      if (!r.ok) throw createError('ZKPROXY_ERR_CONFIG_INVALID', `--route: ${r.reason}`)
      if (keys.includes(r.route.key)) continue
      keys.push(r.route.key)
      routes.push(given)
    }
    this.routes = Object.freeze(routes)
    this.#routeKeys = Object.freeze(keys)
    this.stripPrefix = opts.stripPrefix === true
    if (this.stripPrefix && !keys.some(k => k.includes('/'))) {
      throw createError('ZKPROXY_ERR_CONFIG_INVALID', '--strip-prefix needs a --route with a path prefix')
    }
    this.#opts = opts
    this.#session = opts.session
    this.#log = opts.logger
    this.name = opts.name
    this.url = opts.url
    this.revision = opts.revision?.trim()
    this.path = `${opts.targetsPath.replace(/\/+$/, '')}/${opts.name}`
    this.#startedAt = (opts.startedAt ?? new Date()).toISOString()
  }

  get state (): RegistrationState { return this.#state }
  /** The count last seen in our own node (proxies add to it), undefined before the first. */
  get requests (): number | undefined { return this.#lastCount }

  /** Registers (again, after stop()); returns at once, the node follows the session. */
  start (): this {
    if (this.#wanted) return this
    this.#wanted = true
    this.#session.on('connected', this.#onConnected)
    this.#session.on('state', this.#onSessionState)
    this.#setState('pending')
    if (this.#session.state === 'connected') this.#kick()
    return this
  }

  /** Deletes our node (ZooKeeper session left open) and stops re-creating it. */
  async stop (): Promise<void> {
    if (!this.#wanted) { await this.#stopping; return }
    this.#wanted = false
    this.#session.off('connected', this.#onConnected)
    this.#session.off('state', this.#onSessionState)
    const node = this.#node
    this.#node = undefined
    this.#czxid = undefined
    const stopping = (async () => { await node?.stop() })()
    this.#stopping = stopping
    await stopping
    // start() may have been called meanwhile (a health check recovering): then we are pending.
    if (!this.#wanted) this.#setState('stopped')
  }

  #setState (s: RegistrationState): void {
    if (this.#state === s) return
    const from = this.#state
    this.#state = s
    this.#log.info({ registration: { from, to: s, path: this.path, url: this.url, requests: this.#lastCount } }, `registration ${s}`)
    this.emit('state', s)
  }

  #kick (): void {
    void this.#begin()
    this.#revisionTask.kick()
  }

  /** First creation: read the floor before the node exists, so it is born with a fair count. */
  async #begin (): Promise<void> {
    // A kick while a pass runs is remembered, not dropped: that pass may be failing on the
    // connection whose return the kick announces.
    if (this.#beginning) { this.#beginAgain = true; return }
    this.#beginning = true
    try {
      do {
        this.#beginAgain = false
        if (await this.#createNode()) return
      } while (this.#beginAgain && this.#session.state === 'connected')
    } finally {
      this.#beginning = false
    }
  }

  /** True when done (node started, or no longer wanted); false to wait for a connection. */
  async #createNode (): Promise<boolean> {
    if (this.#node !== undefined || !this.#wanted) return true
    try {
      await this.#stopping // a restart waits for the previous node's deletion
      this.#floor = await this.#readFloor()
    } catch (err) {
      // Connection trouble: the next 'connected' event calls us again.
      if (isRetryable(err)) return false
      this.#log.warn({ err, path: this.#opts.targetsPath }, 'cannot read the other targets\' counts; using the last known minimum')
    }
    if (this.#node !== undefined || !this.#wanted) return true
    const node = new EphemeralNode(this.#session, this.path, { data: (last) => this.#dataFor(last), logger: this.#log, ...this.#secured() })
    node.on('state', (s: EphemeralState) => { if (node === this.#node && s === 'conflict') this.#setState('conflict') })
    node.on('data', (v: DataValue | null) => { if (node === this.#node) this.#onData(v) })
    this.#node = node
    node.start()
    return true
  }

  /**
   * In ACL mode: the targets path is secured before each creation (children made while it was
   * open are purged), our node gets its ACL right after create, and its data is read back to
   * make sure nobody rewrote it in between (proxies only ever change `requests`).
   */
  #secured (): Pick<EphemeralOptions, 'acl' | 'verify' | 'beforeCreate'> {
    const acls = this.#opts.acls
    if (acls === undefined) return {}
    return {
      acl: acls.target,
      verify: (data) => {
        const t = decodeTarget(this.name, data)
        return t.ok && t.target.url === this.url && t.target.revision === this.revision && t.target.startedAt === this.#startedAt &&
          sameKeys(t.target.routes?.map(r => r.key) ?? [], this.#routeKeys) && (t.target.stripPrefix === true) === this.stripPrefix
      },
      beforeCreate: async () => {
        await securePath(this.#session, this.#opts.targetsPath, acls.targets, { purgeChildren: true, logger: this.#log })
      }
    }
  }

  #dataFor (last: Buffer | undefined): Buffer {
    const seen = last === undefined ? undefined : decodeTarget(this.name, last)
    const lastCount = (seen?.ok === true ? seen.target.requests : undefined) ?? this.#lastCount
    const countedBy = (seen?.ok === true ? seen.target.countedBy : undefined) ?? this.#lastLedger
    const data: TargetData = {
      url: this.url, requests: startingCount(lastCount, this.#floor), ...(this.revision === undefined ? {} : { revision: this.revision }), startedAt: this.#startedAt, routes: this.routes, stripPrefix: this.stripPrefix
    }
    if (lastCount === undefined) this.#log.info({ path: this.path, requests: data.requests }, 'first registration: count starts at its pool\'s minimum')
    // The proxies' ledger goes with the count: each of them adds only what it is missing.
    if (countedBy !== undefined) data.countedBy = countedBy
    return encodeTarget(data)
  }

  #onData (value: DataValue | null): void {
    if (value === null || value.stat.ephemeralOwner !== this.#session.sessionId) {
      // Deleted by someone, or not ours (yet): EphemeralNode is already re-creating or waiting.
      if (this.#state === 'registered') this.#setState('pending')
      return
    }
    const t = decodeTarget(this.name, value.data)
    if (t.ok) {
      this.#lastCount = t.target.requests
      this.#lastLedger = t.target.countedBy ?? this.#lastLedger
    }
    if (value.stat.czxid === this.#czxid) return
    // A new creation by our current session (first, after expiry, or after a deletion).
    this.#czxid = value.stat.czxid
    this.#setState('registered')
  }

  /** The name of another live target carrying `revision`, if any. */
  async #otherCarrier (revision: string): Promise<string | undefined> {
    const s = this.#session
    const base = this.#opts.targetsPath
    let names: string[]
    try {
      names = await s.children(base)
    } catch (err) {
      if (hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) return undefined
      throw err
    }
    for (const name of names) {
      if (name === this.name) continue
      try {
        const t = decodeTarget(name, (await s.get(`${base}/${name}`)).data)
        if (t.ok && t.target.revision === revision) return name
      } catch (err) {
        // Went between the listing and the read: not a live target any more.
        if (!hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) throw err
      }
    }
    return undefined
  }

  async #readFloor (): Promise<number> {
    const s = this.#session
    const base = this.#opts.targetsPath
    let names: string[]
    try {
      names = await s.children(base)
    } catch (err) {
      if (hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) return 0
      throw err
    }
    const targets = await Promise.all(names.filter(n => n !== this.name).map(async (name) => {
      try {
        return { name, data: (await s.get(`${base}/${name}`)).data }
      } catch (err) {
        // Went between the listing and the read: not a live target any more.
        if (hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) return { name, data: null }
        throw err
      }
    }))
    return minimumCount(targets, this.name, this.#routeKeys)
  }

  /** Once per instance (= per process start), after the first connection (run by #revisionTask). */
  async #publishRevision (): Promise<void> {
    const path = this.#opts.cacheAgePath
    const revision = this.revision
    if (revision === undefined) return
    try {
      // Only a revision new to the fleet is news: a replica joining (or restarting) beside
      // others at the same revision, or an old replica at a revision still live, must not cost
      // every proxy its cache. Proxies judge coherence per pool from the targets themselves.
      const carrier = await this.#otherCarrier(revision)
      let changed = false
      if (carrier === undefined) {
        changed = await writeRevision(this.#session, path, revision)
        if (this.#opts.acls !== undefined) {
          // Created with the open ACL: lock it, then write again in case someone slipped
          // another revision in between (a no-op when the value is still ours).
          await securePath(this.#session, path, this.#opts.acls.cacheAge, { logger: this.#log })
          await writeRevision(this.#session, path, revision)
        }
      }
      this.#revisionDone = true
      this.#log.info({ path, revision, changed, carriedBy: carrier }, changed
        ? 'content revision published'
        : carrier === undefined ? 'content revision unchanged' : 'content revision already live in the fleet; not published')
      this.emit('revision', { revision, changed } satisfies RevisionEvent)
    } catch (err) {
      // Retryable: the next 'connected' event tries again. Anything else (an ACL) will not heal.
      if (!isRetryable(err)) {
        this.#revisionDone = true
        this.#log.error({ err, path }, 'cannot publish the content revision; proxies will not see content changes')
      }
    }
  }
}

function urlProblem (name: string, url: string): string | undefined {
  const r = decodeTarget(name, encodeTarget({ url, requests: 0 }))
  return r.ok ? undefined : r.reason
}

function sameKeys (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i])
}
