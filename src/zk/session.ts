// Session lifecycle (after Curator's ConnectionState): one long-lived ZkSession object that
// owns a sequence of native handles. A handle whose session expired is never used again; a
// new one is opened with backoff and listeners are told (`connected` with newSession: true)
// so they re-read, re-arm watches and re-create ephemeral nodes.
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { rc, zkError } from './errors.js'
import { CreateMode, NativeHandle, type RawWatcher, type Stat, type AclEntry } from './native.js'

export type SessionState =
  | 'connecting' // no session yet (start-up, or opening a new one after expiry)
  | 'connected'
  | 'suspended' // connection lost; the session may still be alive on the server
  | 'expired' // the session is gone (server said so, or suspended longer than its timeout)
  | 'auth_failed'
  | 'closed'

export interface SessionOptions {
  readonly connect: string
  readonly sessionTimeoutMs: number
  readonly logger: Logger
  /** Credentials added to every new session, e.g. [{ scheme: 'digest', credential: 'user:pw' }]. */
  readonly auth?: ReadonlyArray<{ readonly scheme: string, readonly credential: string }>
  readonly backoff?: { readonly initialMs: number, readonly maxMs: number }
  /**
   * A chroot in `connect` that does not exist is created at each new session (like Curator's
   * namespace), so every path under it works. Default true; read-only tools pass false.
   */
  readonly createChroot?: boolean
  /**
   * Unreachable this long (default 3000 ms), the session logs one warning naming the ensemble,
   * then again at doubling intervals (at most every 5 min) while it stays away; one info line
   * when it is back. Not one line per retry: the C client retries every host on its own.
   */
  readonly unreachableWarnMs?: number
}

const UNREACHABLE_WARN_MS = 3000
// A suspended handle is given this long (doubling, up to a third of the session timeout) before
// the session is resumed on a fresh handle. Measured after a leader kill in a 3-node ensemble:
// the C client sat on a connection whose handshake a server never answered, for two thirds of
// the session timeout (its only handshake deadline), although the other servers were serving.
const REDIAL_MS = 1500
const UNREACHABLE_WARN_MAX_MS = 5 * 60_000

/** `host:port,…[/chroot]` → the hosts and the chroot ('' when there is none). */
function splitChroot (connect: string): { hosts: string, chroot: string } {
  const slash = connect.indexOf('/')
  if (slash < 0) return { hosts: connect, chroot: '' }
  const chroot = connect.slice(slash).replace(/\/+$/, '')
  return { hosts: connect.slice(0, slash), chroot }
}

export interface ConnectedEvent {
  readonly newSession: boolean
  readonly sessionId: string
}

/**
 * Events: 'state' (SessionState), 'connected' (ConnectedEvent). Operations go to the current
 * handle and reject at once with ZKPROXY_ERR_ZK_CONNECTION_LOSS while there is no connection,
 * so callers never pile requests onto a dead or reconnecting client.
 */
export class ZkSession extends EventEmitter {
  readonly #opts: SessionOptions
  readonly #log: Logger
  #handle: NativeHandle | undefined
  #state: SessionState = 'connecting'
  #generation = 0
  #established = false
  /** The current handle's socket is up (between its 'connected' and 'connecting' events). */
  #up = false
  #lostTimer: NodeJS.Timeout | undefined
  #redialTimer: NodeJS.Timeout | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #retryDelayMs: number
  #stopped = false
  readonly #sessionIds = new Set<string>()
  #unreachableSince: number | undefined
  #unreachableTimer: NodeJS.Timeout | undefined
  #unreachableWarned = false

  constructor (opts: SessionOptions) {
    super()
    this.#opts = opts
    this.#log = opts.logger
    this.#retryDelayMs = opts.backoff?.initialMs ?? 250
  }

