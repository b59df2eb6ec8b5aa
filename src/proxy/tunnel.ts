// Upgrade tunnels (WebSockets). An `Upgrade: websocket` request goes to the least-used live
// target like any request (counted once per tunnel, failed over while the target has not yet
// answered), through undici's dispatcher with `upgrade`; once the target answers 101, its head
// goes to the client and the two sockets are piped both ways (pipe() carries backpressure each
// way). A target that answers something other than 101 has that answer passed on as a normal
// response; a 101 is never retried. A tunnel ends when either side closes or fails (the other
// side is closed too), after `idleTimeoutMs` without a byte either way, or when the drain that
// follows SIGTERM ends. Other upgrades (h2c, …) are never tunnelled: request-path.ts answers
// them as plain requests without the upgrade.
import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import type { LiveTarget, Pool, Router } from './router.js'
import type { ForwardHooks } from './failover.js'
import { attemptFailed, exhaustedMessage, type AttemptLog, type FailureContext } from './failover.js'
import { downstreamFields, type ResponseHeaders } from './headers.js'
import { writeProblem } from './answers.js'

/** Why a tunnel ended (a metrics label). */
export type TunnelEnd = 'client' | 'target' | 'idle' | 'drain' | 'error'
const END_REASONS: readonly TunnelEnd[] = ['client', 'target', 'idle', 'drain', 'error']

export interface TunnelStats {
  readonly open: number
  readonly opened: number
  readonly closed: Readonly<Record<TunnelEnd, number>>
  /** Bytes from clients to targets, and back. */
  readonly bytesUp: number
  readonly bytesDown: number
  /** Upgrades refused because --max-tunnels were open. */
  readonly refused: number
}

export interface TunnelOptions {
  readonly router: Router
  readonly dispatcher: Dispatcher
  readonly attempts: number
  readonly logger: Logger
  readonly hooks?: ForwardHooks | undefined
  readonly idleTimeoutMs: number
  readonly maxTunnels: number
}

/** Is this an upgrade we tunnel? Only WebSockets (RFC 6455 §4.1: a GET with Upgrade: websocket). */
export function isWebSocketUpgrade (req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade
  return req.method === 'GET' && typeof upgrade === 'string' && upgrade.trim().toLowerCase() === 'websocket'
}

/** A response to an upgrade request that is not tunnelled, written on the raw socket, then closed. */
export function responseOn (req: IncomingMessage, socket: Duplex): ServerResponse {
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket as never)
  const done = (): void => { socket.end() }
  res.once('finish', done)
  socket.once('close', () => { res.destroy() })
  return res
}

export class Tunnels {
  readonly #opts: TunnelOptions
  readonly #ctx: FailureContext
  readonly #open = new Set<Tunnel>()
  #opened = 0
  #refused = 0
  readonly #closed: Record<TunnelEnd, number> = { client: 0, target: 0, idle: 0, drain: 0, error: 0 }
  #bytesUp = 0
  #bytesDown = 0

  constructor (opts: TunnelOptions) {
    this.#opts = opts
    this.#ctx = { router: opts.router, attempts: opts.attempts, log: opts.logger, hooks: opts.hooks }
  }

