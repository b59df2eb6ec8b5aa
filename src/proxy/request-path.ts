// The one request path of the public listener. Every request, whatever its method, body or
// logging, goes through the same stages, each a small module with one job, each calling only the
// next one:
//
//   guard (request-guard.ts) → connection (connection.ts: its life and its turn)
//     → cache stage (cache-stage.ts; absent with --cache-ttl 0) → body (request-body.ts)
//     → balance (router.ts) → exchange (exchange.ts, undici's dispatcher) → the client
//
// The access log is a line written when the request ends, not a different path.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import type { Router } from './router.js'
import type { ForwardHooks } from './failover.js'
import type { CacheStage } from './cache-stage.js'
import { checkRequest, normalizeRequestTarget } from './request-guard.js'
import { Connection, type RequestLife } from './connection.js'
import { gatherBody, planBody, readBody, streamBody, type BodyLimits } from './request-body.js'
import { Exchange, type ExchangeContext, type ExchangeLimits, type RequestBody, type ResponseRecorder } from './exchange.js'
import { UpstreamSlots } from './upstream-slots.js'
import { ClientLimit } from './client-limit.js'
import { upstreamHeaderList, upstreamTarget } from './headers.js'
import { noTargetsMessage, writeProblem } from './answers.js'
import { isWebSocketUpgrade, responseOn, type Tunnels } from './tunnel.js'

/** Methods forwarded. TRACE is not: it would echo credentials a browser attached (cross-site tracing). */
const FORWARDED_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])
const ALLOW = ['allow', [...FORWARDED_METHODS].join(', ')]
const CLOSE = ['connection', 'close']
const RETRY_SOON = ['retry-after', '1']
/**
 * `OPTIONS *` (RFC 9110 §9.3.7) asks about the server, not a resource. undici refuses to send the
 * asterisk-form, and which target would answer for "the server" is ours to say: the proxy
 * answers it itself, with the methods it forwards.
 */
const ASTERISK_ANSWER = ['allow', ALLOW[1]!, 'content-length', '0']

/** The limits of the request path (src/config.ts documents each flag). */
export type PathLimits = BodyLimits & ExchangeLimits & { readonly maxRequestsPerClient: number }

export interface RequestPathOptions {
  readonly router: Router
  readonly dispatcher: Dispatcher
  readonly attempts: number
  readonly proto: 'http' | 'https'
  readonly logger: Logger
  readonly limits: PathLimits
  readonly hooks?: ForwardHooks | undefined
  readonly cache?: CacheStage | undefined
  /** Where one line per request goes, written when it ends; absent: no access log. */
  readonly accessLog?: Logger | undefined
  /** True once the listener is draining: new requests on open connections get 503. */
  readonly closing: () => boolean
  /** Send the client's Host to the target (else the target's own host:port). */
  readonly passHost: boolean
  /** WebSocket tunnels. */
  readonly tunnels: Tunnels
}

export interface RequestPath {
  /** Requests counted per client address (--max-requests-per-client). */
  readonly clients: ClientLimit
  /** Requests in undici's hands per target origin. */
  readonly slots: UpstreamSlots
  /** node:http's 'request' event. */
  readonly request: (req: IncomingMessage, res: ServerResponse) => void
  /** node:http's 'upgrade' event: WebSockets are tunnelled, other upgrades answered as plain requests. */
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void
}

