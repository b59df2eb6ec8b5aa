// `zkproxy status` as a process against a real ZooKeeper: the table names the registered
// target and the announced proxy, --json parses to the same facts, an empty targets path
// exits 1, an unreachable ZooKeeper is one line and exit 2 within its --timeout-ms, and a
// SIGKILLed replica shows as ejected by the proxy that tried it long before its session ends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startCli } from '../support/cli.js'
import { freePort } from '../support/ports.js'
import { stopAllTracked, type TrackedProcess } from '../support/processes.js'
import { registerTarget } from '../support/proxy.js'
import { ms, until, untilValue } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import type { StatusReport } from '../../src/cli/status-command.js'
import { CreateMode } from '../../src/zk/index.js'

let zk: ZkCluster
let connect: string
let proxy: TrackedProcess

beforeAll(async () => {
  zk = await startZooKeeper()
  // This file's own chroot, so other files sharing the ZooKeeper never show up here.
  const chroot = uniquePath('e2e-status')
  const root = await connectSession(zk.connectString)
  await root.mkdirp(chroot)
  connect = `${zk.connectString}${chroot}`
  const session = await connectSession(connect)
  await registerTarget(session, '/targets', 'web-1', 'http://127.0.0.1:4001', 42)
  // A znode no proxy can route to: status lists it as malformed instead of failing.
  await session.create('/targets/broken', Buffer.from('not json'), CreateMode.EPHEMERAL)
  await session.create('/cacheAge', Buffer.from('rev-e2e'))
  proxy = (await startCli(['proxy', '--zk', connect, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--id', 'e2e-proxy', '--session-timeout-ms', '4000'], 'proxy listening')).proc
})

afterAll(async () => {
  await stopAllTracked()
  await closeAllSessions()
  await zk?.stop()
})

/** Status as JSON once the proxy's announcement is there (it follows its session). */
async function statusWithProxy (): Promise<StatusReport> {
  return await untilValue(async () => {
    const { code, output } = await runCli(['status', '--zk', connect, '--json'])
    if (code !== 0) throw new Error(`exit ${String(code)}: ${output}`)
    const report = JSON.parse(output) as StatusReport
    return report.proxies.length > 0 ? report : undefined
  }, { timeoutMs: ms(20_000), message: 'status to list the proxy' })
}

describe('zkproxy status', () => {
  it('--json reports targets, shares, malformed znodes, the revision and the proxies', async () => {
    const report = await statusWithProxy()
    expect(report.zk).toBe(connect)
    expect(report.revision).toBe('rev-e2e')
    expect(report.targets).toEqual([expect.objectContaining({ name: 'web-1', url: 'http://127.0.0.1:4001', requests: 42, share: 1 })])
    expect(report.totalRequests).toBe(42)
    expect(report.malformed).toEqual([{ name: 'broken', reason: expect.stringMatching(/neither JSON nor a decimal integer/) }])
    expect(report.proxies).toEqual([expect.objectContaining({ id: 'e2e-proxy', pid: proxy.pid, url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) })])
    expect(report.proxies[0]?.admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(report.targets[0]).toMatchObject({ health: 'ok', ejectedBy: [], drainedBy: [], revision: null, routes: [] })
    expect(report.revisions).toEqual([{ revision: null, targets: ['web-1'] }])
  })

  it('prints an aligned table with the target and the proxy, exit 0', async () => {
    await statusWithProxy()
    const { code, output } = await runCli(['status', '--zk', connect])
    expect(code).toBe(0)
    const lines = output.split('\n')
    const head = lines.find((l) => l.startsWith('TARGET'))
    const row = lines.find((l) => l.startsWith('web-1'))
    expect(head).toBeDefined()
    expect(row).toMatch(/^web-1\s+http:\/\/127\.0\.0\.1:4001\s+42\s+100\.0%/)
    // Aligned: each column starts where its heading starts.
    expect(row?.indexOf('http://')).toBe(head?.indexOf('URL'))
    expect(output).toMatch(/^e2e-proxy\s+http:\/\/127\.0\.0\.1:\d+\s+http:\/\/127\.0\.0\.1:\d+\s+\d+\s+\d+s\s+-$/m)
    expect(output).toMatch(/broken: .*neither JSON/)
    expect(output).toContain('revision rev-e2e')
  })

  it('exits 1 when no target is registered', async () => {
    const { code, output } = await runCli(['status', '--zk', connect, '--targets-path', '/nothing-here'])
    expect(code).toBe(1)
    expect(output).toContain('No target is registered under /nothing-here.')
    const json = await runCli(['status', '--zk', connect, '--targets-path', '/nothing-here', '--json'])
    expect(json.code).toBe(1)
    expect((JSON.parse(json.output) as StatusReport).targets).toEqual([])
  })

  it('says in one line that ZooKeeper is unreachable and exits 2 within its timeout', async () => {
    const port = await freePort() // nothing listens there
    const started = Date.now()
    const { code, output } = await runCli(['status', '--zk', `127.0.0.1:${port}`, '--timeout-ms', '1500'])
    expect(code).toBe(2)
    expect(output.trim().split('\n')).toEqual([`zkproxy status: cannot reach ZooKeeper at 127.0.0.1:${port} within 1500 ms (is it running? check --zk / ZK_CONNECT)`])
    expect(Date.now() - started).toBeLessThan(ms(10_000))
  })

  it('shows a SIGKILLed replica as ejected by the proxy that tried it, before its session times out', async () => {
    // Roots of their own, so the unreachable web-1 above plays no part.
    const targetsRoot = ['--targets-path', '/health/targets']
    const roots = [...targetsRoot, '--proxies-path', '/health/proxies']
    const replicaSessionMs = 30_000
    const replica = await startCli(['replica', '--zk', connect, '--port', '0', '--name', 'doomed', '--session-timeout-ms', String(replicaSessionMs), ...targetsRoot], 'replica listening')
    const p = await startCli(['proxy', '--zk', connect, '--listen', '127.0.0.1:0', '--admin', 'off', '--id', 'health-proxy', '--session-timeout-ms', '4000', ...roots], 'proxy listening')
    const url = String(p.ready['url'])
    await until(async () => (await fetch(url, { headers: { 'cache-control': 'no-store' } })).status === 200, { timeoutMs: ms(15_000), message: 'the proxy to route to the replica' })
    replica.proc.kill()
    await replica.proc.exited
    const killedAt = Date.now()
    // One failed request is enough: its only target is then held as failing.
    expect((await fetch(url, { headers: { 'cache-control': 'no-store' } })).status).toBe(502)
    const report = await untilValue(async () => {
      const { output } = await runCli(['status', '--zk', connect, '--json', ...roots])
      const r = JSON.parse(output) as StatusReport
      return r.targets[0]?.health === 'ejected' ? r : undefined
    }, { timeoutMs: ms(15_000), message: 'status to show the replica ejected' })
    // Still registered: its znode lives until the session times out, yet status says the truth.
    expect(Date.now() - killedAt).toBeLessThan(replicaSessionMs)
    expect(report.targets).toEqual([expect.objectContaining({ name: 'doomed', health: 'ejected', ejectedBy: ['health-proxy'], drainedBy: [] })])
    expect(report.proxies).toEqual([expect.objectContaining({ id: 'health-proxy', ejected: ['doomed'], drained: [], connectedSince: expect.any(String) })])
    const table = await runCli(['status', '--zk', connect, ...roots])
    expect(table.output).toMatch(/^doomed\s.*\sejected by health-proxy\s/m)
  })
})