  get state (): SessionState { return this.#state }
  /** Increases with every native handle; watches armed on an older one are gone. */
  get generation (): number { return this.#generation }
  get sessionId (): string | undefined { return this.#established ? this.#handle?.sessionId : undefined }
  get sessionPassword (): string | undefined { return this.#established ? this.#handle?.sessionPassword : undefined }
  get connectString (): string { return this.#opts.connect }
  get sessionTimeoutMs (): number { return this.#opts.sessionTimeoutMs }

  /** True for any session id this process has held (its ephemeral nodes may linger). */
  ownsSession (id: string): boolean { return this.#sessionIds.has(id) }

  start (): this {
    if (this.#handle === undefined && !this.#stopped) {
      this.#open()
      this.#trackReachability()
    }
    return this
  }

  /** Since when ZooKeeper has been unreachable (ms epoch), undefined while connected. */
  get unreachableSince (): number | undefined { return this.#unreachableSince }

  #trackReachability (): void {
    const s = this.#state
    if (s === 'connected' || s === 'closed' || s === 'auth_failed') {
      clearTimeout(this.#unreachableTimer)
      this.#unreachableTimer = undefined
      const since = this.#unreachableSince
      this.#unreachableSince = undefined
      if (s === 'connected' && since !== undefined && this.#unreachableWarned) {
        this.#log.info({ zk: { connect: this.#opts.connect, unreachableMs: Date.now() - since } }, `zookeeper reachable again at ${this.#opts.connect}`)
      }
      this.#unreachableWarned = false
      return
    }
    if (this.#unreachableSince !== undefined) return
    this.#unreachableSince = Date.now()
    this.#armUnreachableWarning(this.#opts.unreachableWarnMs ?? UNREACHABLE_WARN_MS)
  }

  #armUnreachableWarning (delayMs: number): void {
    this.#unreachableTimer = setTimeout(() => {
      const since = this.#unreachableSince
      if (since === undefined || this.#stopped) return
      const ms = Date.now() - since
      this.#unreachableWarned = true
      this.#log.warn({ zk: { connect: this.#opts.connect, state: this.#state, unreachableMs: ms } }, `zookeeper unreachable for ${Math.round(ms / 1000)} s at ${this.#opts.connect}`)
      this.#armUnreachableWarning(Math.min(delayMs * 2, UNREACHABLE_WARN_MAX_MS))
    }, delayMs)
    this.#unreachableTimer.unref()
  }

  /** Resolves once connected; rejects after `timeoutMs` (never hangs). */
  async waitConnected (timeoutMs: number): Promise<void> {
    if (this.#state === 'connected') return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('state', onState)
        reject(zkError(rc.CONNECTIONLOSS, `no ZooKeeper session within ${timeoutMs} ms at`, this.#opts.connect))
      }, timeoutMs)
      const onState = (s: SessionState): void => {
        if (s === 'connected' || s === 'closed' || s === 'auth_failed') {
          clearTimeout(timer)
          this.off('state', onState)
          if (s === 'connected') resolve()
          else reject(zkError(s === 'closed' ? rc.CLOSING : rc.AUTHFAILED, 'waitConnected', this.#opts.connect))
        }
      }
      this.on('state', onState)
    })
  }

  async close (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#lostTimer)
    clearTimeout(this.#retryTimer)
    clearTimeout(this.#redialTimer)
    clearTimeout(this.#unreachableTimer)
    const h = this.#handle
    this.#handle = undefined
    // Closing the handle ends the session on the server, so our ephemeral nodes go at once.
    h?.close()
    this.#setState('closed')
  }

  #setState (s: SessionState): void {
    if (this.#state === s) return
    const from = this.#state
    this.#state = s
    this.#log.info({ zk: { from, to: s, connect: this.#opts.connect, sessionId: this.sessionId } }, `zookeeper session ${s}`)
    this.#trackReachability()
    this.emit('state', s)
  }

  #open (resume?: { id: string, password: string }): void {
    const h = new NativeHandle({ connect: this.#opts.connect, sessionTimeoutMs: this.#opts.sessionTimeoutMs, ...(resume === undefined ? {} : { session: resume }) })
    this.#handle = h
    this.#generation++
    this.#established = resume !== undefined
    this.#up = false
    h.on('connected', () => { this.#onConnected(h) })
    h.on('connecting', () => { this.#onConnecting(h) })
    h.on('closed', (code: number) => { this.#onClosed(h, code) })
  }

  #onConnected (h: NativeHandle): void {
    if (h !== this.#handle) return
    this.#up = true
    clearTimeout(this.#lostTimer)
    clearTimeout(this.#redialTimer)
    const newSession = !this.#established
    this.#established = true
    this.#retryDelayMs = this.#opts.backoff?.initialMs ?? 250
    this.#sessionIds.add(h.sessionId)
    const announce = (): void => {
      if (h !== this.#handle || h.closed) return
      this.#setState('connected')
      this.emit('connected', { newSession, sessionId: h.sessionId } satisfies ConnectedEvent)
    }
    if (!newSession) { announce(); return }
    this.#log.debug({ zk: { sessionId: h.sessionId } }, 'zookeeper new session: preparing')
    // A new session: add credentials, then sync so that the first reads are not a lagging
    // follower's view. A failed sync only means we disconnected
    // again; the next 'connected' announces then.
    void this.#prepare(h).then(announce, (err: unknown) => {
      if ((err as { code?: string }).code === 'ZKPROXY_ERR_ZK_AUTH_FAILED') {
        // The server refused our credentials and closes the connection; every new session
        // would be refused the same way, so stop here instead of reconnecting in a loop
        // (measured: without this, an unknown scheme cycled expired → connecting forever).
        this.#authFailed(h, err)
        return
      }
      this.#log.warn({ err }, 'zookeeper new-session preparation failed')
      if (!this.#up) {
        // The connection dropped again during sync: announcing now would report 'connected'
        // on a dead socket (and disarm the lost-session timer). The next 'connected' of this
        // handle prepares and announces the new session instead.
        this.#established = false
        return
      }
      announce()
    })
  }

  async #prepare (h: NativeHandle): Promise<void> {
    for (const a of this.#opts.auth ?? []) await h.addAuth(a.scheme, a.credential)
    await h.sync('/')
    const { hosts, chroot } = splitChroot(this.#opts.connect)
    // Inside a chroot, `/` is the chroot node itself: absent, every operation would fail NoNode.
    if (chroot !== '' && this.#opts.createChroot !== false && await h.exists('/') === null) await this.#createChroot(hosts, chroot)
  }

  /**
   * Creates a missing chroot through a second, short session without it (a session inside a
   * chroot cannot reach its parent). A failure (e.g. NoAuth: the operator's ACL on a parent
   * forbids it) is logged with what to do; the session goes on, and its operations fail
   * NoNode until the chroot exists.
   */
  async #createChroot (hosts: string, chroot: string): Promise<void> {
    // Its own connect/close lines would only be noise next to this session's.
    const outer = new ZkSession({ connect: hosts, sessionTimeoutMs: this.#opts.sessionTimeoutMs, logger: this.#log.child({}, { level: 'warn' }), auth: this.#opts.auth ?? [] })
    try {
      await outer.start().waitConnected(this.#opts.sessionTimeoutMs)
      await outer.mkdirp(chroot)
      this.#log.info({ zk: { chroot } }, 'created the ZooKeeper chroot')
    } catch (err) {
      this.#log.error({ err, zk: { chroot } }, `the ZooKeeper chroot ${chroot} does not exist and could not be created: create it once (zkCli.sh create ${chroot}) or remove it from --zk`)
    } finally {
      await outer.close()
    }
  }

  #authFailed (h: NativeHandle, err: unknown): void {
    if (h !== this.#handle) return
    clearTimeout(this.#lostTimer)
    this.#handle = undefined
    this.#established = false
    h.close()
    this.#log.error({ err, zk: { connect: this.#opts.connect, schemes: (this.#opts.auth ?? []).map(a => a.scheme) } }, 'zookeeper refused the credentials (--zk-auth)')
    this.#setState('auth_failed')
  }

  #onConnecting (h: NativeHandle): void {
    if (h !== this.#handle) return
    this.#up = false
    if (!this.#established) return
    // A handle resuming the session (see #armRedial) starting to connect: the deadlines of the
    // disconnection it continues stand.
    if (this.#state === 'suspended') return
    this.#setState('suspended')
    // A partitioned client is not told when the server expires its session; after the
    // session timeout we must assume it did (Curator's LOST) and start a new one.
    clearTimeout(this.#lostTimer)
    this.#lostTimer = setTimeout(() => {
      const current = this.#handle
      if (current === undefined || this.#state !== 'suspended') return
      this.#log.warn({ zk: { sessionId: current.sessionId } }, 'zookeeper disconnected longer than the session timeout: treating the session as lost')
      this.#replace(current)
    }, Math.max(h.negotiatedTimeoutMs, this.#opts.sessionTimeoutMs))
    this.#lostTimer.unref()
    this.#armRedial(h, REDIAL_MS)
  }

  /**
   * Resumes the same session on a fresh handle when this one stays disconnected: the new handle
   * starts over at a random server, and the session (with its ephemeral nodes) carries on. The
   * old handle is closed while it is not connected, which frees it without ending the session.
   * Watches are re-armed by the 'connected' that follows (the generation changed).
   */
  #armRedial (h: NativeHandle, delayMs: number): void {
    clearTimeout(this.#redialTimer)
    this.#redialTimer = setTimeout(() => {
      if (h !== this.#handle || this.#up || this.#stopped || h.closed || this.#state !== 'suspended') return
      const session = { id: h.sessionId, password: h.sessionPassword }
      this.#log.info({ zk: { sessionId: session.id, afterMs: delayMs } }, 'zookeeper still disconnected: resuming the session on a fresh connection')
      this.#handle = undefined
      h.close()
      this.#open(session)
      const next = this.#handle as NativeHandle | undefined
      if (next !== undefined) this.#armRedial(next, Math.min(delayMs * 2, Math.max(REDIAL_MS, Math.floor(this.#opts.sessionTimeoutMs / 3))))
    }, delayMs)
    this.#redialTimer.unref()
  }

  #onClosed (h: NativeHandle, code: number): void {
    if (h !== this.#handle || this.#stopped) return
    if (code === rc.AUTHFAILED) {
      this.#authFailed(h, zkError(code, 'session', this.#opts.connect))
      return
    }
    // Expiry, or the binding closing the handle on its own: both mean "new session".
    this.#replace(h)
  }

  #replace (old: NativeHandle): void {
    clearTimeout(this.#lostTimer)
    clearTimeout(this.#redialTimer)
    this.#handle = undefined
    this.#established = false
    old.close()
    this.#setState('expired')
    const delay = this.#retryDelayMs
    this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, this.#opts.backoff?.maxMs ?? 10_000)
    this.#retryTimer = setTimeout(() => {
      if (this.#stopped) return
      this.#setState('connecting')
      this.#open()
    }, delay)
  }

  // ---- operations on the current session ----

  #live (op: string, path: string): NativeHandle {
    const h = this.#handle
    if (h === undefined || h.closed || this.#state !== 'connected') throw zkError(rc.CONNECTIONLOSS, op, path)
    return h
  }

  /** Like the operations below, but lets a watcher bind its callbacks to one handle. */
  liveHandle (op: string, path: string): NativeHandle { return this.#live(op, path) }

  async create (path: string, data: Buffer, mode: number = CreateMode.PERSISTENT): Promise<string> {
    return await this.#live('create', path).create(path, data, mode)
  }

  async get (path: string, watcher?: RawWatcher): Promise<{ data: Buffer, stat: Stat }> {
    return await this.#live('get', path).get(path, watcher)
  }

  async exists (path: string, watcher?: RawWatcher): Promise<Stat | null> {
    return await this.#live('exists', path).exists(path, watcher)
  }

  async children (path: string, watcher?: RawWatcher): Promise<string[]> {
    return await this.#live('children', path).children(path, watcher)
  }

  async set (path: string, data: Buffer, version: number): Promise<Stat> {
    return await this.#live('set', path).set(path, data, version)
  }

  async delete (path: string, version: number): Promise<void> {
    await this.#live('delete', path).delete(path, version)
  }

  async setAcl (path: string, version: number, acl: AclEntry[]): Promise<void> {
    await this.#live('setAcl', path).setAcl(path, version, acl)
  }

  async getAcl (path: string): Promise<{ acl: AclEntry[], stat: Stat }> {
    return await this.#live('getAcl', path).getAcl(path)
  }

  /** Creates `path` and its missing parents as persistent nodes; existing ones are kept. */
  async mkdirp (path: string): Promise<void> {
    const parts = path.split('/').filter(p => p !== '')
    let current = ''
    for (const part of parts) {
      current += `/${part}`
      try {
        await this.create(current, Buffer.alloc(0), CreateMode.PERSISTENT)
      } catch (err) {
        if ((err as { code?: string }).code !== 'ZKPROXY_ERR_ZK_NODE_EXISTS') throw err
      }
    }
  }
}

/**
 * Forces a session to expire (tests and chaos drills): ZooKeeper ends a session when a second
 * client that resumed it with the same id and password closes. The original client may win
 * its connection back before that close arrives (then the close fails as SESSIONMOVED and the
 * session lives on), so we repeat until resuming the session is refused as expired.
 */
export async function expireSession (connect: string, session: { id: string, password: string }, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await resumeAndClose(connect, session, deadline - Date.now()) === 'expired') return
  }
  throw new Error(`could not expire session ${session.id} within ${timeoutMs} ms`)
}

async function resumeAndClose (connect: string, session: { id: string, password: string }, timeoutMs: number): Promise<'expired' | 'closed'> {
  const h = new NativeHandle({ connect, sessionTimeoutMs: 10_000, session })
  try {
    return await new Promise<'expired' | 'closed'>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`could not resume session ${session.id} to expire it`)) }, Math.max(timeoutMs, 1))
      h.once('connected', () => { clearTimeout(timer); resolve('closed') })
      h.once('closed', () => { clearTimeout(timer); resolve('expired') })
    })
  } finally {
    h.close()
  }
}
