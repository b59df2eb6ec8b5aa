// `zkproxy proxy --workers 2` as real processes (a primary and its cluster workers) against a
// real ZooKeeper and upstreams on port 0: requests reach every worker, counts stay exact, a
// killed worker is replaced, a content revision clears every worker's cache, SIGTERM drains
// them all, and the admin listener's metrics add up across the workers.
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import { ms, until, untilValue } from '../support/until.js'
import { stopAllTracked, type TrackedProcess } from '../support/processes.js'
import { runCli, startCli } from '../support/cli.js'
import { chrootConnect, closeAllSessions, connectSession } from '../support/zk-client.js'
import { closeAllBackends, startBackend, type Backend } from '../support/backends.js'
import { readCount, registerTarget } from '../support/proxy.js'
import type { ZkSession } from '../../src/zk/index.js'

// One ZooKeeper for the file (each test in its own chroot); the proxies are stopped after each
// test by their PIDs (stopAllTracked would stop ZooKeeper too).
let zk: ZkCluster | undefined
const proxies = new Set<TrackedProcess>()
beforeAll(async () => { zk = await startZooKeeper({ nodes: 1 }) })
afterAll(async () => {
  await zk?.stop()
  await stopAllTracked()
})
afterEach(async () => {
  await Promise.all([...proxies].map(async p => await p.stop('SIGKILL')))
  proxies.clear()
  await closeAllBackends()
  await closeAllSessions()
})

interface Proxy { proc: TrackedProcess, url: string, admin: string }

async function startProxy (connect: string, extra: string[] = []): Promise<Proxy> {
  const { proc, ready } = await startCli(['proxy', '--zk', connect, '--workers', '2', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0',
    '--session-timeout-ms', '4000', '--count-flush-ms', '100', ...extra], 'proxy listening', { timeoutMs: ms(30_000) })
  proxies.add(proc)
  return { proc, url: ready['url'] as string, admin: ready['admin'] as string }
}

/** A fresh chroot with `names` registered as targets (backends in this process). */
async function setUp (names: string[]): Promise<{ connect: string, session: ZkSession, backends: Backend[] }> {
  const connect = await chrootConnect(zk!.connectString, 'workers')
  const session = await connectSession(connect)
  const backends = await Promise.all(names.map(async n => await startBackend(n)))
  for (const b of backends) await registerTarget(session, '/targets', b.name, b.url)
  return { connect, session, backends }
}

interface WorkerRow { slot: number, pid: number | undefined, restarts: number, requests: number, inFlight: number }

async function workers (p: Proxy): Promise<WorkerRow[]> {
  const r = await request(`${p.admin}/workers`)
  return await r.body.json() as WorkerRow[]
}

/** The sum of every sample of `name` (all label sets) in the admin listener's /metrics. */
async function metricSum (p: Proxy, name: string): Promise<number> {
  const text = await (await request(`${p.admin}/metrics`)).body.text()
  let sum = 0
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{[^}]*\})? (\S+)$/.exec(line)
    if (m?.[1] === name) sum += Number(m[2])
  }
  return sum
}

/**
 * One GET on its own connection (Connection: close): with node:cluster's round-robin each new
 * connection goes to the next worker, and a killed worker can only fail what it holds.
 */
async function getOnce (url: string, path = '/index.html'): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(ms(10_000), () => { req.destroy(new Error('client timeout')) })
    req.end()
  })
}

/** Until every worker routes (several connections in a row answered 200); returns the 200s, each one counted request. */
async function untilRouting (url: string): Promise<number> {
  let routed = 0
  await until(async () => {
    for (let i = 0; i < 4; i++) {
      if ((await getOnce(url, '/probe')).status !== 200) return false
      routed++
    }
    return true
  }, { timeoutMs: ms(20_000), intervalMs: 50, message: 'every worker routing' })
  return routed
}

/** `n` GETs, `concurrency` at a time, each on its own connection; returns the successes. */
async function sendRequests (url: string, n: number, concurrency = 8, path = '/index.html'): Promise<number> {
  let next = 0
  let ok = 0
  const loop = async (): Promise<void> => {
    while (next < n) {
      next++
      if ((await getOnce(url, path)).status === 200) ok++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop))
  return ok
}

async function totalCount (session: ZkSession, names: string[]): Promise<number> {
  let sum = 0
  for (const n of names) sum += await readCount(session, `/targets/${n}`)
  return sum
}

