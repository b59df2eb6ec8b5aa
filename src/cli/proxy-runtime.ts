// The proxy process's parts, wired (config → ZooKeeper session → registry → router → public
// listener), without signals or exits: `zkproxy proxy` runs it, and the integration tests
// start the very same wiring in-process. It listens at once, with or without ZooKeeper: until
// the first view of the targets it answers 503.
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import type { FastifyInstance } from 'fastify'
import type { ProxyConfig } from '../config.js'
import { createError } from '../errors.js'
import { EphemeralNode, ZkSession } from '../zk/index.js'
import { TargetSet, type Snapshot } from '../registry/target-set.js'
import { RequestCounter } from '../registry/request-counter.js'
import { Router } from '../proxy/router.js'
import { buildProxyApp } from '../proxy/app.js'

export interface ProxyRuntime {
  readonly url: string
  readonly id: string
  readonly app: FastifyInstance
  readonly session: ZkSession
  readonly router: Router
  readonly counter: RequestCounter
  readonly targets: TargetSet
  /** Graceful stop: stop accepting, drain (bounded by drainMs), flush counts, leave, close. */
  stop (): Promise<void>
}

export async function startProxy (cfg: ProxyConfig, log: Logger): Promise<ProxyRuntime> {
  const session = new ZkSession({ connect: cfg.zk, sessionTimeoutMs: cfg.sessionTimeoutMs, logger: log, auth: cfg.zkAuth })
  const counter = new RequestCounter({ session, targetsPath: cfg.targetsPath, flushMs: cfg.countFlushMs, logger: log })
  const router = new Router({
    // counter.update() runs before router.update() for every snapshot, so the cell exists.
    countFor: (t) => counter.cell(t.name) ?? (() => { throw new Error(`no count cell for ${t.name}`) })()
  })
  const targets = new TargetSet({ session, targetsPath: cfg.targetsPath, logger: log })
  targets.on('snapshot', (snap: Snapshot) => {
    counter.update(snap.targets)
    router.update(snap.targets)
  })

  const app = await buildProxyApp({ router, logger: log, limits: cfg, accessLog: cfg.accessLog })
  const url = await listen(app, cfg)
  session.start()
  counter.start()
  targets.start()

  const id = cfg.id ?? `${hostname()}:${new URL(url).port}`
  const announce = new EphemeralNode(session, `${cfg.proxiesPath}/${id}`, {
    logger: log,
    data: () => Buffer.from(JSON.stringify({ url, admin: null, pid: process.pid, startedAt: new Date().toISOString() }))
  }).start()
  log.info({ url, id, zk: cfg.zk }, 'proxy listening')

  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    const closing = app.close()
    const drained = await Promise.race([closing.then(() => true), delay(cfg.drainMs).then(() => false)])
    if (!drained) log.warn({ drainMs: cfg.drainMs }, 'drain period over; closing remaining connections')
    await counter.stop()
    await announce.stop()
    targets.close()
    await session.close()
  }
  return { url, id, app, session, router, counter, targets, stop: async () => { stopping ??= stop(); await stopping } }
}

async function listen (app: FastifyInstance, cfg: ProxyConfig): Promise<string> {
  try {
    await app.listen({ host: cfg.listen.host, port: cfg.listen.port })
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw createError('ZKPROXY_ERR_REPLICA_LISTEN', `--listen ${cfg.listen.host}:${cfg.listen.port}: ${code}`, err)
    }
    throw err
  }
  const a = app.server.address()
  if (a === null || typeof a === 'string') throw new Error('listener has no address')
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address
  return `http://${host}:${a.port}`
}

async function delay (ms: number): Promise<void> {
  await new Promise<void>(resolve => setTimeout(resolve, ms).unref())
}