export function createRequestPath (opts: RequestPathOptions): RequestPath {
  const { router, proto, hooks, cache, limits, closing } = opts
  const log = opts.logger
  const slots = new UpstreamSlots()
  const clients = new ClientLimit(limits.maxRequestsPerClient)
  const ctx: ExchangeContext = { router, dispatcher: opts.dispatcher, attempts: opts.attempts, log, hooks, limits, slots }
  const trust = hooks?.trustForwarded
  const accessLog = opts.accessLog
  const timed = hooks?.onComplete !== undefined || accessLog !== undefined

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = timed ? performance.now() : 0
    // Read when the connection was accepted (server.ts), and cached by the socket since: a
    // client that resets right after sending has no peer address any more by now.
    const client = req.socket.remoteAddress ?? ''
    if (client === '') {
      // Reset before even its address could be read: gone, and nothing may reach a target with
      // an X-Forwarded-For that names nobody.
      req.socket.destroy()
      return
    }

    // ---- guard ----
    const refuse = (code: Parameters<typeof writeProblem>[2], message: string | undefined, fields: readonly string[]): void => {
      // Answered before the connection took the request in: logged when written.
      if (accessLog !== undefined) res.once('finish', () => { logRequest(accessLog, req, res, client, startedAt, false, undefined) })
      writeProblem(req, res, code, message, undefined, fields)
    }
    const bad = checkRequest(req)
    if (bad !== undefined) {
      // Ambiguous framing: never reuse this connection.
      refuse(bad.code, bad.message, CLOSE)
      return
    }
    const method = req.method ?? ''
    if (!FORWARDED_METHODS.has(method)) {
      refuse('ZKPROXY_ERR_PROXY_METHOD_NOT_ALLOWED', `${method} is not forwarded`, ALLOW)
      return
    }
    if (closing()) {
      refuse('ZKPROXY_ERR_PROXY_SHUTTING_DOWN', undefined, CLOSE)
      return
    }
    const url = normalizeRequestTarget(req.url ?? '/')
    if (url === '*') {
      if (method === 'OPTIONS') res.writeHead(200, ASTERISK_ANSWER).end()
      else writeProblem(req, res, 'ZKPROXY_ERR_PROXY_BAD_REQUEST', 'the asterisk-form request-target is only for OPTIONS (RFC 9112 §3.2.4)')
      return
    }
    // A fresh hit on a connection with nothing before it is answered here and now: it holds no
    // target, no upstream connection and nothing that outlives this call, so it needs no turn,
    // no life and no place under the per-address cap. (With an access log it takes the way
    // below, where its line is written when it ends.)
    const looked = cache !== undefined && accessLog === undefined && Connection.idle(req.socket)
    if (looked && cache.answerFresh(req, res)) return
    // One address may not take what everyone shares: its requests in the proxy are capped.
    if (!clients.enter(client)) {
      writeProblem(req, res, 'ZKPROXY_ERR_PROXY_TOO_MANY_REQUESTS', `more than ${limits.maxRequestsPerClient} requests at once from one address`, undefined, RETRY_SOON)
      return
    }
    let forwardedTo: Exchange | undefined

    // ---- balance and exchange (the cache stage's next stage) ----
    const send = (life: RequestLife, recorder: ResponseRecorder | undefined, body: RequestBody): void => {
      // ---- route: the pool of the Host and path (routes declared by the targets) ----
      const pool = router.pool(req.headers.host, url)
      if (pool === undefined) {
        writeProblem(req, res, 'ZKPROXY_ERR_PROXY_NO_ROUTE', `no route for ${req.headers.host ?? '(no Host)'}${url.split('?')[0]!}`)
        return
      }
      const first = pool.pick()
      if (first === undefined) {
        if (recorder?.failed(503) !== true) writeProblem(req, res, 'ZKPROXY_ERR_PROXY_NO_TARGETS', noTargetsMessage(router.hasView))
        return
      }
      const exchange = new Exchange(ctx, req, res, {
        method,
        pool,
        pathFor: (t) => upstreamTarget(pool.upstreamPath(t, url)),
        headers: upstreamHeaderList(req.headers, client, proto, trust?.(client) === true, opts.passHost),
        body,
        recorder,
        startedAt
      })
      forwardedTo = exchange
      life.onEnd((gone) => { exchange.end(gone) })
      exchange.start(first)
    }

    // ---- body ----
    const forward = (life: RequestLife, recorder: ResponseRecorder | undefined): void => {
      const plan = planBody(req, limits)
      switch (plan.kind) {
        case 'none': send(life, recorder, undefined); return
        case 'stream': send(life, recorder, streamBody(req, limits)); return
        case 'gather': gatherBody(req, limits, (body) => { if (body !== undefined) send(life, recorder, body) }); return
        case 'too-large': writeProblem(req, res, 'ZKPROXY_ERR_PROXY_BODY_TOO_LARGE', `limit is ${limits.bodyLimitBytes} bytes`); return
        case 'buffer':
          // Read whole before a target is chosen: a slow upload holds no upstream connection.
          readBody(req, plan.length, (body) => { if (body !== undefined) send(life, recorder, body) })
      }
    }

    // ---- connection: the request's life, and its turn among pipelined ones ----
    const life = Connection.of(req.socket).enter(req, res, (life) => {
      // ---- cache ----
      if (cache === undefined) forward(life, undefined)
      else cache.handle(req, res, (recorder) => { forward(life, recorder) }, looked)
    })
    life.onEnd(() => { clients.leave(client) })
    if (accessLog !== undefined) life.onEnd((gone) => { logRequest(accessLog, req, res, client, startedAt, gone, forwardedTo?.target?.name) })
  }

  const request = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      handle(req, res)
    } catch (err) {
      // A bug must cost this request only: an answer for it, a log line for us.
      log.error({ err, method: req.method, url: req.url }, 'request failed')
      writeProblem(req, res, 'ZKPROXY_ERR_PROXY_INTERNAL', undefined, undefined, CLOSE)
    }
  }

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Errors on the raw socket are the client's business; without a listener they would crash us.
    socket.on('error', () => { socket.destroy() })
    if (!isWebSocketUpgrade(req)) {
      // h2c and any other upgrade: never tunnelled, answered as a plain request without it.
      if (head.length > 0) socket.unshift(head)
      request(req, responseOn(req, socket))
      return
    }
    const res = (): ServerResponse => responseOn(req, socket)
    try {
      const bad = checkRequest(req)
      if (bad !== undefined) { writeProblem(req, res(), bad.code, bad.message, undefined, CLOSE); return }
      if (closing()) { writeProblem(req, res(), 'ZKPROXY_ERR_PROXY_SHUTTING_DOWN', undefined, undefined, CLOSE); return }
      const client = req.socket.remoteAddress ?? ''
      if (client === '') { socket.destroy(); return }
      const headers = upstreamHeaderList(req.headers, client, proto, trust?.(client) === true, opts.passHost)
      const url = normalizeRequestTarget(req.url ?? '/')
      const pool = router.pool(req.headers.host, url)
      if (pool === undefined) { writeProblem(req, res(), 'ZKPROXY_ERR_PROXY_NO_ROUTE', `no route for ${req.headers.host ?? '(no Host)'}`, undefined, CLOSE); return }
      opts.tunnels.open(req, socket, head, pool, (t) => upstreamTarget(pool.upstreamPath(t, url)), headers)
    } catch (err) {
      log.error({ err, url: req.url }, 'upgrade failed')
      socket.destroy()
    }
  }

  return { request, upgrade, clients, slots }
}

function logRequest (log: Logger, req: IncomingMessage, res: ServerResponse, client: string, startedAt: number, gone: boolean, target: string | undefined): void {
  log.info({
    req: { method: req.method, url: req.url, remoteAddress: client },
    res: { statusCode: res.statusCode },
    target,
    aborted: gone || undefined,
    responseTime: performance.now() - startedAt
  }, 'request completed')
}
