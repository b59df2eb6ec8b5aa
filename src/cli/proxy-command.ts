// `zkproxy proxy`: the proxy runtime plus signals (graceful shutdown on the first SIGTERM).
import { proxyConfig } from '../config.js'
import { startProxy } from './proxy-runtime.js'
import type { CliContext } from './lifecycle.js'
import { exitOnAuthFailure } from './zk-auth.js'

export async function run (raw: Record<string, unknown>, ctx: CliContext): Promise<void> {
  const cfg = proxyConfig(raw)
  const proxy = await startProxy(cfg, ctx.logger)
  exitOnAuthFailure(proxy.session, ctx, cfg.zkAuth.map(a => a.scheme))
  ctx.onShutdown(async () => { await proxy.stop() })
}
