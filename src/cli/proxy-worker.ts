// One worker of `zkproxy proxy --workers N` (node:cluster): the public listener and the request
// path exactly as in one process, without ZooKeeper. The primary (proxy-primary.ts) sends the
// targets and cache clears; this process sends back, every --count-flush-ms, the requests it
// routed per target registration (name + generation) plus its in-flight requests, and answers
// metrics scrapes. A worker killed outright loses only the deltas of its last interval.
import cluster from 'node:cluster'
import type { ProxyConfig } from '../config.js'
import { Router } from '../proxy/router.js'
import { RevisionLiveness } from '../cache/index.js'
import { ProxyMetrics } from '../admin/metrics.js'
import { createCache, listen, publicServer } from './proxy-runtime.js'
import { loadTls, trustedPeers } from './proxy-security.js'
import type { CliContext } from './lifecycle.js'
import { isToWorker, type ToPrimary } from './worker-messages.js'
import { WorkerCounts } from './worker-counts.js'

export async function runWorker (cfg: ProxyConfig, ctx: CliContext): Promise<void> {
  const log = ctx.logger.child({ worker: cluster.worker?.id })
  const send = async (m: ToPrimary): Promise<void> => {
    // A primary that is gone cannot be told anything; cluster exits this process then anyway.
    if (process.send === undefined || !process.connected) return
    await new Promise<void>((resolve) => { process.send!(m, undefined, {}, () => { resolve() }) })
  }

  const counts = new WorkerCounts()
  // Each worker judges revision coherence from the snapshots it is sent, like one process does.
  const liveness = new RevisionLiveness()
  const router = new Router({ countFor: (t) => counts.cellFor(t), liveness })
  const metrics = cfg.admin === undefined ? undefined : new ProxyMetrics({ part: 'path' })
  const trustForwarded = trustedPeers(cfg)
  const cache = createCache(cfg, log, trustForwarded, liveness)
  let server
  try {
    const tlsMaterial = await loadTls(cfg)
    server = publicServer(cfg, log, router, cache, metrics, tlsMaterial, trustForwarded)
    metrics?.observePath({ router, cache, listener: server })
    const url = await listen(server, cfg)
    await send({ type: 'zkproxy:listening', url })
  } catch (err) {
    // The primary prints the one line and exits 2; printing it here too would say it N times.
    const e = err as { message?: string, code?: string }
    await send({ type: 'zkproxy:failed', message: e.message ?? String(err), code: e.code })
    process.exit(2)
  }
  const listener = server

  let lastLoad = ''
  const report = async (): Promise<void> => {
    const deltas = counts.take()
    const inFlight = router.targets.filter(t => t.inFlight !== 0).map(t => [t.name, t.inFlight] as const)
    const tunnels = [...listener.tunnels.perTarget()].filter(([, n]) => n !== 0)
    const load = JSON.stringify([inFlight, tunnels])
    // Quiet when idle: nothing routed and the same in-flight picture as last time.
    if (deltas.length === 0 && load === lastLoad) return
    lastLoad = load
    await send({ type: 'zkproxy:report', deltas, inFlight, tunnels })
  }
  const timer = setInterval(() => { void report() }, cfg.countFlushMs)

  process.on('message', (m: unknown) => {
    if (!isToWorker(m)) return
    switch (m.type) {
      case 'zkproxy:targets':
        if (m.counted === true) {
          // Messages arrive in order, so the router has the targets a counted one names.
          if (router.counted(m.targets)) counts.counted(m.targets)
          else log.warn({ targets: m.targets.map(t => t.name) }, 'counts for targets this worker does not know: ignored')
          break
        }
        counts.update(m.targets)
        router.update(m.targets)
        break
      case 'zkproxy:revision':
        cache?.revisionChanged(m.revision, m.previous)
        break
      case 'zkproxy:purge':
        cache?.purge(m.filter, m.reason)
        break
      case 'zkproxy:metrics-request':
        if (metrics === undefined) break
        metrics.json().then(
          async (json) => { await send({ type: 'zkproxy:metrics', id: m.id, metrics: json }) },
          (err: unknown) => { log.warn({ err }, 'metrics for the primary failed') }
        )
        break
      case 'zkproxy:drain':
        stop().then(() => { process.exit(0) }, (err: unknown) => {
          log.error({ err }, 'shutdown failed')
          process.exit(1)
        })
        break
    }
  })

  let stopping: Promise<void> | undefined
  // Reached by the primary's drain message or by a signal sent to this process directly (a
  // terminal's Ctrl-C reaches the whole process group): either way once.
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      await listener.close(cfg.drainMs)
      clearInterval(timer)
      await report()
    })()
    await stopping
  }
  ctx.onShutdown(stop)
}
