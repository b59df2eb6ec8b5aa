// The primary of `zkproxy proxy --workers N` (node:cluster). It serves no request itself: it
// holds the proxy's one ZooKeeper session, the TargetSet, the RequestCounter, the /cacheAge
// watch, the /proxies announcement and the admin listener, and runs N workers
// (proxy-worker.ts) that share the public listener. Workers get every snapshot and cache clear
// over IPC and send back count deltas every --count-flush-ms, which the primary adds to its
// counter: ZooKeeper sees one writer per proxy, so its writes stay bounded by targets × flush
// rate whatever the number of workers. A worker that dies is restarted with backoff.
import cluster, { type Worker } from 'node:cluster'
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { Counter, Gauge } from 'prom-client'
import type { ProxyConfig } from '../config.js'
import { createError } from '../errors.js'
import { EphemeralNode, ZkSession } from '../zk/index.js'
import { TargetSet, type Snapshot, type TargetInfo } from '../registry/target-set.js'
import { RequestCounter } from '../registry/request-counter.js'
import { watchRevision } from '../registry/cache-age.js'
import { publishPurge, purgeAcl, watchPurges } from '../registry/purges.js'
import { useStateFile, type StateFile } from '../registry/state-file.js'
import { Router } from '../proxy/router.js'
import type { TunnelStats } from '../proxy/tunnel.js'
import { ProxyMetrics, type MetricsJson, type RuntimeView } from '../admin/metrics.js'
import { startAdmin, type AdminServer } from '../admin/server.js'
import { nodeAcls, securePath } from '../registry/acl-policy.js'
import { advertise, closeControl } from './proxy-runtime.js'
import { selfAddresses, targetAdmission } from './proxy-security.js'
import { isToPrimary, type ToPrimary, type ToWorker } from './worker-messages.js'

export interface ProxyPrimary {
  readonly url: string
  readonly session: ZkSession
  /** Drains every worker (each runs its own --drain-ms), then flushes counts, leaves, closes. */
  stop (): Promise<void>
}

/** One worker process as the admin listener's /workers shows it. */
export interface WorkerRow {
  /** Its place among the N (kept across restarts). */
  readonly slot: number
  readonly pid: number | undefined
  readonly startedAt: string
  /** Times this slot's worker died and was replaced. */
  readonly restarts: number
  /** Requests this process routed (reported so far). */
  readonly requests: number
  readonly inFlight: number
}

interface Slot {
  readonly index: number
  worker: Worker | undefined
  startedAt: number
  restarts: number
  /** Deaths in a row of workers that lived less than STABLE_MS: sets the backoff. */
  quickDeaths: number
  requests: number
  inFlight: Map<string, number>
  tunnels: Map<string, number>
  restartTimer: NodeJS.Timeout | undefined
}

/** A worker that lived this long is healthy again: its next death restarts at once. */
const STABLE_MS = 10_000
const RESTART_BASE_MS = 100
const RESTART_MAX_MS = 10_000
/** How long a scrape waits for the workers' metrics (a stuck worker costs only its own). */
const SCRAPE_WAIT_MS = 1000
/** After --drain-ms, how long a worker may take to report and exit before it is killed. */
const EXIT_GRACE_MS = 500

const NO_TUNNELS: TunnelStats = Object.freeze({ open: 0, opened: 0, closed: Object.freeze({ client: 0, target: 0, idle: 0, drain: 0, error: 0 }), bytesUp: 0, bytesDown: 0, refused: 0 })

