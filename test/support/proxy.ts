// The proxy for integration tests: the real runtime (src/cli/proxy-runtime.ts, the same wiring
// `zkproxy proxy` uses) started in-process on 127.0.0.1 port 0, stopped in teardown. Flags
// are given as on the command line so the tests also exercise config parsing.
import { Command } from 'commander'
import type { Logger } from 'pino'
import { commandOptions, proxyConfig } from '../../src/config.js'
import { startProxy, type ProxyRuntime } from '../../src/cli/proxy-runtime.js'
import { CreateMode, type ZkSession } from '../../src/zk/index.js'
import { silentLogger } from './zk-client.js'

const running = new Set<ProxyRuntime>()

export function parseProxyFlags (args: string[]): ReturnType<typeof proxyConfig> {
  const cmd = commandOptions.proxy(new Command('proxy').exitOverride())
  cmd.parse(args, { from: 'user' })
  return proxyConfig(cmd.opts())
}

export async function startTestProxy (zk: string, args: string[] = [], logger: Logger = silentLogger): Promise<ProxyRuntime> {
  const cfg = parseProxyFlags(['--zk', zk, '--listen', '127.0.0.1:0', '--admin', 'off', '--session-timeout-ms', '4000', '--drain-ms', '1000', ...args])
  const p = await startProxy(cfg, logger)
  running.add(p)
  return p
}

export async function stopAllProxies (): Promise<void> {
  const all = [...running]
  running.clear()
  await Promise.all(all.map(async p => { await p.stop() }))
}

/** Registers a target the way a replica does: an ephemeral znode with the JSON form. */
export async function registerTarget (session: ZkSession, targetsPath: string, name: string, url: string, requests = 0): Promise<void> {
  await session.mkdirp(targetsPath)
  await session.create(`${targetsPath}/${name}`, Buffer.from(JSON.stringify({ url, requests })), CreateMode.EPHEMERAL)
}

export async function readCount (session: ZkSession, path: string): Promise<number> {
  const { data } = await session.get(path)
  const text = data.toString()
  return /^\d+$/.test(text) ? Number(text) : (JSON.parse(text) as { requests: number }).requests
}