  stats (): TunnelStats {
    return { open: this.#open.size, opened: this.#opened, closed: { ...this.#closed }, bytesUp: this.#bytesUp, bytesDown: this.#bytesDown, refused: this.#refused }
  }

  /** Open tunnels per target name. */
  perTarget (): Map<string, number> {
    const out = new Map<string, number>()
    for (const t of this.#open) if (t.target !== undefined) out.set(t.target.name, (out.get(t.target.name) ?? 0) + 1)
    return out
  }

  /**
   * Starts a tunnel for an upgrade request (already guarded); `headers` are the fields for the
   * target (hop-by-hop ones dropped: undici adds Connection and Upgrade itself).
   */
  open (req: IncomingMessage, socket: Duplex, head: Buffer, pool: Pool, pathFor: (t: LiveTarget) => string, headers: string[]): void {
    if (this.#open.size >= this.#opts.maxTunnels) {
      this.#refused++
      writeProblem(req, responseOn(req, socket), 'ZKPROXY_ERR_PROXY_TOO_MANY_TUNNELS', `${this.#opts.maxTunnels} tunnels are open`)
      return
    }
    const first = pool.pick()
    if (first === undefined) {
      writeProblem(req, responseOn(req, socket), 'ZKPROXY_ERR_PROXY_NO_TARGETS', this.#opts.router.hasView ? 'no live target is registered' : 'no view of the targets yet (waiting for ZooKeeper)')
      return
    }
    const tunnel = new Tunnel(this, req, socket, head, pool, pathFor, headers)
    this.#open.add(tunnel)
    this.#opened++
    tunnel.start(first)
  }

  /** Ends every open tunnel (the drain is over). */
  closeAll (): void {
    for (const t of [...this.#open]) t.close('drain')
  }

  get size (): number { return this.#open.size }

  // ---- for Tunnel ----
  get ctx (): FailureContext { return this.#ctx }
  get dispatcher (): Dispatcher { return this.#opts.dispatcher }
  get idleTimeoutMs (): number { return this.#opts.idleTimeoutMs }
  countUp (n: number): void { this.#bytesUp += n }
  countDown (n: number): void { this.#bytesDown += n }
  ended (t: Tunnel, why: TunnelEnd): void {
    if (this.#open.delete(t)) this.#closed[why]++
  }
}

class Tunnel {
  readonly #owner: Tunnels
  #req: IncomingMessage | undefined
  readonly #client: Duplex
  /** Bytes the client sent after its handshake; a view into a socket read buffer (64 KiB). */
  #head: Buffer | undefined
  readonly #pool: Pool
  readonly #pathFor: (t: LiveTarget) => string
  readonly #headers: string[]
  readonly #tries: AttemptLog = { n: 0, tried: undefined }
  target: LiveTarget | undefined
  #controller: Dispatcher.DispatchController | undefined
  #upstream: Duplex | undefined
  #ended = false
  #attempt = 0

  constructor (owner: Tunnels, req: IncomingMessage, client: Duplex, head: Buffer, pool: Pool, pathFor: (t: LiveTarget) => string, headers: string[]) {
    this.#owner = owner
    this.#req = req
    this.#client = client
    this.#head = head
    this.#pool = pool
    this.#pathFor = pathFor
    this.#headers = headers
    // Before the 101 too: a client that leaves during the handshake ends the tunnel.
    client.once('close', () => { this.close('client') })
    client.on('error', () => { this.close('client') })
  }

  start (t: LiveTarget): void {
    const ctx = this.#owner.ctx
    this.#tries.n++
    ctx.router.begin(t)
    this.target = t
    const attempt = ++this.#attempt
    const current = (): boolean => attempt === this.#attempt && !this.#ended
    this.#owner.dispatcher.dispatch({ origin: t.origin, path: this.#pathFor(t), method: 'GET', headers: this.#headers, upgrade: 'websocket' }, {
      onRequestStart: (controller) => {
        if (!current()) { controller.abort(new Error('tunnel given up')); return }
        this.#controller = controller
      },
      onRequestUpgrade: (_controller, statusCode, headers, socket) => {
        if (!current()) { socket.destroy(); return }
        this.#established(t, statusCode, headers as ResponseHeaders, socket)
      },
      onResponseStart: (controller, statusCode, headers) => {
        if (!current()) return
        // Not a 101: the target's answer goes to the client as a normal response.
        this.#refusedUpgrade(t, controller, statusCode, headers as ResponseHeaders)
      },
      onResponseData: (_controller, chunk) => { if (current()) this.#plain?.write(chunk) },
      onResponseEnd: () => { if (current()) this.#plain?.end() },
      onResponseError: (_controller, err) => { if (current()) this.#failed(t, err) }
    })
  }

  /** The client's response for a target that refused the upgrade. */
  #plain: ServerResponse | undefined

  #refusedUpgrade (t: LiveTarget, _controller: Dispatcher.DispatchController, status: number, headers: ResponseHeaders): void {
    const ctx = this.#owner.ctx
    ctx.router.succeeded(t)
    ctx.hooks?.onUpstreamResponse?.(t, status)
    const res = responseOn(this.#req!, this.#client)
    res.writeHead(status, downstreamFields(headers))
    this.#plain = res
  }

  #established (t: LiveTarget, status: number, headers: ResponseHeaders, upstream: Duplex): void {
    const ctx = this.#owner.ctx
    ctx.router.succeeded(t)
    ctx.hooks?.onUpstreamResponse?.(t, status)
    this.#upstream = upstream
    const client = this.#client
    // The 101 head: the target's fields, with Connection and Upgrade kept (they are the
    // handshake here, not hop-by-hop noise).
    const fields = downstreamFields(headers)
    let text = 'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n'
    for (let i = 0; i < fields.length; i += 2) text += `${fields[i]!}: ${fields[i + 1]!}\r\n`
    client.write(text + '\r\n')
    const head = this.#head
    if (head !== undefined && head.length > 0) upstream.write(Buffer.from(head))
    // An open tunnel may live for hours: it keeps nothing of its handshake. The head is a view
    // into a socket's read buffer, the request and undici's controller hold the whole request.
    this.#head = undefined
    this.#req = undefined
    this.#controller = undefined
    const owner = this.#owner
    upstream.on('data', (c: Buffer) => { owner.countDown(c.length) })
    client.on('data', (c: Buffer) => { owner.countUp(c.length) })
    upstream.pipe(client)
    client.pipe(upstream)
    upstream.once('close', () => { this.close('target') })
    upstream.on('error', () => { this.close('target') })
    client.once('end', () => { upstream.end() })
    upstream.once('end', () => { client.end() })
    // Silence both ways: the client socket's idle timer sees bytes in either direction.
    const idle = owner.idleTimeoutMs
    if (idle > 0 && 'setTimeout' in client) {
      (client as unknown as { setTimeout: (ms: number, fn: () => void) => void }).setTimeout(idle, () => { this.close('idle') })
    }
  }

  #failed (t: LiveTarget, err: Error): void {
    const ctx = this.#owner.ctx
    ctx.router.end(t)
    this.target = undefined
    if (this.#plain !== undefined) {
      // The target failed mid-way through a plain answer: cut the client.
      this.#client.destroy()
      this.close('error')
      return
    }
    const { stage, next } = attemptFailed(ctx, t, err, this.#tries, 'GET', true, false, this.#pool)
    if (next !== undefined) {
      this.start(next)
      return
    }
    ctx.log.debug({ target: t.name, stage, err }, 'upgrade failed')
    this.#finish('error')
    const req = this.#req!
    const res = responseOn(req, this.#client)
    if (stage === 'timeout') writeProblem(req, res, 'ZKPROXY_ERR_PROXY_UPSTREAM_TIMEOUT', `target ${t.name} did not answer in time`)
    else writeProblem(req, res, 'ZKPROXY_ERR_PROXY_UPSTREAM_FAILED', exhaustedMessage(this.#tries, ctx.attempts, t, err), { attempts: this.#tries.n })
  }

  /** Ends the tunnel once: both sockets closed, the target's in-flight count released. */
  close (why: TunnelEnd): void {
    if (this.#ended) return
    this.#finish(why)
    this.#controller?.abort(new Error(`tunnel closed (${why})`))
    this.#upstream?.destroy()
    this.#client.destroy()
  }

  #finish (why: TunnelEnd): void {
    if (this.#ended) return
    this.#ended = true
    const t = this.target
    if (t !== undefined) {
      this.target = undefined
      this.#owner.ctx.router.end(t)
    }
    this.#owner.ended(this, why)
  }
}

export { END_REASONS }
