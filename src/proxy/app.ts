// The public listener: fastify + @fastify/reply-from over an undici Agent with keep-alive
// pools per target. Every route is the proxy: one catch-all handler guards the request shape,
// then either answers from the cache or forwards with failover. No hook runs per request that
// is not needed, and nothing here reads ZooKeeper: targets come from the router's snapshot.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import replyFrom from '@fastify/reply-from'
import { Agent } from 'undici'
import type { Logger } from 'pino'
import type { ProxyConfig } from '../config.js'
import type { Router } from './router.js'
import { createForwarder, failureStage, type ForwardHooks, type Respond } from './forward.js'
import { checkRequest, normalizeRequestTarget } from './request-guard.js'
import { bodyParser } from './body.js'
import { sendProblem } from './answers.js'
import { createFastForwarder, type FastForward } from './fast-forward.js'

/** The proxy's limits, taken from its config (src/config.ts documents each flag). */
export type ProxyLimits = Pick<ProxyConfig, 'attempts' | 'retryBodyLimitBytes' | 'bodyLimitBytes' | 'connectTimeoutMs' |
'headersTimeoutMs' | 'bodyTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs' | 'maxHeaderBytes' | 'maxConnections'>

/** A cache in front of the forwarder (src/proxy/cache-layer.ts); absent when --cache-ttl 0. */
export interface CacheFront {
  handle (request: FastifyRequest, reply: FastifyReply, forward: (respond?: Respond) => void): void
  /** Answers a fresh hit from Node's raw request before fastify routing; false: not handled. */
  tryAnswer? (req: IncomingMessage, res: ServerResponse): boolean
  /** Takes a GET miss from Node's raw request and forwards it with `forward`; false: not handled. */
  tryMiss? (req: IncomingMessage, res: ServerResponse, forward: FastForward): boolean
}

export interface ProxyAppOptions {
  readonly router: Router
  readonly logger: Logger
  readonly limits: ProxyLimits
  readonly accessLog?: boolean
  readonly tls?: { readonly key: Buffer, readonly cert: Buffer }
  /** Extra CA for https:// targets (PEM). */
  readonly upstreamCa?: Buffer
  readonly cache?: CacheFront
  readonly hooks?: ForwardHooks
}

/**
 * The common cases are answered before fastify routes the request, from Node's raw request:
 * fresh cache hits (cache-layer.ts), and plain GET/HEAD forwarding (fast-forward.ts): every
 * one with the cache off; with the cache on, misses and no-cache requests, through the cache
 * layer (which stores and coalesces them). They need none of the routing, per-request logger or reply machinery,
 * and skipping it brings hits close to a bare node:http server sending the same bytes and
 * forwarding close to undici's own cost (bench/run.ts). Only requests the full path would
 * accept unchanged qualify: origin-form URL of plain characters, no shape the request guard
 * refuses, no body, no Upgrade or Expect; with --access-log every request takes the full path
 * so that each one is logged, and while closing the full path answers 503 like fastify does.
 */
/**
 * Request-targets the raw path passes on byte for byte: RFC 3986 path and query characters
 * only. Anything else (non-ASCII, `"<>{}|^` and the like) takes the fastify path, where
 * reply-from percent-encodes it through WHATWG URL, so the two paths never send one request
 * two different ways.
 */
