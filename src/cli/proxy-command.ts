// `zkproxy proxy`: the proxy runtime plus signals (graceful shutdown on the first SIGTERM).
// With --workers N > 1 this process becomes the primary of N cluster workers (proxy-primary.ts)
// and each worker runs this same command again (proxy-worker.ts); with 1 it is the whole proxy.
import cluster from 'node:cluster'
import { proxyConfig } from '../config.js'
import { startProxy } from './proxy-runtime.js'
import type { CliContext } from './lifecycle.js'
import { exitOnAuthFailure } from './zk-auth.js'

export async function run (raw: Record<string, unknown>, ctx: CliContext): Promise<void> {
  const cfg = proxyConfig(raw)
  if (cfg.workers > 1) {
    if (cluster.isWorker) {
      await (await import('./proxy-worker.js')).runWorker(cfg, ctx)
      return
    }
    const primary = await (await import('./proxy-primary.js')).startPrimary(cfg, ctx.logger)
    exitOnAuthFailure(primary.session, ctx, cfg.zkAuth.map(a => a.scheme))
    ctx.onShutdown(async () => { await primary.stop() })
    return
  }
  const proxy = await startProxy(cfg, ctx.logger)
  exitOnAuthFailure(proxy.session, ctx, cfg.zkAuth.map(a => a.scheme))
  ctx.onShutdown(async () => { await proxy.stop() })
}
