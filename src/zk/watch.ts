// Re-armed watches: ZooKeeper watches fire once, and the `zookeeper` client can neither
// remove a watch nor free a callback that never fires (20,000 stray registrations grew memory
// by 16.7 MiB here), so each watch keeps exactly one outstanding registration per path and
// re-arms only from that registration's own callback. Level-triggered (Traefik's KV provider):
// on any fire or reconnect we re-read the whole value and deliver it only if it changed, so a
// change between a fire and the re-arm, or while disconnected, is never missed.
import type { Logger } from 'pino'
import { isRetryable } from './errors.js'
import { WatchEventType, type NativeHandle, type RawWatcher, type Stat } from './native.js'
import type { ZkSession } from './session.js'
import { SerialTask } from './serial-task.js'

export interface DataValue {
  readonly data: Buffer
  readonly stat: Stat
}

export interface Watch {
  close (): void
}

const RETRY_AFTER_ERROR_MS = 2000

abstract class ReArmedWatch<T> implements Watch {
  protected readonly path: string
  readonly #session: ZkSession
  readonly #listener: (value: T | null) => void
  readonly #log: Logger
  #armedGeneration = -1
  #token = 0
  #closed = false
  readonly #task = new SerialTask(async () => { await this.#step() }, () => this.#closed)
  #delivered = false
  #lastKey: string | undefined
  #retryTimer: NodeJS.Timeout | undefined
  readonly #onConnected = (): void => { this.#kick() }

  /** Told of errors that are not connection trouble (e.g. NOAUTH): the path stays unreadable until they clear. */
  readonly #onError: ((err: unknown) => void) | undefined

  constructor (session: ZkSession, path: string, listener: (value: T | null) => void, logger: Logger, onError?: (err: unknown) => void) {
    this.path = path
    this.#onError = onError
    this.#session = session
    this.#listener = listener
    this.#log = logger
    session.on('connected', this.#onConnected)
    this.#kick()
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#retryTimer)
    this.#session.off('connected', this.#onConnected)
  }

  /** Reads the value; with `watcher`, leaves exactly one watch registered for this path. */
  protected abstract read (h: NativeHandle, watcher: RawWatcher | undefined): Promise<T | null>
  /** A comparable identity of a value (versions, not contents, where ZooKeeper gives them). */
  protected abstract key (value: T | null): string

  #kick (): void { this.#task.kick() }

  async #step (): Promise<void> {
    try {
      await this.#readOnce()
    } catch (err) {
      // Connection trouble: the next 'connected' event kicks us again. Anything else
      // (e.g. no read permission) is logged and retried on a slow timer.
      if (!isRetryable(err) && !this.#closed) {
        this.#log.warn({ err, path: this.path }, 'zookeeper watch read failed; retrying')
        this.#onError?.(err)
        clearTimeout(this.#retryTimer)
        this.#retryTimer = setTimeout(() => { this.#kick() }, RETRY_AFTER_ERROR_MS)
      }
    }
  }

  async #readOnce (): Promise<void> {
    if (this.#session.state !== 'connected') return
    const generation = this.#session.generation
    const h = this.#session.liveHandle('watch', this.path)
    const arm = this.#armedGeneration !== generation
    let watcher: RawWatcher | undefined
    if (arm) {
      const token = ++this.#token
      watcher = (type) => {
        // Session events (type -1) reach every pending watcher on disconnect and expiry;
        // they are not changes — session.ts turns them into 'connected' re-reads.
        if (type === WatchEventType.SESSION || token !== this.#token || this.#closed) return
        this.#armedGeneration = -1
        this.#kick()
      }
    }
    // Marked armed before the read: a watcher that fires while a multi-step read is still
    // running resets this, and that reset must not be overwritten afterwards (it would leave
    // the path unwatched until the next session).
    if (arm) this.#armedGeneration = generation
    let value: T | null
    try {
      value = await this.read(h, watcher)
    } catch (err) {
      if (arm && this.#armedGeneration === generation) this.#armedGeneration = -1
      throw err
    }
    if (this.#closed) return
    const k = this.key(value)
    if (this.#delivered && k === this.#lastKey) return
    this.#delivered = true
    this.#lastKey = k
    this.#listener(value)
  }
}

function isNoNode (err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'ZKPROXY_ERR_ZK_NO_NODE'
}

/** Delivers the node's data and stat, or null while it does not exist (it may appear later). */
export class DataWatch extends ReArmedWatch<DataValue> {
  protected async read (h: NativeHandle, watcher: RawWatcher | undefined): Promise<DataValue | null> {
    try {
      return await h.get(this.path, watcher)
    } catch (err) {
      if (!isNoNode(err)) throw err
    }
    // No node: an exists-watch fires when it is created. get() registers nothing on NoNode,
    // so this stays the only registration.
    if (watcher !== undefined) {
      const stat = await h.exists(this.path, watcher)
      if (stat === null) return null
    }
    try {
      return await h.get(this.path)
    } catch (err) {
      if (isNoNode(err)) return null
      throw err
    }
  }

  protected key (value: DataValue | null): string {
    return value === null ? '-' : `${value.stat.czxid}:${value.stat.mzxid}:${value.stat.version}`
  }
}

/** Delivers the sorted child names, or null while the parent does not exist. */
export class ChildrenWatch extends ReArmedWatch<string[]> {
  protected async read (h: NativeHandle, watcher: RawWatcher | undefined): Promise<string[] | null> {
    try {
      return (await h.children(this.path, watcher)).sort()
    } catch (err) {
      if (!isNoNode(err)) throw err
    }
    if (watcher === undefined) return null
    const stat = await h.exists(this.path, watcher)
    if (stat === null) return null
    // Created in between: arm the child watch too (same token: whichever fires first re-arms,
    // the other is ignored as stale).
    try {
      return (await h.children(this.path, watcher)).sort()
    } catch (err) {
      if (isNoNode(err)) return null
      throw err
    }
  }

  protected key (value: string[] | null): string {
    return value === null ? '-' : `+${value.join('/')}`
  }
}

export function watchData (session: ZkSession, path: string, listener: (value: DataValue | null) => void, logger: Logger, onError?: (err: unknown) => void): Watch {
  return new DataWatch(session, path, listener, logger, onError)
}

export function watchChildren (session: ZkSession, path: string, listener: (children: string[] | null) => void, logger: Logger): Watch {
  return new ChildrenWatch(session, path, listener, logger)
}
