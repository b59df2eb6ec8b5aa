// The only module that imports the `zookeeper` package (it wraps the C client). One NativeHandle
// is one ZooKeeper session attempt: when its session expires or it is closed, the handle is
// dead for good — the package's README warns that using it afterwards segfaults, and calling
// close() twice has aborted Node — so this class guards every call and the session manager
// (session.ts) creates a fresh handle instead of reviving an old one.
import { EventEmitter } from 'node:events'
import ZooKeeper from 'zookeeper'
import { rc, zkError, ZkError } from './errors.js'

export interface Stat {
  readonly czxid: number
  readonly mzxid: number
  readonly version: number
  readonly cversion: number
  readonly aversion: number
  readonly ephemeralOwner: string // hex session id, '0' when persistent
  readonly dataLength: number
  readonly numChildren: number
}

export interface AclEntry {
  readonly perm: number
  readonly scheme: string
  readonly auth: string
}

/** Raw watch callback: `type` -1 is a session event (not a change), see watch.ts. */
export type RawWatcher = (type: number, state: number, path: string) => void

export const WatchEventType = { SESSION: -1, CREATED: 1, DELETED: 2, CHANGED: 3, CHILD: 4 } as const
export const CreateMode = { PERSISTENT: 0, EPHEMERAL: 1, PERSISTENT_SEQUENTIAL: 2 } as const
export const Perm = { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 } as const

// The subset of the package's callback API we use; its bundled typings are loose, so we
// state the shapes we rely on here once.
interface NativeApi {
  init (config: Record<string, unknown>): unknown
  close (): unknown
  on (event: string, listener: (...args: unknown[]) => void): unknown
  readonly client_id: string
  readonly client_password: string
  readonly timeout: number
  a_create (path: string, data: Buffer, flags: number, cb: (rc: number, err: string, path: string) => void): number
  a_get (path: string, watch: boolean, cb: (rc: number, err: string, stat: Stat, data: Buffer | null) => void): number
  aw_get (path: string, watcher: RawWatcher, cb: (rc: number, err: string, stat: Stat, data: Buffer | null) => void): number
  a_exists (path: string, watch: boolean, cb: (rc: number, err: string, stat: Stat) => void): number
  aw_exists (path: string, watcher: RawWatcher, cb: (rc: number, err: string, stat: Stat) => void): number
  a_get_children (path: string, watch: boolean, cb: (rc: number, err: string, children: string[]) => void): number
  aw_get_children (path: string, watcher: RawWatcher, cb: (rc: number, err: string, children: string[]) => void): number
  a_set (path: string, data: Buffer, version: number, cb: (rc: number, err: string, stat: Stat) => void): number
  a_delete_ (path: string, version: number, cb: (rc: number, err: string) => void): number
  a_sync (path: string, cb: (rc: number, err: string) => void): number
  add_auth (scheme: string, auth: string, cb: (rc: number, err: string) => void): number
  a_set_acl (path: string, version: number, acl: AclEntry[], cb: (rc: number, err: string) => void): number
  // Read back as `perms` (the binding's own spelling), written as `perm`: see getAcl().
  a_get_acl (path: string, cb: (rc: number, err: string, acl: Array<{ perms: number, scheme: string, auth: string }> | null, stat: Stat) => void): number
}

type NativeCtor = new (config: Record<string, unknown>) => NativeApi

export interface HandleOptions {
  readonly connect: string
  readonly sessionTimeoutMs: number
  /** Resume an existing session (used only to force expiry in tests). */
  readonly session?: { readonly id: string, readonly password: string }
}

export type HandleEvent = 'connected' | 'connecting' | 'closed'

/**
 * One native client handle. Emits 'connected' (session established or re-established),
 * 'connecting' (connection lost, client retrying) and 'closed' (code; once, for any reason).
 */
export class NativeHandle extends EventEmitter {
  readonly #zk: NativeApi
  #closed = false

