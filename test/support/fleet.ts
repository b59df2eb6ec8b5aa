// A fleet of real processes for fault tests and the chaos soak: the built `zkproxy proxy` and
// `zkproxy replica`, a bounded load loop of concurrent GETs, and the counts ZooKeeper holds.
// Every process goes through startCli (tracked, stopped by PID in teardown).
import { Agent, request } from 'undici'
import type { ZkSession } from '../../src/zk/index.js'
import { startCli, type CliOptions, type StartedCli } from './cli.js'
import { readCount } from './proxy.js'
import { ms, until } from './until.js'

export interface ProxyProcess extends StartedCli {
  readonly url: string
  /** The admin listener, when started with one. */
  readonly admin: string | undefined
}

/** `zkproxy proxy` on free loopback ports, cache off (every request is routed and counted). */
export async function startProxyProcess (connect: string, extra: readonly string[] = [], opts: CliOptions = {}): Promise<ProxyProcess> {
  const started = await startCli(['proxy', '--zk', connect, '--listen', '127.0.0.1:0', '--admin', 'off', '--cache-ttl', '0', '--session-timeout-ms', '4000', '--count-flush-ms', '100', ...extra], 'proxy listening', opts)
  const admin = started.ready['admin']
  return { ...started, url: started.ready['url'] as string, admin: typeof admin === 'string' ? admin : undefined }
}

export interface ReplicaProcess extends StartedCli {
  readonly url: string
  readonly name: string
}

/** `zkproxy replica` serving the bundled site on a free port (or `--port` in `extra`). */
export async function startReplica (connect: string, name: string, extra: readonly string[] = [], opts: CliOptions = {}): Promise<ReplicaProcess> {
  const args = ['replica', '--zk', connect, '--port', '0', '--name', name, '--session-timeout-ms', '4000', '--drain-ms', '500', ...extra]
  const started = await startCli(args, 'replica listening', { name, ...opts })
  return { ...started, url: started.ready['url'] as string, name }
}

/**
 * The proxy listens before it has a view (503 until then); resolves once it routes to
 * `expectedTargets`, with the number of requests it routed meanwhile (for exact count checks).
 */
export async function untilRouting (url: string, expectedTargets = 1, path = '/index.html'): Promise<number> {
  const seen = new Set<string>()
  let routed = 0
  await until(async () => {
    const r = await request(`${url}${path}`, { headers: { 'cache-control': 'no-store' } })
    await r.body.dump()
    if (r.statusCode === 200) {
      routed++
      seen.add(String(r.headers['x-served-by']))
    }
    return seen.size >= expectedTargets
  }, { timeoutMs: ms(20_000), intervalMs: 20, message: `proxy routing to ${expectedTargets} target(s)` })
  return routed
}

/** Resolves once `names` are all registered under `targetsPath`. */
export async function untilRegistered (s: ZkSession, names: readonly string[], targetsPath = '/targets'): Promise<void> {
  await until(async () => {
    const counts = await zkCounts(s, targetsPath).catch(() => new Map<string, number>())
    return names.every(n => counts.has(n))
  }, { timeoutMs: ms(20_000), message: `${names.join(', ')} registered` })
}

/** Resolves once the counts in ZooKeeper add up to `expected` (flushes are batched). */
export async function untilCountsAddUp (s: ZkSession, expected: number, targetsPath = '/targets', timeoutMs = ms(20_000)): Promise<void> {
  let last = -1
  await until(async () => {
    last = sum(await zkCounts(s, targetsPath))
    return last === expected
  }, { timeoutMs, message: `counts in ZooKeeper adding up to ${expected} (last sum ${last})` })
}

export interface LoadResult {
  ok: number
  failures: string[]
  servedBy: Map<string, number>
}

export interface Load {
  readonly result: LoadResult
  stop: () => Promise<LoadResult>
}

export interface LoadOptions {
  readonly concurrency?: number
  /** Hard bound in time. */
  readonly maxMs?: number
  /** Hard bound in count. */
  readonly maxRequests?: number
  readonly path?: string
  /** Pause between one worker's requests (0: back to back). */
  readonly pauseMs?: number
}

/** Concurrent GETs through one or more proxies until `stop()` or a bound; every outcome recorded. */
export function startLoad (urls: string | readonly string[], opts: LoadOptions = {}): Load {
  const list = typeof urls === 'string' ? [urls] : urls
  const concurrency = opts.concurrency ?? 8
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: concurrency })
  const result: LoadResult = { ok: 0, failures: [], servedBy: new Map() }
  const deadline = Date.now() + (opts.maxMs ?? ms(60_000))
  const maxRequests = opts.maxRequests ?? 200_000
  const state = { running: true }
  const worker = async (i: number): Promise<void> => {
    const url = `${list[i % list.length]!}${opts.path ?? '/index.html'}`
    while (state.running && Date.now() < deadline && result.ok + result.failures.length < maxRequests) {
      const sentAt = Date.now()
      // A failure says when it was sent and how long it took, and a proxy's error answer its
      // detail: enough to match it against the faults of a soak.
      const took = (): string => `sent at ${new Date(sentAt).toISOString().slice(11, 23)}, ${Date.now() - sentAt} ms`
      try {
        const r = await request(url, { dispatcher: agent })
        if (r.statusCode === 200) {
          await r.body.dump()
          result.ok++
          const by = String(r.headers['x-served-by'])
          result.servedBy.set(by, (result.servedBy.get(by) ?? 0) + 1)
        } else {
          const detail = (await r.body.text().catch(() => '')).slice(0, 300)
          result.failures.push(`${url}: status ${r.statusCode} (${took()}) ${detail}`)
        }
      } catch (err) {
        result.failures.push(`${url}: ${(err as Error).message} (${took()})`)
      }
      if (opts.pauseMs !== undefined && opts.pauseMs > 0) await new Promise(resolve => setTimeout(resolve, opts.pauseMs))
    }
  }
  const workers = Array.from({ length: concurrency }, async (_, i) => { await worker(i) })
  return {
    result,
    stop: async () => {
      state.running = false
      await Promise.all(workers)
      await agent.close()
      return result
    }
  }
}

/** Resolves once `extraOk` more requests succeeded. */
export async function loadFor (result: LoadResult, extraOk: number, timeoutMs = ms(20_000)): Promise<void> {
  const target = result.ok + extraOk
  await until(() => result.ok >= target, { timeoutMs, message: `${extraOk} more successful requests` })
}

/** Every target's count under `targetsPath`, by name. */
export async function zkCounts (s: ZkSession, targetsPath = '/targets'): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const name of await s.children(targetsPath)) {
    try {
      out.set(name, await readCount(s, `${targetsPath}/${name}`))
    } catch (err) {
      if ((err as { code?: string }).code !== 'ZKPROXY_ERR_ZK_NO_NODE') throw err
    }
  }
  return out
}

export function sum (m: ReadonlyMap<string, number>): number {
  let n = 0
  for (const v of m.values()) n += v
  return n
}
