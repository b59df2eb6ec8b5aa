// ZooKeeper trouble with nothing lost, everything as real processes: the built `zkproxy proxy`
// and `zkproxy replica`, a real ZooKeeper, a bounded load of GETs (cache off, so every request
// is routed and counted). The contract: no client error, and the counts in ZooKeeper add up to
// exactly the requests routed, whatever the fault.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import { ms, until, untilValue } from '../support/until.js'
import { stopAllTracked } from '../support/processes.js'
import { waitForLog, type LogLine } from '../support/cli.js'
import { closeAllSessions, connectSession } from '../support/zk-client.js'
import { freePort } from '../support/ports.js'
import { loadFor, startLoad, startProxyProcess, startReplica, untilCountsAddUp, untilRegistered, untilRouting, type ReplicaProcess } from '../support/fleet.js'

/** A log line's time in ms (the CLI logs ISO times). */
function timeOf (l: Record<string, unknown>): number {
  const t = l['time']
  return typeof t === 'number' ? t : Date.parse(String(t))
}

let zk: ZkCluster | undefined
const dirs: string[] = []

afterEach(async () => {
  await stopAllTracked()
  await closeAllSessions()
  await zk?.stop()
  zk = undefined
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir (): string {
  const d = mkdtempSync(join(tmpdir(), 'zkproxy-state-'))
  dirs.push(d)
  return d
}

const created = (r: ReplicaProcess): number => r.logs().filter(l => l.msg === 'ephemeral node created').length

async function json<T> (url: string): Promise<{ status: number, body: T }> {
  const r = await request(url)
  return { status: r.statusCode, body: await r.body.json() as T }
}

async function metric (admin: string, name: string): Promise<number> {
  const r = await request(`${admin}/metrics`)
  const text = await r.body.text()
  const line = text.split('\n').find(l => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1))
}

/** Milliseconds from `since` to the first log line matching, by the line's own timestamp. */
function msUntil (lines: LogLine[], since: number, match: (l: LogLine) => boolean): number | undefined {
  const l = lines.find(x => timeOf(x) >= since && match(x))
  return l === undefined ? undefined : timeOf(l) - since
}

describe('ZooKeeper outages under load', () => {
  it('ZooKeeper down 8 s, twice the replicas\' session timeout: they re-register, no client error, counts exact', async () => {
    zk = await startZooKeeper({ nodes: 1 })
    const replicas = await Promise.all(['r1', 'r2'].map(async n => await startReplica(zk!.connectString, n)))
    const observer = await connectSession(zk.connectString)
    // Both registered before any traffic: both start at 0, so the counts add up to what was routed.
    await untilRegistered(observer, ['r1', 'r2'])
    const proxy = await startProxyProcess(zk.connectString, ['--admin', '127.0.0.1:0'])
    const warmup = await untilRouting(proxy.url, 2)
    const load = startLoad(proxy.url)
    await loadFor(load.result, 300)
    await zk.killNode(0)
    const downAt = Date.now()
    let restartAt = 0
    try {
      // Eight seconds of outage, timed by the load that keeps flowing meanwhile.
      await until(() => Date.now() - downAt >= 8000, { timeoutMs: ms(15_000), intervalMs: 100, message: '8 s of outage' })
    } finally {
      restartAt = Date.now()
      await zk.startNode(0)
    }
    const servingMs = Date.now() - restartAt
    // New nodes, same names: the case that used to empty the view and lose counts.
    await until(() => replicas.every(r => created(r) >= 2), { timeoutMs: ms(20_000), message: 'both replicas re-registered' })
    await loadFor(load.result, 300)
    const r = await load.stop()
    expect(r.failures).toEqual([])
    await untilCountsAddUp(observer, warmup + r.ok)
    // Reconnection measured from the restart of the JVM (it serves after `servingMs`).
    const proxyBack = msUntil(proxy.logs(), restartAt, l => l.msg === 'zookeeper session connected')
    const replicasBack = replicas.map(x => msUntil(x.logs(), restartAt, l => l.msg === 'ephemeral node created'))
    console.info(`8 s outage: ${r.ok} requests, 0 errors; from the ZooKeeper restart: serving after ${servingMs} ms, proxy connected after ${String(proxyBack)} ms, replicas re-registered after ${replicasBack.join(', ')} ms; removals held by the grace: ${await metric(proxy.admin!, 'zkproxy_target_removals_deferred_total')}`)
    expect(await metric(proxy.admin!, 'zkproxy_count_dropped_total')).toBe(0)
  })

  it('an outage shorter than the session timeout keeps every session and node, no client error, counts exact', async () => {
    zk = await startZooKeeper({ nodes: 1 })
    const replicas = await Promise.all(['r1', 'r2'].map(async n => await startReplica(zk!.connectString, n, ['--session-timeout-ms', '10000'])))
    const observer = await connectSession(zk.connectString, { sessionTimeoutMs: 10_000 })
    await untilRegistered(observer, ['r1', 'r2'])
    const proxy = await startProxyProcess(zk.connectString, ['--session-timeout-ms', '10000'])
    const warmup = await untilRouting(proxy.url, 2)
    const load = startLoad(proxy.url)
    await loadFor(load.result, 300)
    await zk.killNode(0)
    const downAt = Date.now()
    try {
      await until(() => Date.now() - downAt >= 3000, { timeoutMs: ms(10_000), intervalMs: 100, message: '3 s of outage' })
    } finally {
      await zk.startNode(0)
    }
    await waitForLog(proxy.proc, l => l.msg === 'zookeeper session connected' && timeOf(l) > downAt, ms(20_000), 'proxy reconnected')
    await loadFor(load.result, 300)
    const r = await load.stop()
    expect(r.failures).toEqual([])
    await untilCountsAddUp(observer, warmup + r.ok)
    // The sessions outlived the outage: nothing was re-created.
    expect(replicas.map(created)).toEqual([1, 1])
  })
})

describe('scale-down', () => {
  it('to zero reaches 503 no_targets, at once in steady state and within the grace right after a reconnect', async () => {
    zk = await startZooKeeper({ nodes: 1 })
    const first = await Promise.all(['a1', 'a2'].map(async n => await startReplica(zk!.connectString, n)))
    const proxy = await startProxyProcess(zk.connectString, ['--admin', '127.0.0.1:0'])
    await untilRouting(proxy.url, 2)
    const noTargets = async (): Promise<boolean> => {
      const r = await request(`${proxy.url}/`)
      const body = await r.body.text()
      return r.statusCode === 503 && body.includes('no_targets')
    }
    // Steady state: no grace involved.
    await Promise.all(first.map(async r => await r.proc.stop('SIGTERM', ms(10_000))))
    await until(noTargets, { timeoutMs: ms(5000), message: '503 no_targets after scale-down' })
    expect(await metric(proxy.admin!, 'zkproxy_target_removals_deferred_total')).toBe(0)

    // Right after a reconnect, emptying the pool waits for the grace, then happens anyway.
    const second = await Promise.all(['b1', 'b2'].map(async n => await startReplica(zk!.connectString, n)))
    await untilRouting(proxy.url, 2)
    await zk.stopNode(0)
    const downAt = Date.now()
    await zk.startNode(0)
    await waitForLog(proxy.proc, l => l.msg === 'zookeeper session connected' && timeOf(l) > downAt, ms(20_000), 'proxy reconnected')
    const t0 = Date.now()
    await Promise.all(second.map(async r => await r.proc.stop('SIGTERM', ms(10_000))))
    await until(noTargets, { timeoutMs: ms(15_000), intervalMs: 100, message: '503 no_targets after the grace' })
    const tookMs = Date.now() - t0
    expect(await metric(proxy.admin!, 'zkproxy_target_removals_deferred_total')).toBeGreaterThanOrEqual(1)
    expect(await metric(proxy.admin!, 'zkproxy_target_removals_expired_total')).toBeGreaterThanOrEqual(1)
    console.info(`scale-down to zero right after a reconnect: 503 no_targets after ${tookMs} ms`)
  })
})

describe('--state-file', () => {
  for (const workers of [[], ['--workers', '2']]) {
    it(`a proxy started during an outage serves the saved view (degraded, with its age) until the live one arrives${workers.length > 0 ? ' (--workers 2)' : ''}`, async () => {
      zk = await startZooKeeper({ nodes: 1 })
      const stateFile = join(tempDir(), 'view.json')
      await Promise.all(['s1', 's2'].map(async n => await startReplica(zk!.connectString, n, ['--session-timeout-ms', '30000'])))
      const first = await startProxyProcess(zk.connectString, ['--state-file', stateFile, ...workers])
      await untilRouting(first.url, 2)
      await until(() => {
        try {
          return (JSON.parse(readFileSync(stateFile, 'utf8')) as { targets: unknown[] }).targets.length === 2
        } catch { return false }
      }, { message: 'state file written with both targets' })
      await first.proc.stop('SIGTERM', ms(10_000))

      await zk.stopNode(0)
      const cold = await startProxyProcess(zk.connectString, ['--state-file', stateFile, '--admin', '127.0.0.1:0', ...workers])
      // No ZooKeeper, yet it routes to both replicas from the saved view.
      expect(await untilRouting(cold.url, 2)).toBeGreaterThanOrEqual(2)
      const h = await json<{ status: string, savedView: boolean, viewAgeSeconds: number, reasons: string[] }>(`${cold.admin!}/healthz`)
      expect(h.status).toBe(200)
      expect(h.body).toMatchObject({ status: 'degraded', savedView: true })
      expect(h.body.reasons.join(' ')).toContain(stateFile)
      expect(await metric(cold.admin!, 'zkproxy_targets_view_saved')).toBe(1)
      expect(await metric(cold.admin!, 'zkproxy_targets_view_age_seconds')).toBeGreaterThan(0)

      await zk.startNode(0)
      const live = await untilValue(async () => {
        const r = await json<{ status: string, savedView: boolean }>(`${cold.admin!}/healthz`)
        return r.body.savedView ? undefined : r.body
      }, { timeoutMs: ms(20_000), message: 'live view replaces the saved one' })
      expect(live.status).toBe('ok')
      expect(await metric(cold.admin!, 'zkproxy_targets_view_age_seconds')).toBe(0)
    })
  }

  it('a corrupt state file is a warning, not a crash: the proxy waits for ZooKeeper as without one', async () => {
    const stateFile = join(tempDir(), 'view.json')
    writeFileSync(stateFile, '{"format":1,"savedAt":"yesterday",')
    const nowhere = `127.0.0.1:${await freePort()}`
    const proxy = await startProxyProcess(nowhere, ['--state-file', stateFile])
    const warning = await waitForLog(proxy.proc, 'state file corrupt: starting without a saved view')
    expect(warning.level).toBe(40)
    const r = await request(`${proxy.url}/`)
    expect(r.statusCode).toBe(503)
    expect(await r.body.json()).toMatchObject({ error: 'no_targets' })
    expect(proxy.proc.running).toBe(true)
  })
})

describe('unreachable ZooKeeper', () => {
  it('is one warning naming the ensemble after a few seconds, not a line per retry', async () => {
    const nowhere = `127.0.0.1:${await freePort()},127.0.0.1:${await freePort()}`
    const proxy = await startProxyProcess(nowhere)
    const warning = await waitForLog(proxy.proc, l => l.level === 40 && String(l.msg).startsWith('zookeeper unreachable'), ms(10_000), 'unreachable warning')
    expect(warning.msg).toContain(nowhere)
    expect(warning['zk']).toMatchObject({ connect: nowhere })
    // Absence takes time to show: the client retries every host several times a second, and
    // the next warning is due only 6 s after the first.
    await sleep(3000)
    expect(proxy.logs().filter(l => String(l.msg).startsWith('zookeeper unreachable'))).toHaveLength(1)
  })
})
