// Faults under load with everything as real processes: the built `zkproxy proxy` and
// `zkproxy replica`, a real ZooKeeper (standalone or a 3-node ensemble), a bounded load loop
// of concurrent GETs. The contract: a fault costs no client request that could be saved.
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import { ms, until } from '../support/until.js'
import { stopAllTracked } from '../support/processes.js'
import { startCli, waitForLog } from '../support/cli.js'
import { loadFor, startLoad, startProxyProcess, startReplica, untilCountsAddUp, untilRegistered, untilRouting } from '../support/fleet.js'
import { closeAllSessions, connectSession } from '../support/zk-client.js'
import { closeAllBackends, startBackend, writeChunks } from '../support/backends.js'
import { readCount, registerTarget } from '../support/proxy.js'

let zk: ZkCluster | undefined

afterEach(async () => {
  await stopAllTracked()
  await closeAllBackends()
  await closeAllSessions()
  await zk?.stop()
  zk = undefined
})

describe('replica faults under load', () => {
  it('a SIGKILLed replica (its znode lingers until its session times out) costs zero client errors', async () => {
    zk = await startZooKeeper({ nodes: 1 })
    const replicas = await Promise.all(['r1', 'r2', 'r3'].map(async n => await startReplica(zk!.connectString, n)))
    const proxy = await startProxyProcess(zk.connectString)
    await untilRouting(proxy.url, 3)
    const load = startLoad(proxy.url)
    await loadFor(load.result, 300)
    replicas[0]!.proc.kill()
    await replicas[0]!.proc.exited
    // Keep the load on through the window where r1's znode still exists, and after it goes.
    const s = await connectSession(zk.connectString)
    await until(async () => (await s.exists('/targets/r1')) === null, { timeoutMs: ms(20_000), message: 'r1 znode expired' })
    await loadFor(load.result, 300)
    const r = await load.stop()
    expect(r.failures).toEqual([])
    expect(r.servedBy.get('r2')).toBeGreaterThan(0)
    expect(r.servedBy.get('r3')).toBeGreaterThan(0)
  })

  it('a SIGTERMed replica (deregisters, then drains) costs zero client errors', async () => {
    zk = await startZooKeeper({ nodes: 1 })
    const replicas = await Promise.all(['r1', 'r2'].map(async n => await startReplica(zk!.connectString, n)))
    const proxy = await startProxyProcess(zk.connectString)
    await untilRouting(proxy.url, 2)
    const load = startLoad(proxy.url)
    await loadFor(load.result, 300)
    await replicas[0]!.proc.stop('SIGTERM', ms(10_000))
    await loadFor(load.result, 300)
    const r = await load.stop()
    expect(r.failures).toEqual([])
  })
})