  constructor (opts: HandleOptions) {
    super()
    const config: Record<string, unknown> = {
      connect: opts.connect,
      timeout: opts.sessionTimeoutMs,
      // 0 silences the C client's stderr logging; state changes are logged by session.ts.
      debug_level: 0,
      host_order_deterministic: false,
      // The native binding closes the handle as "expired" after this many empty polls in a
      // row (default 10), which can happen on a healthy but idle connection; make it rare.
      response_counter_limit: 1_000_000
    }
    if (opts.session !== undefined) {
      config.client_id = opts.session.id
      config.client_password = opts.session.password
    }
    this.#zk = new (ZooKeeper as unknown as NativeCtor)(config)
    this.#zk.on('connect', () => { if (!this.#closed) this.emit('connected') })
    this.#zk.on('connecting', () => { if (!this.#closed) this.emit('connecting') })
    this.#zk.on('close', (_self: unknown, code: unknown) => {
      if (this.#closed) return
      this.#closed = true
      this.emit('closed', typeof code === 'number' ? code : rc.SESSIONEXPIRED)
    })
    this.#zk.init({})
  }

  get closed (): boolean { return this.#closed }
  get sessionId (): string { return this.#closed ? '0' : this.#zk.client_id }
  get sessionPassword (): string { return this.#closed ? '' : this.#zk.client_password }
  get negotiatedTimeoutMs (): number { return this.#closed ? 0 : this.#zk.timeout }

  /** Closes the session (ephemeral nodes go at once). Safe to call more than once. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#zk.close()
    this.emit('closed', rc.OK)
  }

  // Each call: reject at once on a dead handle (never touch it), else wrap the callback.
  #call<T> (op: string, path: string, start: (done: (code: number, value: T) => void) => number): Promise<T> {
    if (this.#closed) return Promise.reject(zkError(rc.CLOSING, op, path))
    return new Promise<T>((resolve, reject) => {
      const immediate = start((code, value) => {
        if (code === rc.OK) resolve(value)
        else reject(zkError(code, op, path))
      })
      // A non-zero return means the request was never queued (bad state or arguments).
      if (immediate !== rc.OK && typeof immediate === 'number') reject(zkError(immediate, op, path))
    })
  }

  create (path: string, data: Buffer, mode: number): Promise<string> {
    return this.#call('create', path, done => this.#zk.a_create(path, data, mode, (code, _e, p) => done(code, p)))
  }

  get (path: string, watcher?: RawWatcher): Promise<{ data: Buffer, stat: Stat }> {
    return this.#call('get', path, done => {
      const cb = (code: number, _e: string, stat: Stat, data: Buffer | null): void =>
        done(code, { data: data ?? Buffer.alloc(0), stat })
      return watcher === undefined ? this.#zk.a_get(path, false, cb) : this.#zk.aw_get(path, watcher, cb)
    })
  }

  /** Stat or null; with a watcher, the watch is set whether or not the node exists. */
  async exists (path: string, watcher?: RawWatcher): Promise<Stat | null> {
    try {
      return await this.#call<Stat>('exists', path, done => {
        const cb = (code: number, _e: string, stat: Stat): void => done(code, stat)
        return watcher === undefined ? this.#zk.a_exists(path, false, cb) : this.#zk.aw_exists(path, watcher, cb)
      })
    } catch (err) {
      if (err instanceof ZkError && err.rc === rc.NONODE) return null
      throw err
    }
  }

  children (path: string, watcher?: RawWatcher): Promise<string[]> {
    return this.#call('children', path, done => {
      const cb = (code: number, _e: string, children: string[]): void => done(code, children ?? [])
      return watcher === undefined ? this.#zk.a_get_children(path, false, cb) : this.#zk.aw_get_children(path, watcher, cb)
    })
  }

  set (path: string, data: Buffer, version: number): Promise<Stat> {
    return this.#call('set', path, done => this.#zk.a_set(path, data, version, (code, _e, stat) => done(code, stat)))
  }

  delete (path: string, version: number): Promise<void> {
    return this.#call('delete', path, done => this.#zk.a_delete_(path, version, code => done(code, undefined)))
  }

  sync (path: string): Promise<void> {
    return this.#call('sync', path, done => this.#zk.a_sync(path, code => done(code, undefined)))
  }

  addAuth (scheme: string, auth: string): Promise<void> {
    return this.#call('addAuth', scheme, done => this.#zk.add_auth(scheme, auth, code => done(code, undefined)))
  }

  setAcl (path: string, version: number, acl: AclEntry[]): Promise<void> {
    return this.#call('setAcl', path, done => this.#zk.a_set_acl(path, version, acl, code => done(code, undefined)))
  }

  /**
   * The node's ACL. The binding reads entries back as `{ perms }` but takes `{ perm }` in
   * setAcl; both sides here speak `perm`. ZooKeeper shows a digest id's hash as `x` to a
   * client without ADMIN on the node (`user:x`), so only an admin sees the real ids.
   */
  getAcl (path: string): Promise<{ acl: AclEntry[], stat: Stat }> {
    return this.#call('getAcl', path, done => this.#zk.a_get_acl(path, (code, _e, acl, stat) => {
      done(code, { acl: (acl ?? []).map(a => ({ perm: a.perms, scheme: a.scheme, auth: a.auth })), stat })
    }))
  }
}
