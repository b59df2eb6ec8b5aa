// The proxy process's parts, wired (config → ZooKeeper session → registry → router → public
// listener), without signals or exits: `zkproxy proxy` runs it, and the integration tests
// start the very same wiring in-process. It listens at once, with or without ZooKeeper: until
// the first view of the targets it answers 503.
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import type { ProxyConfig } from '../config.js'
import { listenError } from '../errors.js'
import { EphemeralNode, ZkSession } from '../zk/index.js'
import { TargetSet, type Snapshot } from '../registry/target-set.js'
import { RequestCounter } from '../registry/request-counter.js'
import { useStateFile, type StateFile } from '../registry/state-file.js'
import { Router } from '../proxy/router.js'
import { createProxyServer, type ProxyServer } from '../proxy/server.js'
import { createAccessLogger } from './logger.js'
import { CacheStage } from '../proxy/cache-stage.js'
import { RevisionLiveness } from '../cache/index.js'
import { watchRevision } from '../registry/cache-age.js'
import { publishPurge, purgeAcl, watchPurges, type PurgeWatch } from '../registry/purges.js'
import { ProxyMetrics } from '../admin/metrics.js'
import { startAdmin, type AdminServer } from '../admin/server.js'
import { nodeAcls, securePath } from '../registry/acl-policy.js'
import { SummaryWriter, type ProxySummary } from '../registry/proxy-summary.js'
import { loadTls, selfAddresses, targetAdmission, trustedPeers } from './proxy-security.js'

export interface ProxyRuntime {
  readonly url: string
  readonly id: string
  readonly server: ProxyServer
  readonly session: ZkSession
  readonly router: Router
  readonly counter: RequestCounter
  readonly targets: TargetSet
  readonly cache: CacheStage | undefined
  /** The fleet-wide purges applied (absent with the cache off). */
  readonly purges: PurgeWatch | undefined
  /** Absent with `--admin off`: nothing could read them, so nothing is recorded per request. */
  readonly metrics: ProxyMetrics | undefined
  readonly admin: AdminServer | undefined
  /** Graceful stop: stop accepting, drain (bounded by drainMs), flush counts, leave, close. */
  stop (): Promise<void>
}

