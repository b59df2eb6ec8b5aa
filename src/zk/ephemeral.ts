// Keeps one ephemeral node of ours alive across session expiry (after Curator's
// ServiceDiscoveryImpl and PersistentNode): created on every new session; a node left by one
// of our own earlier sessions is deleted and re-created "so that watchers fire"; a node owned
// by a stranger is waited for (watched) and taken when it goes; a create whose reply was lost
// is recognised by its ephemeralOwner being our current session.
import { EventEmitter } from 'node:events'
import { posix } from 'node:path'
import type { Logger } from 'pino'
import { isRetryable } from './errors.js'
import { aclEquals } from './acl.js'
import { CreateMode, type AclEntry } from './native.js'
import type { ConnectedEvent, SessionState, ZkSession } from './session.js'
import { watchData, type DataValue, type Watch } from './watch.js'
import { SerialTask } from './serial-task.js'

export type EphemeralState = 'pending' | 'registered' | 'conflict' | 'stopped'

export interface EphemeralOptions {
  /** The data to write at each (re)creation; gets the data last seen in the node, if any. */
  readonly data: (last: Buffer | undefined) => Buffer
  readonly logger: Logger
  /**
   * Applied right after create: the client always creates with the open ACL (docs/security.md
   * "Known limits"), so between the two calls anyone may write or re-ACL the node. The ACL is
   * set only if nobody changed it first (ACL version 0), and the node is deleted and created
   * again when someone did, or when `verify` says its data is not what we wrote.
   */
  readonly acl?: AclEntry[]
  /** Checks the data read back once the ACL is set; false means "written by someone else". */
  readonly verify?: (data: Buffer) => boolean
  /** Runs before each creation (e.g. make sure the parent exists with the right ACL). */
  readonly beforeCreate?: () => Promise<void>
}

/**
 * Events: 'state' (EphemeralState), 'data' (DataValue | null: the node as last seen).
 */
export class EphemeralNode extends EventEmitter {
  readonly path: string
  readonly #session: ZkSession
  readonly #opts: EphemeralOptions
  readonly #log: Logger
  #state: EphemeralState = 'pending'
  #watch: Watch | undefined
  #last: DataValue | null = null
  readonly #task = new SerialTask(async () => { await this.#step() }, () => this.#state === 'stopped')
  readonly #onConnected = (ev: ConnectedEvent): void => { if (ev.newSession) this.#kick() }
  // The node went with an expired session: not registered until the next session re-creates it.
  readonly #onSessionState = (s: SessionState): void => { if (s === 'expired' && this.#state === 'registered') this.#setState('pending') }

  constructor (session: ZkSession, path: string, opts: EphemeralOptions) {
    super()
    this.path = path
    this.#session = session
    this.#opts = opts
    this.#log = opts.logger
  }