describe('ZooKeeper faults under load', () => {
  it('ZooKeeper killed for several seconds costs zero client errors, and counting resumes', async () => {
    zk = await startZooKeeper({ nodes: 1 })
    const b = await startBackend('b')
    const s = await connectSession(zk.connectString, { sessionTimeoutMs: 15_000 })
    await registerTarget(s, '/targets', 'b', b.url)
    const proxy = await startProxyProcess(zk.connectString, ['--session-timeout-ms', '15000'])
    await untilRouting(proxy.url)
    const load = startLoad(proxy.url)
    await loadFor(load.result, 200)
    await until(async () => (await readCount(s, '/targets/b')) > 0, { message: 'counting' })
    await zk.killNode(0)
    const downAt = Date.now()
    try {
      await loadFor(load.result, 200)
      // Several seconds of outage, measured by requests served meanwhile (no sleep).
      await until(() => Date.now() - downAt > 3000, { timeoutMs: ms(10_000), intervalMs: 100 })
    } finally {
      await zk.startNode(0)
    }
    const servedDuringOutage = load.result.ok
    await loadFor(load.result, 200)
    const r = await load.stop()
    expect(r.failures).toEqual([])
    // Everything routed, including what was counted locally during the outage, reaches ZooKeeper,
    // exactly once. This used to pass only sometimes: a count write in flight when ZooKeeper was
    // killed may have been committed with its reply lost, and the proxy added its delta again
    // (count > hits). The proxies' countedBy ledger makes the retried write idempotent.
    await until(async () => (await readCount(s, '/targets/b').catch(() => -1)) === b.hits(), { timeoutMs: ms(20_000), message: 'ZooKeeper count equals requests served' })
    expect(b.hits()).toBeGreaterThanOrEqual(servedDuringOutage)
  })

  it('killing the leader of a 3-node ensemble costs zero client errors and no count', async () => {
    zk = await startZooKeeper({ nodes: 3 })
    await Promise.all(['r1', 'r2'].map(async n => await startReplica(zk!.connectString, n)))
    const observer = await connectSession(zk.connectString)
    // Both registered before any traffic: both start at 0, so the counts add up to what was routed.
    await untilRegistered(observer, ['r1', 'r2'])
    const proxy = await startProxyProcess(zk.connectString)
    const warmup = await untilRouting(proxy.url, 2)
    const load = startLoad(proxy.url)
    await loadFor(load.result, 300)
    const leader = await zk.leader()
    await zk.killNode(leader)
    await until(async () => (await zk!.leader()) !== leader, { timeoutMs: ms(20_000), message: 'new leader' })
    await loadFor(load.result, 300)
    const r = await load.stop()
    expect(r.failures).toEqual([])
    await untilCountsAddUp(observer, warmup + r.ok)
  })

  it('start order proxy → replicas → ZooKeeper ends with traffic flowing', async () => {
    zk = await startZooKeeper({ nodes: 1 })
    await zk.stopNode(0) // same ports later: ZooKeeper "starts last"
    const { proc: proxyProc, url } = await startProxyProcess(zk.connectString)
    const noView = await request(`${url}/`)
    expect(noView.statusCode).toBe(503)
    expect(await noView.body.json()).toMatchObject({ error: 'no_targets' })
    const r1 = startCli(['replica', '--zk', zk.connectString, '--port', '0', '--name', 'late'], 'replica listening')
    const r1Started = await r1
    await zk.startNode(0)
    await waitForLog(r1Started.proc, l => l.msg === 'ephemeral node created' || l.msg === 'replica registered', ms(20_000), 'registration')
    await until(async () => {
      const r = await request(`${url}/`)
      await r.body.dump()
      return r.statusCode === 200
    }, { timeoutMs: ms(20_000), message: 'traffic flowing' })
    expect(proxyProc.running).toBe(true)
  })
})

describe('streaming', () => {
  // Streaming, not buffering: the proxy's peak RSS grows by a bounded amount whatever the body
  // size. The bound is V8's, not ours: it lets about 64 MB of spent socket buffers pile up
  // before an external-memory GC (measured here: +60-70 MB for 64 MB, 256 MB and 1 GB bodies
  // alike), so a 256 MB body must cost well under half its size.
  it('a 256 MB download through the proxy is streamed: proxy peak RSS grows less than half the body', async () => {
    zk = await startZooKeeper({ nodes: 1 })
    const chunk = Buffer.alloc(64 * 1024, 'd')
    const CHUNKS = 4096 // 256 MB
    const big = await startBackend('big', (_req, res) => { writeChunks(res, chunk, CHUNKS) })
    const s = await connectSession(zk.connectString)
    await registerTarget(s, '/targets', 'big', big.url)
    const proxy = await startProxyProcess(zk.connectString, ['--cache-ttl', '120'])
    await until(async () => {
      const r = await request(`${proxy.url}/warm`, { method: 'HEAD' })
      await r.body.dump()
      return r.statusCode === 200
    })
    const before = peakRss(proxy.proc.pid)
    const r = await request(`${proxy.url}/file.bin`)
    let received = 0
    for await (const c of r.body) received += (c as Buffer).length
    expect(received).toBe(CHUNKS * chunk.length)
    const growth = peakRss(proxy.proc.pid) - before
    console.info(`256 MB download: proxy peak RSS grew ${(growth / 1024 / 1024).toFixed(1)} MB`)
    expect(growth).toBeLessThan(128 * 1024 * 1024)
  })
})

/** VmHWM: the process's peak resident set size, in bytes (Linux). */
function peakRss (pid: number): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(text)?.[1] ?? NaN)
  return kb * 1024
}
