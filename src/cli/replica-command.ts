// `zkproxy replica`: serve a static folder and register it as a target.
// Start-up order: validate, listen, then register — a target is never visible before it
// answers, and a start-up failure (bad folder, port in use) prints one line and nothing else.
// Shutdown order: deregister, drain, close — proxies stop sending before we stop answering.
import { fstatSync, type Stats } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { createServer } from 'node:net'
import { networkInterfaces } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { replicaConfig, type ReplicaConfig } from '../config.js'
import { createError, listenError } from '../errors.js'
import { defaultTargetName } from '../registry/codec.js'
import { Registration } from '../registry/registration.js'
import { nodeAcls } from '../registry/acl-policy.js'
import { contentRevision } from '../registry/revision.js'
import { createStaticServer } from '../replica/static-server.js'
import { ZkSession } from '../zk/index.js'
import type { CliContext } from './lifecycle.js'
import { bounded } from './time.js'
import { exitOnAuthFailure } from './zk-auth.js'

// After the drain, requests still running get this long before their connections are cut.
const CLOSE_GRACE_MS = 1000
// Deleting the znode normally takes a round trip; a hung ZooKeeper must not hold up shutdown
// (closing the session at the end removes the node anyway, or its expiry does).
const DEREGISTER_BOUND_MS = 5000
// Port 0: we pick a free port first (the name and x-served-by need it before the app is
// built); another process may take it in between, so try a few.
const PICK_PORT_ATTEMPTS = 3

export async function run (raw: Record<string, unknown>, ctx: CliContext): Promise<void> {
  const config = replicaConfig(raw)
  const log = ctx.logger
  const startedAt = new Date()
  await checkDir(config.dir)
  const rev = await contentRevision({ revision: config.revision, dir: config.dir })
  const advertised = advertisedHost(config.host)

  let draining = false
  const { app, port, name } = await listenStatic(config, advertised, log)
  // While draining, every answer asks the client to close its connection, so keep-alive
  // clients move on before the server closes under them.
  app.server.prependListener('request', (_req: unknown, res: ServerResponse) => {
    if (draining) res.setHeader('connection', 'close')
  })
  const url = `http://${advertised.includes(':') ? `[${advertised}]` : advertised}:${port}`

  const session = new ZkSession({ connect: config.zk, sessionTimeoutMs: config.sessionTimeoutMs, logger: log, auth: config.zkAuth })
  let registration: Registration
  try {
    const acls = config.zkAcl === undefined ? undefined : nodeAcls(config.zkAcl)
    registration = new Registration({
      session, targetsPath: config.targetsPath, cacheAgePath: config.cacheAgePath, name, url, revision: rev.revision, startedAt, routes: config.routes, stripPrefix: config.stripPrefix, logger: log, acls
    })
  } catch (err) {
    await app.close()
    throw err
  }
  log.info({ url, name, dir: config.dir, revision: rev.revision, revisionSource: rev.source, routes: registration.routes, pid: process.pid }, 'replica listening')
  session.start()
  exitOnAuthFailure(session, ctx, config.zkAuth.map(a => a.scheme))
  registration.start()

  if (config.exitWithParent) watchParent(() => { process.kill(process.pid, 'SIGTERM') })

  ctx.onShutdown(async () => {
    const t0 = Date.now()
    await bounded(registration.stop(), DEREGISTER_BOUND_MS)
    log.info({ name, path: registration.path, drainMs: config.drainMs, ms: Date.now() - t0 }, 'deregistered; draining')
    draining = true
    await sleep(config.drainMs)
    await closeServer(app)
    await session.close()
    log.info({ name, ms: Date.now() - t0 }, 'replica stopped')
  })
}

/**
 * Calls `onOrphaned` once when the process that started this one (e.g. `zkproxy dev`) is gone,
 * however it went (SIGKILL included): a replica nobody will stop must not linger. A pipe on
 * stdin from the parent says so at once (the kernel closes it with the parent); being
 * re-parented says so too, checked every second, for parents that hand over no pipe.
 */
function watchParent (onOrphaned: () => void): void {
  let called = false
  const orphaned = (): void => {
    if (called) return
    called = true
    clearInterval(timer)
    onOrphaned()
  }
  const parent = process.ppid
  const timer = setInterval(() => { if (process.ppid !== parent) orphaned() }, 1000)
  timer.unref()
  let stdin: Stats | undefined
  try { stdin = fstatSync(0) } catch {}
  // Node hands a child its pipes as sockets, a shell as FIFOs; a terminal or /dev/null is neither.
  if (stdin?.isFIFO() === true || stdin?.isSocket() === true) {
    process.stdin.on('end', orphaned).on('error', orphaned).resume()
  }
}

async function checkDir (dir: string): Promise<void> {
  let isDir = false
  try {
    isDir = (await stat(dir)).isDirectory()
  } catch {}
  if (!isDir) throw createError('ZKPROXY_ERR_CONFIG_INVALID', `--dir ${dir} is not a folder`)
}

/**
 * The host proxies should connect to. A wildcard address is where we listen, not where we can
 * be reached: take this machine's first external IPv4 address (Curator does the same).
 */
function advertisedHost (host: string): string {
  if (host !== '0.0.0.0' && host !== '::' && host !== '') return host
  for (const addrs of Object.values(networkInterfaces())) {
    const v4 = addrs?.find(a => a.family === 'IPv4' && !a.internal)
    if (v4 !== undefined) return v4.address
  }
  return '127.0.0.1'
}

async function listenStatic (config: ReplicaConfig, advertised: string, log: Logger): Promise<{ app: FastifyInstance, port: number, name: string }> {
  for (let attempt = 1; ; attempt++) {
    const port = config.port === 0 ? await pickPort(config.host) : config.port
    const name = config.name ?? defaultTargetName(advertised, port)
    const app = createStaticServer({ dir: config.dir, name, maxAgeSec: config.maxAgeSec, logger: log })
    try {
      await app.listen({ host: config.host, port })
      return { app, port, name }
    } catch (err) {
      await app.close().catch(() => {})
      const code = (err as { code?: string }).code
      if (config.port === 0 && code === 'EADDRINUSE' && attempt < PICK_PORT_ATTEMPTS) continue
      throw listenError(err, 'ZKPROXY_ERR_REPLICA_LISTEN', '--port', config.host, port)
    }
  }
}

async function pickPort (host: string): Promise<number> {
  const probe = createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject)
      probe.listen({ host, port: 0, exclusive: true }, resolve)
    })
    const addr = probe.address()
    if (addr === null || typeof addr === 'string') throw new Error('no port')
    return addr.port
  } catch (err) {
    throw listenError(err, 'ZKPROXY_ERR_REPLICA_LISTEN', '--host', host, 0)
  } finally {
    await new Promise<void>((resolve) => { probe.close(() => { resolve() }) })
  }
}

/** Stops accepting, lets running requests finish for a moment, then cuts what is left. */
async function closeServer (app: FastifyInstance): Promise<void> {
  const timer = setTimeout(() => { app.server.closeAllConnections() }, CLOSE_GRACE_MS)
  try {
    await app.close()
  } finally {
    clearTimeout(timer)
  }
}