export async function startPrimary (cfg: ProxyConfig, log: Logger): Promise<ProxyPrimary> {
  const session = new ZkSession({ connect: cfg.zk, sessionTimeoutMs: cfg.sessionTimeoutMs, logger: log, auth: cfg.zkAuth })
  const counter = new RequestCounter({ session, targetsPath: cfg.targetsPath, flushMs: cfg.countFlushMs, logger: log })
  // The primary routes nothing: its router is the admin listener's view of the targets (rows,
  // pools, health), with in-flight figures summed from the workers' reports.
  const router = new Router({ countFor: (t) => counter.cell(t.name) ?? (() => { throw new Error(`no count cell for ${t.name}`) })() })
  const admission = targetAdmission(cfg, session, () => targets, log)
  const targets = new TargetSet({ session, targetsPath: cfg.targetsPath, logger: log, admit: admission.admit })
  const slots: Slot[] = Array.from({ length: cfg.workers }, (_, index) => ({ index, worker: undefined, startedAt: 0, restarts: 0, quickDeaths: 0, requests: 0, inFlight: new Map(), tunnels: new Map(), restartTimer: undefined }))
  let stopping = false

  const sendTo = (w: Worker | undefined, m: ToWorker): void => {
    if (w !== undefined && w.isConnected()) w.send(m)
  }
  // Each worker balances on the counts the primary knows (every worker's reported requests),
  // not only on its own.
  const withTotal = (t: TargetInfo): TargetInfo => ({ ...t, requests: counter.cell(t.name)?.total ?? t.requests })
  // Until ZooKeeper delivers a view, the one saved by --state-file (if any) is what workers route on.
  let savedView: readonly TargetInfo[] | undefined
  const targetsMessage = (): ToWorker | undefined => {
    const view = targets.snapshot?.targets ?? savedView
    return view === undefined ? undefined : { type: 'zkproxy:targets', targets: view.map(withTotal) }
  }
  const applyView = (view: readonly TargetInfo[]): void => {
    counter.update(view)
    router.update(view)
    sumLoad()
  }
  targets.on('snapshot', (snap: Snapshot) => {
    let m: ToWorker | undefined
    if (snap.counted !== undefined && router.counted(snap.counted)) {
      // A count flush: the workers hear of the targets it counted, not the whole view.
      counter.counted(snap.counted)
      m = { type: 'zkproxy:targets', targets: snap.counted.map(withTotal), counted: true }
    } else {
      applyView(snap.targets)
      m = targetsMessage()
    }
    if (m !== undefined) for (const s of slots) sendTo(s.worker, m)
  })
  const revisionWatch = watchRevision(session, cfg.cacheAgePath, log, (revision, previous) => {
    if (cfg.cacheTtlSec === 0 || revision === undefined) return
    const m: ToWorker = { type: 'zkproxy:revision', revision, previous }
    for (const s of slots) sendTo(s.worker, m)
  })
  // Fleet-wide purges reach every worker's cache through the one watch here.
  const purgeWatch = cfg.cacheTtlSec === 0
    ? undefined
    : watchPurges(session, cfg.purgePath, log, (event) => {
      const m: ToWorker = { type: 'zkproxy:purge', filter: event.filter, reason: event.widened === undefined ? `purge ${event.sequence}` : `purge ${event.sequence} (${event.widened}: everything)` }
      for (const s of slots) sendTo(s.worker, m)
    })

  // ---- the workers' reports: count deltas into the counter, in-flight into the router's rows ----
  const perTargetSum = (pick: (s: Slot) => Map<string, number>): Map<string, number> => {
    const sum = new Map<string, number>()
    for (const s of slots) for (const [name, n] of pick(s)) sum.set(name, (sum.get(name) ?? 0) + n)
    return sum
  }
  function sumLoad (): void {
    const inFlight = perTargetSum(s => s.inFlight)
    for (const t of router.targets) t.inFlight = inFlight.get(t.name) ?? 0
  }
  const onReport = (slot: Slot, m: Extract<ToPrimary, { type: 'zkproxy:report' }>): void => {
    for (const [name, generation, delta] of m.deltas) {
      slot.requests += delta
      const cell = counter.cell(name)
      // A delta for a registration that left or was re-created has nowhere to go, exactly as
      // in one process (RequestCounter.update drops it the same way).
      if (cell === undefined || cell.generation !== generation) counter.stats.dropped += delta
      else cell.pending += delta
    }
    slot.inFlight = new Map(m.inFlight)
    slot.tunnels = new Map(m.tunnels)
    sumLoad()
  }

  // ---- metrics scrapes: each worker's registry, merged by the admin's ProxyMetrics ----
  let scrapeId = 0
  const scrapes = new Map<number, { waiting: Set<Worker>, got: MetricsJson[], done: () => void }>()
  const pullMetrics = async (): Promise<MetricsJson[]> => {
    const id = ++scrapeId
    const got: MetricsJson[] = []
    const waiting = new Set(slots.map(s => s.worker).filter((w): w is Worker => w?.isConnected() === true))
    if (waiting.size === 0) return got
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, SCRAPE_WAIT_MS)
      function done (): void {
        clearTimeout(timer)
        scrapes.delete(id)
        resolve()
      }
      scrapes.set(id, { waiting, got, done })
      for (const w of waiting) w.send({ type: 'zkproxy:metrics-request', id } satisfies ToWorker)
    })
    return got
  }
  const forgetInScrapes = (w: Worker): void => {
    for (const s of scrapes.values()) if (s.waiting.delete(w) && s.waiting.size === 0) s.done()
  }

  // ---- starting, restarting and stopping workers ----
  let url: string | undefined
  let startup: { resolve: () => void, reject: (err: Error) => void } | undefined
  const fork = (slot: Slot): void => {
    const w = cluster.fork()
    slot.worker = w
    slot.startedAt = Date.now()
    slot.inFlight = new Map()
    slot.tunnels = new Map()
    w.on('message', (m: unknown) => {
      if (!isToPrimary(m)) return
      switch (m.type) {
        case 'zkproxy:listening': {
          url ??= m.url
          const t = targetsMessage()
          if (t !== undefined) sendTo(w, t)
          listening.add(w)
          if (slots.every(s => s.worker !== undefined && listening.has(s.worker))) startup?.resolve()
          break
        }
        case 'zkproxy:failed':
          startup?.reject(Object.assign(new Error(m.message), m.code === undefined ? {} : { code: m.code }))
          break
        case 'zkproxy:report':
          onReport(slot, m)
          break
        case 'zkproxy:metrics': {
          const s = scrapes.get(m.id)
          if (s !== undefined && s.waiting.delete(w)) {
            s.got.push(m.metrics)
            if (s.waiting.size === 0) s.done()
          }
          break
        }
      }
    })
    w.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      listening.delete(w)
      forgetInScrapes(w)
      if (slot.worker !== w) return
      slot.worker = undefined
      // Its in-flight requests ended with it (failed or not).
      slot.inFlight = new Map()
      slot.tunnels = new Map()
      sumLoad()
      if (stopping) return
      if (startup !== undefined) {
        startup.reject(createError('ZKPROXY_ERR_PROXY_WORKER_START', `worker ${slot.index} (code ${String(code)}, signal ${String(signal)})`))
        return
      }
      const lived = Date.now() - slot.startedAt
      slot.quickDeaths = lived < STABLE_MS ? slot.quickDeaths + 1 : 1
      const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (slot.quickDeaths - 1))
      slot.restarts++
      restarts.inc()
      log.error({ slot: slot.index, workerPid: w.process.pid, code, signal, livedMs: lived, restartInMs: delay }, 'worker died; restarting it')
      slot.restartTimer = setTimeout(() => {
        slot.restartTimer = undefined
        if (!stopping) fork(slot)
      }, delay)
    })
  }
  const listening = new Set<Worker>()

  // prom-client aggregation by name: these exist only in the primary.
  const metrics = cfg.admin === undefined ? undefined : new ProxyMetrics({ part: 'control' })
  const restarts = new Counter({ name: 'zkproxy_worker_restarts_total', help: 'Workers that died and were restarted (--workers).', registers: metrics === undefined ? [] : [metrics.registry] })
  // eslint-disable-next-line no-new -- registered on the registry; read at scrape time
  new Gauge({ name: 'zkproxy_workers', help: 'Worker processes running now (--workers).', registers: metrics === undefined ? [] : [metrics.registry], collect () { this.set(slots.filter(s => s.worker !== undefined).length) } })
  metrics?.aggregateWith(pullMetrics)

  try {
    await new Promise<void>((resolve, reject) => {
      startup = { resolve, reject }
      for (const s of slots) fork(s)
    })
  } catch (err) {
    stopping = true
    for (const s of slots) s.worker?.process.kill('SIGKILL')
    throw err
  } finally {
    startup = undefined
  }
  const publicUrl = url!
  const id = cfg.id ?? `${hostname()}:${new URL(publicUrl).port}`

  const listenerView = {
    get closing () { return stopping },
    tunnels: { stats: () => NO_TUNNELS, perTarget: () => perTargetSum(s => s.tunnels) }
  }
  const purgeAclEntries = cfg.zkAcl === undefined ? undefined : purgeAcl(cfg.zkAcl)
  const purge = async (filter: { host?: string, prefix?: string }): Promise<number> => await publishPurge(session, cfg.purgePath, filter, { logger: log, acl: purgeAclEntries })
  let stateFile: StateFile | undefined
  const runtimeView: RuntimeView = { url: publicUrl, id, session, router, counter, targets, cache: undefined, listener: listenerView, purge, get savedView () { return stateFile?.status } }
  metrics?.observe(runtimeView)
  const workerRows = (): WorkerRow[] => slots.map(s => ({
    slot: s.index,
    pid: s.worker?.process.pid,
    startedAt: new Date(s.startedAt).toISOString(),
    restarts: s.restarts,
    requests: s.requests,
    inFlight: [...s.inFlight.values()].reduce((a, b) => a + b, 0)
  }))
  let admin: AdminServer | undefined
  try {
    admin = cfg.admin === undefined || metrics === undefined ? undefined : await startAdmin({ listen: cfg.admin, logger: log, runtime: runtimeView, metrics, workers: workerRows })
  } catch (err) {
    stopping = true
    revisionWatch.close()
    purgeWatch?.close()
    for (const s of slots) s.worker?.process.kill('SIGKILL')
    throw err
  }
  const listeners = [{ host: cfg.listen.host, port: Number(new URL(publicUrl).port) }]
  if (admin !== undefined && cfg.admin !== undefined) listeners.push({ host: cfg.admin.host, port: Number(new URL(admin.url).port) })
  admission.start(selfAddresses(listeners))
  // Before the target set starts: a saved view may only ever precede the live one.
  if (cfg.stateFile !== undefined) {
    stateFile = await useStateFile({
      path: cfg.stateFile,
      targetsPath: cfg.targetsPath,
      targets,
      apply: (view) => {
        savedView = view
        applyView(view)
        const m = targetsMessage()
        if (m !== undefined) for (const s of slots) sendTo(s.worker, m)
      },
      admit: admission.admit,
      logger: log
    })
  }
  session.start()
  counter.start(id)
  targets.start()

  const advertised = advertise(publicUrl)
  const acls = cfg.zkAcl === undefined ? undefined : nodeAcls(cfg.zkAcl)
  const announce = new EphemeralNode(session, `${cfg.proxiesPath}/${id}`, {
    logger: log,
    ...(acls === undefined ? {} : { acl: acls.proxies, beforeCreate: async () => { await securePath(session, cfg.proxiesPath, acls.proxies, { logger: log }) } }),
    data: () => Buffer.from(JSON.stringify({ url: advertised, admin: admin?.url ?? null, pid: process.pid, startedAt: new Date().toISOString(), workers: cfg.workers }))
  }).start()
  log.info({ url: publicUrl, id, admin: admin?.url, zk: cfg.zk, workers: slots.map(s => s.worker?.process.pid) }, 'proxy listening')

  const drainWorkers = async (): Promise<void> => {
    const live = slots.flatMap(s => s.worker === undefined ? [] : [s.worker])
    await Promise.all(live.map(async (w) => {
      // Both: 'exit' for the process, 'disconnect' for the channel (its last report read).
      const gone = Promise.all([
        new Promise<void>(resolve => { if (w.isDead()) resolve(); else w.once('exit', () => { resolve() }) }),
        new Promise<void>(resolve => { if (!w.isConnected()) resolve(); else w.once('disconnect', () => { resolve() }) })
      ])
      sendTo(w, { type: 'zkproxy:drain' })
      const timer = setTimeout(() => {
        log.warn({ workerPid: w.process.pid }, 'worker did not exit after its drain; killing it')
        w.process.kill('SIGKILL')
      }, cfg.drainMs + EXIT_GRACE_MS)
      await gone
      clearTimeout(timer)
    }))
  }

  let stopped: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping = true
    for (const s of slots) clearTimeout(s.restartTimer)
    await drainWorkers()
    await counter.stop()
    await stateFile?.close()
    await closeControl({ announce, revisionWatch, purgeWatch, targets, admission, admin, session })
  }
  return { url: publicUrl, session, stop: async () => { stopped ??= stop(); await stopped } }
}
