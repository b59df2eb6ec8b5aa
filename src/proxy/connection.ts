// Who owns a request's life: its client connection. node:http parses pipelined requests as fast
// as they arrive and emits each at once, but it answers them in order, holding a response back
// until the ones before it are written; and when the client goes away it emits 'close' only for
// the response at the head of that line. A response queued behind it gets no event at all. So the
// connection keeps its requests in arrival order and ends each exactly once: when its response
// finished, or when the socket closed, whichever comes first. Nothing stays counted in flight,
// holds an upstream connection or blocks shutdown after its client is gone.
//
// It also decides when each request may start (RFC 9112 §9.3.2): a request starts once every
// request before it on the connection has ended, except that safe methods may run side by side
// with earlier safe ones, at most `window` at a time. An unsafe request (POST, PUT, …) therefore
// reaches the target only after everything before it was answered, and nothing after it starts
// before it ended; a client pipelining thousands of GETs holds at most `window` upstream requests.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** Methods that may be handled in parallel with the requests around them (RFC 9110 §9.2.1). */
const SAFE: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/** Safe requests of one connection upstream at once; more wait their turn. */
export const PIPELINE_WINDOW = 8

export type EndListener = (gone: boolean) => void

class Entry implements RequestLife {
  readonly safe: boolean
  readonly #start: (life: RequestLife) => void
  started = false
  ended = false
  #listeners: EndListener[] | undefined
  /** How it ended; true also for a request that came in on a socket already closed. */
  #gone = true

  constructor (safe: boolean, start: (life: RequestLife) => void) {
    this.safe = safe
    this.#start = start
  }

  begin (): void {
    this.started = true
    this.#start(this)
  }

  onEnd (fn: EndListener): void {
    // Already over (its socket closed before it came in): the listener still runs, once, so
    // that whatever was taken for the request is given back.
    if (this.ended) { fn(this.#gone); return }
    ;(this.#listeners ??= []).push(fn)
  }

  finish (gone: boolean): void {
    this.#gone = gone
    const listeners = this.#listeners
    this.#listeners = undefined
    if (listeners !== undefined) for (const fn of listeners) fn(gone)
  }
}

/** One request's life as the connection sees it. */
export interface RequestLife {
  /** `fn` runs once when the request ends; `gone`: its client went away before the response finished. */
  onEnd: (fn: EndListener) => void
}

const connections = new WeakMap<Socket, Connection>()

export class Connection {
  readonly #window: number
  /** Requests not yet ended, in arrival order. */
  readonly #queue: Entry[] = []
  #closed = false
  #pumping = false
  #again = false

  private constructor (socket: Socket, window: number) {
    this.#window = window
    socket.once('close', () => { this.#closeAll() })
  }

  static of (socket: Socket, window = PIPELINE_WINDOW): Connection {
    let c = connections.get(socket)
    if (c === undefined) {
      c = new Connection(socket, window)
      connections.set(socket, c)
    }
    return c
  }

  /** Whether `socket` has no request in progress or waiting (also when none was ever taken in). */
  static idle (socket: Socket): boolean {
    const c = connections.get(socket)
    return c === undefined || c.#queue.length === 0
  }

  /** Requests of this connection not yet ended (started or waiting their turn). */
  get pending (): number { return this.#queue.length }

  /**
   * Takes a request in; `start` runs when it may start (maybe at once). The request ends on the
   * response's 'finish' or 'close', or when the connection closes.
   */
  enter (req: IncomingMessage, res: ServerResponse, start: (life: RequestLife) => void): RequestLife {
    const entry = new Entry(SAFE.has(req.method ?? ''), start)
    if (this.#closed) {
      // The socket closed before node:http handed us this request: nothing to do for it.
      entry.ended = true
      return entry
    }
    this.#queue.push(entry)
    // 'close' follows 'finish' for a response that was written (one listener per request, not
    // two); a response queued behind a pipelined one gets neither when the client leaves, and
    // the socket's close ends it instead.
    res.once('close', () => { this.#end(entry, !res.writableFinished) })
    this.#pump()
    return entry
  }

  #end (entry: Entry, gone: boolean): void {
    if (entry.ended) return
    entry.ended = true
    const i = this.#queue.indexOf(entry)
    if (i !== -1) this.#queue.splice(i, 1)
    entry.finish(gone)
    this.#pump()
  }

  #closeAll (): void {
    this.#closed = true
    // Every request still here ends now, started or not, answered or queued.
    for (const entry of this.#queue.splice(0)) {
      entry.ended = true
      entry.finish(true)
    }
  }

  /** Starts every request whose turn it is. Re-entrant calls (a start that ends at once) loop. */
  #pump (): void {
    if (this.#pumping) {
      this.#again = true
      return
    }
    this.#pumping = true
    try {
      do {
        this.#again = false
        let active = 0
        let earlierSafe = true
        for (let i = 0; i < this.#queue.length; i++) {
          const e = this.#queue[i]!
          if (!e.started) {
            const may = i === 0 || (e.safe && earlierSafe && active < this.#window)
            if (!may) break
            e.begin()
            // The start may have ended it (and others) already: scan again from the top.
            if (this.#again) break
          }
          active++
          earlierSafe &&= e.safe
        }
      } while (this.#again)
    } finally {
      this.#pumping = false
    }
  }
}
