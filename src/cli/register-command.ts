// `zkproxy register`: a sidecar registering an already-running backend written in anything
// (after SmartStack's nerve). With --health-path it holds the znode only while the backend
// passes its health check; without, for as long as the sidecar runs.
import { createError } from '../errors.js'
import { registerConfig } from '../config.js'
import { defaultTargetName } from '../registry/codec.js'
import { Registration } from '../registry/registration.js'
import { nodeAcls } from '../registry/acl-policy.js'
import { contentRevision } from '../registry/revision.js'
import { HealthChecker, probeHttp, type CheckEvent } from '../replica/health-checker.js'
import { ZkSession } from '../zk/index.js'
import type { CliContext } from './lifecycle.js'
import { bounded } from './time.js'
import { exitOnAuthFailure } from './zk-auth.js'

// See replica-command.ts: a hung ZooKeeper must not hold up shutdown.
const DEREGISTER_BOUND_MS = 5000

export async function run (raw: Record<string, unknown>, ctx: CliContext): Promise<void> {
  const config = registerConfig(raw)
  const log = ctx.logger
  const startedAt = new Date()
  const backend = config.url
  // A target is an origin: a path here would be silently dropped by every proxy.
  if ((backend.pathname !== '/' && backend.pathname !== '') || backend.search !== '' || backend.hash !== '' || backend.username !== '' || backend.password !== '') {
    throw createError('ZKPROXY_ERR_CONFIG_INVALID', `--url must be an origin like http://127.0.0.1:4000 (no path, query or credentials), got ${backend.origin}${backend.pathname}`)
  }
  const url = backend.origin
  const port = backend.port === '' ? (backend.protocol === 'https:' ? 443 : 80) : Number(backend.port)
  const name = config.name ?? defaultTargetName(backend.hostname, port)
  const rev = await contentRevision({ revision: config.revision })

  // Built (not started) first: it validates name, url and revision before anything is logged.
  const session = new ZkSession({ connect: config.zk, sessionTimeoutMs: config.sessionTimeoutMs, logger: log, auth: config.zkAuth })
  const acls = config.zkAcl === undefined ? undefined : nodeAcls(config.zkAcl)
  const registration = new Registration({
    session, targetsPath: config.targetsPath, cacheAgePath: config.cacheAgePath, name, url, revision: rev.revision, startedAt, routes: config.routes, stripPrefix: config.stripPrefix, logger: log, acls
  })

  // Registering a backend that is not there would send proxies to a dead origin: any HTTP
  // answer proves something listens (the health check, if any, judges the status later).
  const checkUrl = new URL(config.healthPath ?? '/', url)
  const first = await probeHttp(checkUrl, config.healthTimeoutMs)
  if (first.status === undefined) {
    throw createError('ZKPROXY_ERR_REPLICA_BACKEND_UNREACHABLE', `--url ${url}: GET ${checkUrl.href} failed: ${first.error ?? 'no answer'}`)
  }

  log.info({ url, name, healthPath: config.healthPath, revision: rev.revision, revisionSource: rev.source, routes: registration.routes, pid: process.pid }, 'register running')
  session.start()
  exitOnAuthFailure(session, ctx, config.zkAuth.map(a => a.scheme))
  let checker: HealthChecker | undefined
  if (config.healthPath === undefined) {
    registration.start()
  } else {
    checker = new HealthChecker({
      url: checkUrl,
      intervalMs: config.healthIntervalMs,
      timeoutMs: config.healthTimeoutMs,
      unhealthyAfter: config.unhealthyAfter,
      healthyAfter: config.healthyAfter
    })
    const summary = (ev: CheckEvent): Record<string, unknown> => ({ url: checkUrl.href, status: ev.status, error: ev.error, ms: ev.durationMs })
    checker.on('healthy', (ev: CheckEvent) => {
      log.info({ health: summary(ev) }, 'backend healthy: registering')
      registration.start()
    })
    checker.on('unhealthy', (ev: CheckEvent) => {
      log.warn({ health: summary(ev), failures: config.unhealthyAfter }, 'backend unhealthy: deregistering')
      void registration.stop()
    })
    checker.start()
  }

  ctx.onShutdown(async () => {
    checker?.stop()
    await bounded(registration.stop(), DEREGISTER_BOUND_MS)
    await session.close()
    log.info({ name }, 'register stopped')
  })
}