export async function startProxy (cfg: ProxyConfig, log: Logger): Promise<ProxyRuntime> {
  const tlsMaterial = await loadTls(cfg)
  const trustForwarded = trustedPeers(cfg)
  const session = new ZkSession({ connect: cfg.zk, sessionTimeoutMs: cfg.sessionTimeoutMs, logger: log, auth: cfg.zkAuth })
  const counter = new RequestCounter({ session, targetsPath: cfg.targetsPath, flushMs: cfg.countFlushMs, logger: log })
  // The live revisions of each pool, kept by the router, read by the cache on every hit.
  const liveness = new RevisionLiveness()
  const router = new Router({
    liveness,
    // counter.update() runs before router.update() for every snapshot, so the cell exists.
    countFor: (t) => counter.cell(t.name) ?? (() => { throw new Error(`no count cell for ${t.name}`) })()
  })
  const admission = targetAdmission(cfg, session, () => targets, log)
  const targets = new TargetSet({ session, targetsPath: cfg.targetsPath, logger: log, admit: admission.admit })
  const applyView = (view: Snapshot['targets']): void => {
    counter.update(view)
    router.update(view)
  }
  targets.on('snapshot', (snap: Snapshot) => {
    // A count flush touches the targets it counted, not the whole view.
    if (snap.counted !== undefined && router.counted(snap.counted)) counter.counted(snap.counted)
    else applyView(snap.targets)
  })

  // Metrics are recorded only where the admin listener can serve them: with `--admin off` the
  // request path carries no counters, histograms or timestamps at all.
  const metrics = cfg.admin === undefined ? undefined : new ProxyMetrics()
  const cache = createCache(cfg, log, trustForwarded, liveness)
  // Clear the cache when the content revision changes to a different value (not on the
  // first read, and not when a restarting replica writes the same revision again): the entries
  // of the pools carrying the new revision (cache-stage.ts).
  const revisionWatch = watchRevision(session, cfg.cacheAgePath, log, (revision, previous) => {
    if (cache === undefined || revision === undefined) return
    cache.revisionChanged(revision, previous)
  })

  // Fleet-wide purges (zkproxy purge, POST /purge on any proxy's admin listener).
  const purgeWatch = cache === undefined
    ? undefined
    : watchPurges(session, cfg.purgePath, log, (event) => {
      cache.purge(event.filter, event.widened === undefined ? `purge ${event.sequence}` : `purge ${event.sequence} (${event.widened}: everything)`)
    })

  const server = publicServer(cfg, log, router, cache, metrics, tlsMaterial, trustForwarded)
  const url = await listen(server, cfg)
  const id = cfg.id ?? `${hostname()}:${new URL(url).port}`
  const purgeAclEntries = cfg.zkAcl === undefined ? undefined : purgeAcl(cfg.zkAcl)
  const purge = async (filter: { host?: string, prefix?: string }): Promise<number> => await publishPurge(session, cfg.purgePath, filter, { logger: log, acl: purgeAclEntries })
  let stateFile: StateFile | undefined
  const runtimeView = { url, id, session, router, counter, targets, cache, listener: server, purge, get savedView () { return stateFile?.status } }
  metrics?.observe(runtimeView)
  let admin: AdminServer | undefined
  try {
    admin = cfg.admin === undefined || metrics === undefined ? undefined : await startAdmin({ listen: cfg.admin, logger: log, runtime: runtimeView, metrics })
  } catch (err) {
    // Nothing else has started yet: close the public listener so the process can exit 2.
    revisionWatch.close()
    purgeWatch?.close()
    await server.close(0)
    throw err
  }
  // Targets are judged once the ports are known (port 0 picks them at listen time).
  const listeners = [{ host: cfg.listen.host, port: Number(new URL(url).port) }]
  if (admin !== undefined && cfg.admin !== undefined) listeners.push({ host: cfg.admin.host, port: Number(new URL(admin.url).port) })
  admission.start(selfAddresses(listeners))
  // Before the target set starts: a saved view may only ever precede the live one.
  if (cfg.stateFile !== undefined) stateFile = await useStateFile({ path: cfg.stateFile, targetsPath: cfg.targetsPath, targets, apply: applyView, admit: admission.admit, logger: log })
  session.start()
  counter.start(id)
  targets.start()

  // What `zkproxy status` shows: a wildcard listen address is advertised by host name.
  const advertised = advertise(url)
  const acls = cfg.zkAcl === undefined ? undefined : nodeAcls(cfg.zkAcl)
  const announcedPath = `${cfg.proxiesPath}/${id}`
  const startedAt = new Date().toISOString()
  let connectedSince = startedAt
  session.on('connected', () => { connectedSince = new Date().toISOString() })
  // The announcement carries this proxy's health view of the targets (proxy-summary.ts):
  // rewritten at most every SUMMARY_MIN_INTERVAL_MS, only when it changed.
  const summary = new SummaryWriter({
    session,
    path: announcedPath,
    logger: log,
    registered: (): boolean => announce.state === 'registered',
    summary: () => summaryOf(router),
    data: (s) => Buffer.from(JSON.stringify({
      url: advertised,
      admin: admin?.url ?? null,
      pid: process.pid,
      startedAt,
      ...s,
      // Written only while connected: `since` is when this connection began (a recent one
      // after a long uptime means the proxy lost ZooKeeper for a while).
      zookeeper: { state: 'connected', since: connectedSince },
      summaryAt: new Date().toISOString()
    }))
  })
  const announce = new EphemeralNode(session, announcedPath, {
    logger: log,
    ...(acls === undefined ? {} : { acl: acls.proxies, beforeCreate: async () => { await securePath(session, cfg.proxiesPath, acls.proxies, { logger: log }) } }),
    data: (): Buffer => summary.current()
  }).start()
  summary.start()
  log.info({ url, id, admin: admin?.url, zk: cfg.zk }, 'proxy listening')

  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    await server.close(cfg.drainMs)
    await counter.stop()
    await stateFile?.close()
    summary.stop()
    await closeControl({ announce, revisionWatch, purgeWatch, targets, admission, admin, session })
  }
  return { url, id, server, session, router, counter, targets, cache, purges: purgeWatch, metrics, admin, stop: async () => { stopping ??= stop(); await stopping } }
}

