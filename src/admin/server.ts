// The admin listener: its own fastify instance on its own address (loopback by default),
// never routes on the public listener, where every path belongs to the backends: health,
// targets, routes (pools), Prometheus metrics, a live dashboard fed by Server-Sent Events, a
// fleet-wide cache purge (POST /purge), and the controls (eject, drain a target on this proxy:
// controls.ts).
import type { ServerResponse } from 'node:http'
import fastify, { LogController } from 'fastify'
import type { Logger } from 'pino'
import type { HostPort } from '../config.js'
import type { Snapshot } from '../registry/target-set.js'
import { listenError } from '../errors.js'
import type { ProxyMetrics } from './metrics.js'
import type { RuntimeView } from './runtime-view.js'
import { dashboardState, health, poolRows, targetRows } from './state.js'
import { dashboardPage } from './dashboard.js'
import { purgeFilterProblem } from '../purge-filter.js'
import { ACTIONS, control } from './controls.js'
import { RecentActivity } from './recent.js'

export interface AdminOptions {
  readonly listen: HostPort
  readonly logger: Logger
  readonly runtime: RuntimeView
  readonly metrics: ProxyMetrics
  /** With --workers N: the worker processes, served as GET /workers. */
  readonly workers?: () => unknown
  /** How often open dashboards get a fresh state besides on changes (default 500 ms). */
  readonly pushIntervalMs?: number
}

export interface AdminServer {
  readonly url: string
  close (): Promise<void>
}

// A dashboard that cannot keep up (a stopped tab behind a slow link) is dropped, not buffered.
const MAX_BUFFERED_BYTES = 1024 * 1024