const PLAIN_TARGET = /^[\w\-.~!$&'()*+,;=:@/?%]*$/

function fastPath (handler: (req: IncomingMessage, res: ServerResponse) => void, opts: ProxyAppOptions,
  forward: FastForward, closing: () => boolean): (req: IncomingMessage, res: ServerResponse) => void {
  if (opts.accessLog === true) return handler
  const cache = opts.cache
  const answer = cache?.tryAnswer?.bind(cache)
  // With the cache on, a miss goes upstream through the cache layer; without it, straight.
  const send = cache === undefined
    ? forward
    : cache.tryMiss === undefined ? undefined : (req: IncomingMessage, res: ServerResponse) => cache.tryMiss!(req, res, forward)
  return (req, res) => {
    const url = req.url
    // Cheapest tests first: only GET/HEAD qualify, and the guard's header scan runs only then.
    const method = req.method
    if ((method === 'GET' || method === 'HEAD') && url !== undefined && url.charCodeAt(0) === 47 && url.charCodeAt(1) !== 47 &&
      checkRequest(req) === undefined) {
      if (answer?.(req, res) === true) return
      const h = req.headers
      if (send !== undefined && PLAIN_TARGET.test(url) && h['content-length'] === undefined && h['transfer-encoding'] === undefined &&
        h.upgrade === undefined && h.expect === undefined && !closing() && send(req, res)) return
    }
    handler(req, res)
  }
}

export async function buildProxyApp (opts: ProxyAppOptions): Promise<FastifyInstance> {
  const { limits, logger } = opts
  const proto = opts.tls === undefined ? 'http' : 'https'
  // Node's own limits answer first: 431 for oversized headers, 408 for slow requests
  // (slowloris: headersTimeout caps the time to send the header section), 400 for framing.
  const serverOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: Math.min(limits.requestTimeoutMs, 20_000),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requireHostHeader: true,
    joinDuplicateHeaders: false,
    // Node enforces headersTimeout/requestTimeout only when it sweeps its connections, every
    // 30 s by default: a slowloris client would get up to 30 s more than --request-timeout-ms.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.requestTimeoutMs / 4)))
  }
  const agent = new Agent({
    connections: 256,
    pipelining: 1,
    keepAliveTimeout: 4000,
    connect: { timeout: limits.connectTimeoutMs, ...(opts.upstreamCa === undefined ? {} : { ca: opts.upstreamCa }) },
    headersTimeout: limits.headersTimeoutMs,
    bodyTimeout: limits.bodyTimeoutMs
  })
  const fastForward = createFastForwarder({ router: opts.router, dispatcher: agent, attempts: limits.attempts, proto, logger, hooks: opts.hooks })
  let closing = false
  let server: Server | undefined
  const app = fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: opts.accessLog !== true }),
    bodyLimit: limits.bodyLimitBytes,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // The wildcard path is a route parameter: long URLs must still match the catch-all route.
    routerOptions: { maxParamLength: 64 * 1024 },
    rewriteUrl: (req) => normalizeRequestTarget(req.url ?? '/'),
    serverFactory: (handler) => {
      const h = fastPath(handler as (req: IncomingMessage, res: ServerResponse) => void, opts, fastForward, () => closing)
      server = opts.tls === undefined
        ? createServer(serverOptions, h)
        : createTlsServer({ ...serverOptions, key: opts.tls.key, cert: opts.tls.cert }, h)
      if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections
      return server
    }
  })

  await app.register(replyFrom, { undici: agent as never, disableRequestLogging: true, disableCache: true })
  app.addHook('preClose', (done) => { closing = true; done() })
  app.addHook('onClose', async () => { await agent.close() })

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', bodyParser({ retryBodyLimitBytes: limits.retryBodyLimitBytes, bodyLimitBytes: limits.bodyLimitBytes }))

  app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, _request, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (status === 413) { sendProblem(reply, 'ZKPROXY_ERR_PROXY_BODY_TOO_LARGE', err.message); return }
    // The target's response stream failed before its first byte reached the client (its head
    // came, its body did not): the target's fault, not ours.
    const stage = failureStage(err)
    if (stage === 'timeout') { sendProblem(reply, 'ZKPROXY_ERR_PROXY_UPSTREAM_TIMEOUT', 'the target stopped sending its response'); return }
    if (stage !== 'other') { sendProblem(reply, 'ZKPROXY_ERR_PROXY_UPSTREAM_FAILED', `the target failed while sending its response: ${err.message}`); return }
    if (status >= 500) {
      logger.error({ err }, 'request failed')
      sendProblem(reply, 'ZKPROXY_ERR_PROXY_INTERNAL')
      return
    }
    // Other 4xx from fastify itself (e.g. a malformed body framing it detected).
    sendProblem(reply, 'ZKPROXY_ERR_PROXY_BAD_REQUEST', err.message)
  })

  const forward = createForwarder({ router: opts.router, attempts: limits.attempts, proto, logger, ...(opts.hooks === undefined ? {} : { hooks: opts.hooks }) })
  const cache = opts.cache

  app.route({
    // TRACE is not forwarded: it would echo credentials a browser attached (cross-site tracing).
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: '/*',
    handler: (request, reply) => {
      const bad = checkRequest(request.raw)
      if (bad !== undefined) {
        // Ambiguous framing: never reuse this connection.
        reply.header('connection', 'close')
        sendProblem(reply, bad.code, bad.message)
        return reply
      }
      if (cache !== undefined) cache.handle(request, reply, (respond) => { forward(request, reply, respond) })
      else forward(request, reply)
      return reply
    }
  })
  return app as unknown as FastifyInstance
}