/**
 * The ZooKeeper side of a proxy (one process, or a --workers primary), closed in order once its
 * counts are flushed: leave /proxies, stop watching, close the admin listener, end the session.
 */
export async function closeControl (parts: {
  readonly announce: { stop: () => Promise<void> }
  readonly revisionWatch: { close: () => void }
  readonly purgeWatch: { close: () => void } | undefined
  readonly targets: { close: () => void }
  readonly admission: { close: () => void }
  readonly admin: { close: () => Promise<void> } | undefined
  readonly session: { close: () => Promise<void> }
}): Promise<void> {
  await parts.announce.stop()
  parts.revisionWatch.close()
  parts.purgeWatch?.close()
  parts.targets.close()
  parts.admission.close()
  await parts.admin?.close()
  await parts.session.close()
}

/** The public listener of one process (this one, or a --workers worker), wired from the flags. */
export function publicServer (cfg: ProxyConfig, log: Logger, router: Router, cache: CacheStage | undefined, metrics: ProxyMetrics | undefined,
  tlsMaterial: Awaited<ReturnType<typeof loadTls>>, trustForwarded: ((address: string) => boolean) | undefined): ProxyServer {
  return createProxyServer({
    router,
    logger: log,
    limits: cfg,
    // Pretty logs are for a human watching: unbuffered; JSON access lines go through a buffer.
    accessLog: !cfg.accessLog ? undefined : cfg.logPretty ? log : createAccessLogger(log),
    // trustForwarded rides in `hooks` because that is what reaches the request path.
    hooks: { ...metrics?.forwardHooks, ...(trustForwarded === undefined ? {} : { trustForwarded }) },
    ...tlsMaterial,
    ...(cache === undefined ? {} : { cache })
  })
}

/** The cache stage the flags ask for; undefined with --cache-ttl 0 (no layer on the request path). */
export function createCache (cfg: ProxyConfig, log: Logger, trustForwarded: ((address: string) => boolean) | undefined,
  liveness: RevisionLiveness): CacheStage | undefined {
  // --cache-ttl 0 turns the cache off entirely (no stage on the request path).
  if (cfg.cacheTtlSec === 0) return undefined
  return new CacheStage({
    ttlSec: cfg.cacheTtlSec,
    defaultTtlSec: cfg.cacheDefaultTtlSec,
    targetedField: cfg.cdnCacheControlField,
    liveness,
    maxEntries: cfg.cacheMaxEntries,
    maxBytes: cfg.cacheMaxBytes,
    maxObjectBytes: cfg.cacheMaxObjectBytes,
    staleIfErrorSec: cfg.staleIfErrorSec,
    coalesceTimeoutMs: cfg.headersTimeoutMs,
    logger: log,
    ...(trustForwarded === undefined ? {} : { trustForwarded })
  })
}

export async function listen (server: ProxyServer, cfg: ProxyConfig): Promise<string> {
  try {
    return await server.listen(cfg.listen.host, cfg.listen.port)
  } catch (err) {
    throw listenError(err, 'ZKPROXY_ERR_PROXY_LISTEN', '--listen', cfg.listen.host, cfg.listen.port)
  }
}

/** The targets this proxy holds as failing (ejected, or not answered since) and drained. */
function summaryOf (router: Router): ProxySummary {
  const ejected: string[] = []
  const drained: string[] = []
  for (const t of router.targets) {
    if (router.ejections.isFailing(t.name, t.generation)) ejected.push(t.name)
    if (router.ejections.isDrained(t.name, t.generation)) drained.push(t.name)
  }
  return { ejected: ejected.sort(), drained: drained.sort() }
}

export function advertise (url: string): string {
  const u = new URL(url)
  if (u.hostname === '0.0.0.0' || u.hostname === '[::]') u.hostname = hostname()
  return u.origin
}
