// Keeps one ephemeral node of ours alive across session expiry (after Curator's
// ServiceDiscoveryImpl and PersistentNode): created on every new session; a node left by one
// of our own earlier sessions is deleted and re-created "so that watchers fire"; a node owned
// by a stranger is waited for (watched) and taken when it goes; a create whose reply was lost
// is recognised by its ephemeralOwner being our current session.
import { EventEmitter } from 'node:events'
import { posix } from 'node:path'
import type { Logger } from 'pino'
import { isRetryable } from './errors.js'
import { CreateMode, type AclEntry } from './native.js'
import type { ConnectedEvent, ZkSession } from './session.js'
import { watchData, type DataValue, type Watch } from './watch.js'

export type EphemeralState = 'pending' | 'registered' | 'conflict' | 'stopped'

export interface EphemeralOptions {
  /** The data to write at each (re)creation; gets the data last seen in the node, if any. */
  readonly data: (last: Buffer | undefined) => Buffer
  readonly logger: Logger
  /** Applied right after create (the client always creates with the open ACL). */
  readonly acl?: AclEntry[]
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
  #running = false
  #again = false
  readonly #onConnected = (ev: ConnectedEvent): void => { if (ev.newSession) this.#kick() }

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
    if (this.#state === s) return
    this.#state = s
    this.emit('state', s)
  }

  #onData (value: DataValue | null): void {
    if (value !== null && (value.stat.ephemeralOwner === this.#session.sessionId)) this.#last = value
    if (value === null || value.stat.ephemeralOwner !== this.#session.sessionId) {
      // Gone, or not ours (yet): try to (re)create unless stopped.
      if (this.#state !== 'stopped') this.#kick()
    }
    this.emit('data', value)
  }

  #kick (): void {
    if (this.#state === 'stopped') return
    if (this.#running) { this.#again = true; return }
    this.#running = true
    void this.#loop().finally(() => { this.#running = false })
  }

  async #loop (): Promise<void> {
    do {
      this.#again = false
      try {
        await this.#ensure()
      } catch (err) {
        // Retryable: the next new session (or reconnect re-read of our watch) kicks again.
        if (!isRetryable(err)) this.#log.error({ err, path: this.path }, 'ephemeral node could not be created')
      }
    } while (this.#again && this.#state !== 'stopped')
  }

  async #ensure (): Promise<void> {
    const s = this.#session
    if (s.state !== 'connected' || this.#state === 'stopped') return
    const me = s.sessionId
    for (let attempt = 0; attempt < 5; attempt++) {
      const stat = await s.exists(this.path)
      if (stat !== null) {
        if (stat.ephemeralOwner === me) { this.#setState('registered'); return }
        if (s.ownsSession(stat.ephemeralOwner)) {
          // Left by our own expired session: it would vanish on its own later, taking our
          // registration with it, so replace it now.
          this.#log.info({ path: this.path, owner: stat.ephemeralOwner }, 'replacing ephemeral node left by our previous session')
          try { await s.delete(this.path, stat.version) } catch (err) { if (!isGone(err)) throw err }
          continue
        }
        if (this.#state !== 'conflict') {
          this.#log.warn({ path: this.path, owner: stat.ephemeralOwner }, 'ephemeral node is held by another session; waiting for it to go')
        }
        this.#setState('conflict')
        return
      }
      await s.mkdirp(posix.dirname(this.path))
      try {
        await s.create(this.path, this.#opts.data(this.#last?.data), CreateMode.EPHEMERAL)
        if (this.#opts.acl !== undefined) await s.setAcl(this.path, -1, this.#opts.acl)
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
}

function isGone (err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code
  return code === 'ZKPROXY_ERR_ZK_NO_NODE' || code === 'ZKPROXY_ERR_ZK_BAD_VERSION'
}