  get state (): EphemeralState { return this.#state }
  /** The node's data as last seen (ours, including counts other processes wrote). */
  get lastData (): Buffer | undefined { return this.#last?.data }

  start (): this {
    this.#session.on('connected', this.#onConnected)
    this.#session.on('state', this.#onSessionState)
    // The watch on our own node tells us when it goes (deleted by hand, or our old session's
    // node expiring while a stranger's blocks us) and what counts proxies wrote into it.
    this.#watch = watchData(this.#session, this.path, (value) => { this.#onData(value) }, this.#log)
    this.#kick()
    return this
  }

  /** Deletes the node (if it is ours) and stops re-creating it. The session stays open. */
  async stop (): Promise<void> {
    if (this.#state === 'stopped') return
    this.#setState('stopped')
    this.#session.off('connected', this.#onConnected)
    this.#session.off('state', this.#onSessionState)
    this.#watch?.close()
    try {
      const stat = await this.#session.exists(this.path)
      if (stat !== null && stat.ephemeralOwner === this.#session.sessionId) await this.#session.delete(this.path, -1)
    } catch (err) {
      // Not connected: the node goes with the session when it is closed or expires.
      this.#log.warn({ err, path: this.path }, 'could not delete ephemeral node; it goes with the session')
    }
  }

  #setState (s: EphemeralState): void {
    // stop() is final: a create that was still running when it came must not revive us.
    if (this.#state === s || this.#state === 'stopped') return
    this.#state = s
    this.emit('state', s)
  }

  #onData (value: DataValue | null): void {
    if (value !== null && (value.stat.ephemeralOwner === this.#session.sessionId)) this.#last = value
    if (value === null || value.stat.ephemeralOwner !== this.#session.sessionId) {
      // Gone, or not ours (yet): try to (re)create unless stopped.
      if (this.#state === 'registered') this.#setState('pending')
      if (this.#state !== 'stopped') this.#kick()
    }
    this.emit('data', value)
  }

  #kick (): void { this.#task.kick() }

  async #step (): Promise<void> {
    try {
      await this.#ensure()
    } catch (err) {
      // Retryable: the next new session (or reconnect re-read of our watch) kicks again.
      if (!isRetryable(err)) this.#log.error({ err, path: this.path }, 'ephemeral node could not be created')
    }
  }

  async #ensure (): Promise<void> {
    const s = this.#session
    if (s.state !== 'connected' || this.#state === 'stopped') return
    const me = s.sessionId
    let carried: Buffer | undefined
    for (let attempt = 0; attempt < 5; attempt++) {
      const stat = await s.exists(this.path)
      if (stat !== null) {
        if (stat.ephemeralOwner === me) {
          // Ours, but perhaps from a create whose reply was lost before the ACL was set.
          if (await this.#locked()) { this.#setState('registered'); return }
          await this.#discard('ephemeral node has not the expected ACL; re-creating it')
          continue
        }
        if (s.ownsSession(stat.ephemeralOwner)) {
          // Left by our own expired session: it would vanish on its own later, taking our
          // registration with it, so replace it now. Its data is read first and the delete is
          // conditional on that version: the new node starts from exactly what the old one
          // held last (others may have written to it since we last saw it).
          let old: DataValue
          try { old = await s.get(this.path) } catch (err) { if (!isGone(err)) throw err; continue }
          if (old.stat.ephemeralOwner !== stat.ephemeralOwner) continue
          this.#log.info({ path: this.path, owner: stat.ephemeralOwner }, 'replacing ephemeral node left by our previous session')
          try { await s.delete(this.path, old.stat.version) } catch (err) { if (!isGone(err)) throw err; continue }
          carried = old.data
          continue
        }
        if (this.#state !== 'conflict') {
          this.#log.warn({ path: this.path, owner: stat.ephemeralOwner }, 'ephemeral node is held by another session; waiting for it to go')
        }
        this.#setState('conflict')
        return
      }
      if (this.#opts.beforeCreate !== undefined) await this.#opts.beforeCreate()
      else await s.mkdirp(posix.dirname(this.path))
      try {
        await s.create(this.path, this.#opts.data(carried ?? this.#last?.data), CreateMode.EPHEMERAL)
        if ((this.#state as EphemeralState) === 'stopped') {
          // stop() ran while this create was on its way and found nothing to delete.
          await s.delete(this.path, -1).catch(() => {})
          return
        }
        if (!await this.#lock()) {
          await this.#discard('ephemeral node was changed by someone else before its ACL was set; re-creating it')
          continue
        }
        this.#log.info({ path: this.path, sessionId: me }, 'ephemeral node created')
        this.#setState('registered')
        return
      } catch (err) {
        // NodeExists: someone (maybe our own create whose reply was lost) got there first;
        // the next pass reads the owner.
        if ((err as { code?: string }).code !== 'ZKPROXY_ERR_ZK_NODE_EXISTS') throw err
      }
    }
  }

  /**
   * Sets the ACL on the node we just created, then checks its data. ACL version 0 makes the
   * write conditional: if someone changed the ACL in between, BADVERSION (or NOAUTH, when
   * their ACL shut us out) says so. Once our ACL is on, only its identities can write, so data
   * that `verify` rejects was written in the window; false in both cases.
   */
  async #lock (): Promise<boolean> {
    const acl = this.#opts.acl
    if (acl === undefined) return true
    try {
      await this.#session.setAcl(this.path, 0, acl)
    } catch (err) {
      if (isTampered(err)) return false
      throw err
    }
    return await this.#verified()
  }

  /** True when the node carries exactly our ACL and data we accept. */
  async #locked (): Promise<boolean> {
    const acl = this.#opts.acl
    if (acl === undefined) return true
    const { acl: actual } = await this.#session.getAcl(this.path)
    return aclEquals(actual, acl) && await this.#verified()
  }

  async #verified (): Promise<boolean> {
    if (this.#opts.verify === undefined) return true
    try {
      return this.#opts.verify((await this.#session.get(this.path)).data)
    } catch (err) {
      if (isGone(err)) return false
      throw err
    }
  }

  /** Deletes a node of ours that cannot be trusted; the caller's loop creates it again. */
  async #discard (msg: string): Promise<void> {
    this.#log.warn({ path: this.path }, msg)
    try { await this.#session.delete(this.path, -1) } catch (err) { if (!isGone(err)) throw err }
  }
}

function isTampered (err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code
  return code === 'ZKPROXY_ERR_ZK_BAD_VERSION' || code === 'ZKPROXY_ERR_ZK_NO_AUTH' || code === 'ZKPROXY_ERR_ZK_NO_NODE'
}

function isGone (err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code
  return code === 'ZKPROXY_ERR_ZK_NO_NODE' || code === 'ZKPROXY_ERR_ZK_BAD_VERSION'
}
