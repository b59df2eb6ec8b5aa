// The public listener: node:http(s) with the one request path (request-path.ts) over an undici
// Agent with keep-alive pools per target. Nothing here reads ZooKeeper: targets come from the
// router's snapshot. fastify serves only the admin listener; on this one it would add a second
// request object, a reply and per-request hooks that the proxy does not use (README
// "Performance" has the measurement).
import { createServer, type Server } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { Socket } from 'node:net'
import { Agent } from 'undici'
import type { Logger } from 'pino'
import type { ProxyConfig } from '../config.js'
import type { Router } from './router.js'
import type { ForwardHooks } from './failover.js'
import type { CacheStage } from './cache-stage.js'
import { createRequestPath, type RequestPath } from './request-path.js'
import { Tunnels } from './tunnel.js'

/** The proxy's limits, taken from its config (src/config.ts documents each flag). */
export type ProxyLimits = Pick<ProxyConfig, 'attempts' | 'retryBodyLimitBytes' | 'bodyLimitBytes' | 'connectTimeoutMs' |
'headersTimeoutMs' | 'bodyTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs' | 'maxHeaderBytes' | 'maxConnections' |
'upstreamHost' | 'tunnelIdleTimeoutMs' | 'maxTunnels' | 'requestBufferBytes' | 'responseBufferBytes' | 'sendTimeoutMs' |
'upstreamConnections' | 'upstreamQueue' | 'upstreamQueueTimeoutMs' | 'maxRequestsPerClient'>

export interface ProxyServerOptions {
  readonly router: Router
  readonly logger: Logger
  readonly limits: ProxyLimits
  /** Where the access log goes, one line per request; absent: no access log. */
  readonly accessLog?: Logger | undefined
  readonly tls?: { readonly key: Buffer, readonly cert: Buffer }
  /** Extra CA for https:// targets (PEM). */
  readonly upstreamCa?: Buffer
  /** Absent with --cache-ttl 0. */
  readonly cache?: CacheStage
  readonly hooks?: ForwardHooks
}

export interface ProxyServer {
  readonly server: Server
  /** Listens; resolves with the listener's URL. */
  listen: (host: string, port: number) => Promise<string>
  /**
   * Stops taking connections and lets the requests in flight finish for up to `drainMs`; then
   * closes every connection left (their requests end, their upstream requests are cut).
   * Resolves true when everything finished within the drain.
   */
  close: (drainMs: number) => Promise<boolean>
  /** True once close() was called. */
  readonly closing: boolean
  readonly tunnels: Tunnels
  /** The request path's own counts: requests per client address, requests per target origin in undici. */
  readonly path: RequestPath
}

/** How often idle keep-alive connections are closed while draining. */
const DRAIN_SWEEP_MS = 50

export function createProxyServer (opts: ProxyServerOptions): ProxyServer {
  const { limits } = opts
  const tls = opts.tls
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
    // Bounded per target; the wait for one is bounded by the exchange (upstream-slots.ts).
    connections: limits.upstreamConnections,
    pipelining: 1,
    keepAliveTimeout: 4000,
    connect: { timeout: limits.connectTimeoutMs, ...(opts.upstreamCa === undefined ? {} : { ca: opts.upstreamCa }) },
    headersTimeout: limits.headersTimeoutMs,
    bodyTimeout: limits.bodyTimeoutMs
  })
  let closing = false
  const tunnels = new Tunnels({
    router: opts.router,
    dispatcher: agent,
    attempts: limits.attempts,
    logger: opts.logger,
    hooks: opts.hooks,
    idleTimeoutMs: limits.tunnelIdleTimeoutMs,
    maxTunnels: limits.maxTunnels
  })
  const path = createRequestPath({
    router: opts.router,
    dispatcher: agent,
    attempts: limits.attempts,
    proto: tls === undefined ? 'http' : 'https',
    logger: opts.logger,
    limits,
    hooks: opts.hooks,
    cache: opts.cache,
    accessLog: opts.accessLog,
    closing: () => closing,
    passHost: limits.upstreamHost === 'client',
    tunnels
  })
  const server = tls === undefined
    ? createServer(serverOptions, path.request)
    : createTlsServer({ ...serverOptions, key: tls.key, cert: tls.cert }, path.request)
  server.on('upgrade', path.upgrade)
  // The client's address is read once, as the connection is accepted: net.Socket caches it, so
  // it is still there for a request whose client reset right after sending it (X-Forwarded-For).
  server.on(tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => { void socket.remoteAddress })
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections

  const listen = async (host: string, port: number): Promise<string> => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port }, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const a = server.address()
    if (a === null || typeof a === 'string') throw new Error('listener has no address')
    const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address
    return `${tls === undefined ? 'http' : 'https'}://${shown}:${a.port}`
  }

  let closed: Promise<boolean> | undefined
  const close = async (drainMs: number): Promise<boolean> => {
    closed ??= (async () => {
      closing = true
      const done = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      // Connections that go idle during the drain are closed as they do (a keep-alive client
      // would otherwise hold one until --keep-alive-timeout-ms).
      const sweep = setInterval(() => { server.closeIdleConnections() }, DRAIN_SWEEP_MS)
      server.closeIdleConnections()
      let timer: NodeJS.Timeout | undefined
      // Open tunnels keep their sockets, so `done` also waits for them to end on their own.
      const drained = await Promise.race([
        done.then(() => true),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(false) }, drainMs) })
      ])
      clearTimeout(timer)
      clearInterval(sweep)
      if (!drained) {
        opts.logger.warn({ drainMs, tunnels: tunnels.size }, 'drain period over; closing remaining connections and tunnels')
        // Their requests end (connection.ts), which cuts their upstream requests.
        tunnels.closeAll()
        server.closeAllConnections()
        await done
      }
      // Every request has ended by now; anything undici still holds is idle or being cut.
      await agent.destroy()
      return drained
    })()
    return await closed
  }

  return {
    server,
    listen,
    close,
    tunnels,
    path,
    get closing () { return closing }
  }
}