export async function startAdmin (opts: AdminOptions): Promise<AdminServer> {
  const { runtime, metrics } = opts
  // fastify's own info lines ("Server listening at ...") would repeat the proxy's single
  // `proxy listening` line, which carries the admin URL: only warnings and errors from here.
  const log = opts.logger.child({ component: 'admin' }, { level: opts.logger.levelVal >= 40 ? opts.logger.level : 'warn' })
  const startedAt = new Date().toISOString()
  const page = dashboardPage()
  const recent = new RecentActivity(runtime).start()
  const app = fastify({
    loggerInstance: log,
    // Scrapes every few seconds and a dashboard's requests are not news: no per-request lines.
    logController: new LogController({ disableRequestLogging: true }),
    // SSE streams never end on their own; closing must not wait for them.
    forceCloseConnections: true
  })

  app.addHook('onRequest', async (_request, reply) => {
    // Everything here is a live reading: no cache anywhere may keep it.
    reply.header('cache-control', 'no-store')
    reply.header('x-content-type-options', 'nosniff')
  })

  app.get('/healthz', async (_request, reply) => {
    const h = health(runtime)
    return await reply.code(h.statusCode).send(h.body)
  })
  // The one write: a fleet-wide cache purge, published through ZooKeeper so every proxy (this
  // one included) applies it. Body: {"host"?: "...", "prefix"?: "/..."}; none purges everything.
  app.post('/purge', async (request, reply) => {
    const purge = runtime.purge
    if (purge === undefined || runtime.cache === undefined) return await reply.code(409).send({ error: 'cache_off', message: 'this proxy has no cache (--cache-ttl 0)' })
    // JSON only: a browser cannot send application/json cross-site without a CORS preflight
    // (which this listener never grants), so a web page cannot make a visitor's browser purge.
    if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
      return await reply.code(415).send({ error: 'bad_purge', message: 'send a JSON body: {} for everything, or {"host": "...", "prefix": "/..."}' })
    }
    const body: unknown = request.body
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return await reply.code(400).send({ error: 'bad_purge', message: 'the body must be a JSON object' })
    const { host, prefix } = body as Record<string, unknown>
    if ((host !== undefined && typeof host !== 'string') || (prefix !== undefined && typeof prefix !== 'string')) {
      return await reply.code(400).send({ error: 'bad_purge', message: 'host and prefix must be strings' })
    }
    const filter = { ...(host === undefined ? {} : { host }), ...(prefix === undefined ? {} : { prefix }) }
    const problem = purgeFilterProblem(filter)
    if (problem !== undefined) return await reply.code(400).send({ error: 'bad_purge', message: problem })
    try {
      const sequence = await purge(filter)
      return await reply.code(202).send({ sequence, ...filter })
    } catch (err) {
      log.warn({ err }, 'purge not published')
      return await reply.code(503).send({ error: 'zookeeper_unavailable', message: 'the purge could not be published to ZooKeeper; try again' })
    }
  })
  app.get('/targets', async () => targetRows(runtime))
  app.get('/routes', async () => poolRows(runtime))
  const workers = opts.workers
  if (workers !== undefined) app.get('/workers', async () => workers())
  app.get('/state', async () => await dashboardState(runtime, metrics, recent, startedAt))
  for (const action of ACTIONS) {
    app.post<{ Params: { name: string }, Querystring: Record<string, unknown> }>(`/targets/:name/${action}`, async (request, reply) => {
      const a = control(runtime, log, action, request.params.name, request.headers, request.query)
      return await reply.code(a.statusCode).send(a.body)
    })
  }
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.render()
    return await reply.type(metrics.contentType).send(text)
  })
  app.get('/', async (_request, reply) => {
    return await reply.type('text/html; charset=utf-8')
      // The page runs only its own inline script and style (pinned by hash) and talks only to us.
      .header('content-security-policy', page.csp)
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .send(page.html)
  })

  // ---- Server-Sent Events: the whole state on connect, on every change, and every interval ----
  const clients = new Set<ServerResponse>()
  let timer: NodeJS.Timeout | undefined
  let building = false
  let again = false

  const pushAll = async (): Promise<void> => {
    if (building) { again = true; return }
    building = true
    try {
      do {
        again = false
        if (clients.size === 0) return
        const frame = `data: ${JSON.stringify(await dashboardState(runtime, metrics, recent, startedAt))}\n\n`
        for (const res of clients) {
          if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy()
          else res.write(frame)
        }
      } while (again)
    } finally {
      building = false
    }
  }
  const push = (): void => {
    void pushAll().catch((err: unknown) => { log.warn({ err }, 'dashboard update failed') })
  }
  const onSnapshot = (_s: Snapshot): void => { push() }
  const onSessionState = (): void => { push() }
  runtime.targets.on('snapshot', onSnapshot)
  runtime.session.on('state', onSessionState)

  app.get('/events', (request, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Proxies in front of the admin port (nginx) must not buffer the stream.
      'x-accel-buffering': 'no'
    })
    // A dropped stream is retried by the browser after this many ms.
    res.write('retry: 1000\n\n')
    request.raw.socket.setNoDelay(true)
    clients.add(res)
    res.once('close', () => {
      clients.delete(res)
      if (clients.size === 0) { clearInterval(timer); timer = undefined }
    })
    if (timer === undefined) {
      timer = setInterval(push, opts.pushIntervalMs ?? 500)
      timer.unref()
    }
    push()
  })

  app.addHook('preClose', async () => {
    runtime.targets.off('snapshot', onSnapshot)
    runtime.session.off('state', onSessionState)
    recent.stop()
    clearInterval(timer)
    timer = undefined
    for (const res of clients) res.end()
    clients.clear()
  })

  try {
    await app.listen({ host: opts.listen.host, port: opts.listen.port })
  } catch (err) {
    recent.stop()
    await app.close()
    throw listenError(err, 'ZKPROXY_ERR_PROXY_LISTEN', '--admin', opts.listen.host, opts.listen.port)
  }
  const a = app.server.address()
  if (a === null || typeof a === 'string') throw new Error('admin listener has no address')
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
  return { url, close: async () => { await app.close() } }
}
