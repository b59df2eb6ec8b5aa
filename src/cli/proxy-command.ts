// `zkproxy proxy`: the proxy runtime plus signals (graceful shutdown on the first SIGTERM).
import { proxyConfig } from '../config.js'
import { startProxy } from './proxy-runtime.js'
import type { CliContext } from './lifecycle.js'

export async function run (raw: Record<string, unknown>, ctx: CliContext): Promise<void> {
  const proxy = await startProxy(proxyConfig(raw), ctx.logger)
  ctx.onShutdown(async () => { await proxy.stop() })
}