describe('zkproxy proxy --workers 2', () => {
  it('requests reach every worker, and the admin metrics and ZooKeeper counts add up to the requests sent', async () => {
    const { connect, session } = await setUp(['a', 'b'])
    const proxy = await startProxy(connect, ['--cache-ttl', '0'])
    const rows = await workers(proxy)
    expect(rows.map(r => r.slot)).toEqual([0, 1])
    expect(new Set(rows.map(r => r.pid)).size).toBe(2)
    const probes = await untilRouting(proxy.url)
    const before = await metricSum(proxy, 'zkproxy_requests_total')
    expect(before).toBe(probes)

    const sent = 200
    expect(await sendRequests(proxy.url, sent)).toBe(sent)

    await until(async () => await metricSum(proxy, 'zkproxy_requests_total') - before === sent, { timeoutMs: ms(10_000), message: 'zkproxy_requests_total summed over the workers' })
    await until(async () => await totalCount(session, ['a', 'b']) === probes + sent, { timeoutMs: ms(10_000), message: 'ZooKeeper counts' })
    const after = await workers(proxy)
    for (const r of after) expect(r.requests).toBeGreaterThan(0)
    expect(after.reduce((s, r) => s + r.requests, 0)).toBe(probes + sent)
    expect(await metricSum(proxy, 'zkproxy_workers')).toBe(2)
  })

  it('counts are exact with two proxies of two workers each', async () => {
    const names = ['a', 'b']
    const { connect, session } = await setUp(names)
    const both = await Promise.all([startProxy(connect, ['--cache-ttl', '0', '--id', 'p1']), startProxy(connect, ['--cache-ttl', '0', '--id', 'p2'])])
    const probes = (await Promise.all(both.map(async p => await untilRouting(p.url)))).reduce((a, b) => a + b, 0)

    const each = 250
    const ok = await Promise.all(both.map(async p => await sendRequests(p.url, each)))
    expect(ok).toEqual([each, each])
    await until(async () => await totalCount(session, names) === probes + 2 * each, { timeoutMs: ms(10_000), message: 'ZooKeeper counts of both proxies' })
    // A graceful stop writes nothing more (no count is written twice).
    for (const p of both) expect(await p.proc.stop('SIGTERM', ms(10_000))).toBe(0)
    expect(await totalCount(session, names)).toBe(probes + 2 * each)
  })

  it('a SIGKILLed worker is restarted and costs at most the requests it held', async () => {
    const { connect, backends } = await setUp(['a', 'b'])
    // Slow enough that requests are in flight when the worker dies.
    for (const b of backends) {
      b.handler = (_req, res) => { setTimeout(() => { res.end('ok') }, 20) }
    }
    const proxy = await startProxy(connect, ['--cache-ttl', '0'])
    await untilRouting(proxy.url)
    const victim = (await workers(proxy))[0]!

    let outstanding = 0
    let ok = 0
    const failures: string[] = []
    let inFlightAtKill: number | undefined
    const state = { running: true }
    const deadline = Date.now() + ms(30_000)
    const loop = async (): Promise<void> => {
      while (state.running && Date.now() < deadline) {
        outstanding++
        try {
          const r = await getOnce(proxy.url)
          if (r.status === 200) ok++
          else failures.push(`status ${r.status}`)
        } catch (err) {
          failures.push((err as Error).message)
        } finally {
          outstanding--
        }
      }
    }
    const load = Array.from({ length: 8 }, loop)
    try {
      await until(() => ok >= 100, { timeoutMs: ms(15_000), message: '100 requests before the kill' })
      inFlightAtKill = outstanding
      process.kill(victim.pid!, 'SIGKILL')
      const replaced = await untilValue(async () => {
        const row = (await workers(proxy))[victim.slot]!
        return row.pid !== undefined && row.pid !== victim.pid ? row : undefined
      }, { timeoutMs: ms(15_000), message: 'the worker restarted' })
      expect(replaced.restarts).toBe(1)
      // The new worker serves: its slot's routed requests grow again.
      const routedBefore = replaced.requests
      await until(async () => (await workers(proxy))[victim.slot]!.requests > routedBefore, { timeoutMs: ms(15_000), message: 'the restarted worker routing' })
      const target = ok + 100
      await until(() => ok >= target, { timeoutMs: ms(15_000), message: '100 more requests after the restart' })
    } finally {
      state.running = false
      await Promise.all(load)
    }
    expect(failures.length).toBeLessThanOrEqual(inFlightAtKill)
    const died = proxy.proc.output().split('\n').filter(l => l.includes('"worker died; restarting it"')).map(l => JSON.parse(l) as { workerPid: number, signal: string })
    expect(died).toEqual([expect.objectContaining({ workerPid: victim.pid, signal: 'SIGKILL' })])
  })

  it('a /cacheAge change clears the cache of every worker', async () => {
    const connect = await chrootConnect(zk!.connectString, 'workers')
    const session = await connectSession(connect)
    await session.create('/cacheAge', Buffer.from('r1'))
    let version = 'v1'
    const b = await startBackend('a', (_req, res) => {
      res.setHeader('cache-control', 'max-age=600')
      res.end(version)
    })
    await registerTarget(session, '/targets', b.name, b.url)
    const proxy = await startProxy(connect, ['--cache-ttl', '600'])
    await untilRouting(proxy.url)
    const storedBefore = await metricSum(proxy, 'zkproxy_cache_stores_total')

    // Until each worker holds its own copy of /page (one store per worker).
    await until(async () => {
      await getOnce(proxy.url, '/page')
      return await metricSum(proxy, 'zkproxy_cache_stores_total') - storedBefore >= 2
    }, { timeoutMs: ms(10_000), message: 'a stored copy in each worker' })
    expect(await metricSum(proxy, 'zkproxy_cache_stores_total') - storedBefore).toBe(2)
    version = 'v2'
    for (let i = 0; i < 6; i++) expect((await getOnce(proxy.url, '/page')).body).toBe('v1')

    await session.set('/cacheAge', Buffer.from('r2'), -1)
    await until(async () => await metricSum(proxy, 'zkproxy_cache_clears_total') === 2, { timeoutMs: ms(10_000), message: 'both workers cleared' })
    for (let i = 0; i < 6; i++) expect((await getOnce(proxy.url, '/page')).body).toBe('v2')
  })

  it('SIGTERM drains every worker and the proxy exits within --drain-ms + 1 s', async () => {
    const { connect, session, backends } = await setUp(['a'])
    backends[0]!.handler = (req, res) => {
      if (req.url === '/slow') setTimeout(() => { res.end('slow done') }, 1000)
      else res.end('ok')
    }
    const drainMs = 3000
    const proxy = await startProxy(connect, ['--cache-ttl', '0', '--drain-ms', String(drainMs)])
    const probes = await untilRouting(proxy.url)

    // Slow requests held by both workers (each new connection goes to the next worker).
    const slow = Array.from({ length: 4 }, async () => await getOnce(proxy.url, '/slow'))
    // All four received (a connection still in the listen queue at SIGTERM would be refused,
    // with or without workers), and both workers holding some.
    await until(async () => {
      const rows = await workers(proxy)
      return rows.every(r => r.inFlight > 0) && rows.reduce((n, r) => n + r.inFlight, 0) === 4
    }, { timeoutMs: ms(5000), message: 'both workers holding the four requests' })
    const t0 = Date.now()
    proxy.proc.child.kill('SIGTERM')
    const results = await Promise.all(slow)
    const exit = await proxy.proc.exited
    const elapsed = Date.now() - t0

    expect(results.map(r => r.status)).toEqual([200, 200, 200, 200])
    expect(exit.code).toBe(0)
    expect(elapsed).toBeLessThan(drainMs + 1000)
    // Every worker's last report reached the primary before its final flush.
    expect(await totalCount(session, ['a'])).toBe(probes + 4)
    const lines = proxy.proc.output().split('\n').filter(l => l.includes('"worker died'))
    expect(lines).toEqual([])
  })

  it('a taken --listen port ends start-up with one line and exit 2; a bad --workers value too', async () => {
    const taken = createServer()
    await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
    try {
      const port = (taken.address() as AddressInfo).port
      const r = await runCli(['proxy', '--zk', zk!.connectString, '--workers', '2', '--listen', `127.0.0.1:${port}`, '--admin', 'off'], { timeoutMs: ms(20_000) })
      expect(r.code).toBe(2)
      expect(r.lines).toEqual([expect.stringMatching(/^zkproxy proxy: .*--listen.*\(ZKPROXY_ERR_PROXY_LISTEN\)$/)])
    } finally {
      await new Promise<void>(resolve => taken.close(() => { resolve() }))
    }
    for (const bad of ['0', 'many', '-1']) {
      const r = await runCli(['proxy', '--workers', bad], { timeoutMs: ms(10_000) })
      expect(r.code).toBe(2)
      expect(r.lines).toEqual([expect.stringMatching(/^zkproxy.*--workers/)])
    }
  })
})
