// `--route` through the built CLI against a real ZooKeeper: `zkproxy replica` and `zkproxy
// register` write the routes into their znodes (flag and env twin), `zkproxy status` shows them
// and the pools they form, and a bad value exits 2 with one line naming it.
import { createServer, type Server } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { StatusReport } from '../../src/cli/status-command.js'
import { decodeTarget } from '../../src/registry/codec.js'
import type { ZkSession } from '../../src/zk/index.js'
import { runCli, startCli } from '../support/cli.js'
import { stopAllTracked, type TrackedProcess } from '../support/processes.js'
import { until } from '../support/until.js'
import { chrootConnect, closeAllSessions, connectSession } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

let zk: ZkCluster
let zkConnect: string
let observer: ZkSession
// Stopped by PID after each test; stopAllTracked() would also kill this file's ZooKeeper JVM.
const procs: TrackedProcess[] = []
const backends: Server[] = []

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
  zkConnect = await chrootConnect(zk.connectString, 'e2e-routes')
  observer = await connectSession(zkConnect)
})

afterEach(async () => {
  await Promise.all(procs.splice(0).map(async (p) => { p.kill(); await p.exited }))
  for (const b of backends.splice(0)) {
    b.closeAllConnections()
    await new Promise<void>((resolve) => { b.close(() => { resolve() }) })
  }
})

afterAll(async () => {
  await stopAllTracked()
  await closeAllSessions()
  await zk?.stop()
})

async function startBackend (): Promise<string> {
  const server = createServer((_req, res) => { res.end('backend') })
  backends.push(server)
  await new Promise<void>((resolve) => { server.listen({ host: '127.0.0.1', port: 0 }, resolve) })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

async function routesIn (path: string): Promise<unknown> {
  return (JSON.parse((await observer.get(path)).data.toString('utf8')) as { routes?: unknown }).routes
}

describe('--route', () => {
  it('replica (flags) and register (ZKPROXY_ROUTE) write their routes; status shows them and the pools', async () => {
    const replica = await startCli([
      'replica', '--zk', zkConnect, '--port', '0', '--name', 'shop-1', '--session-timeout-ms', '4000',
      '--route', 'Shop.Example.com', '--route', 'example.com/api/', '--strip-prefix'
    ], 'replica listening')
    procs.push(replica.proc)
    expect(replica.ready['routes']).toEqual(['Shop.Example.com', 'example.com/api/'])
    await until(async () => await observer.exists('/targets/shop-1') !== null, { message: 'replica registered' })
    expect(await routesIn('/targets/shop-1')).toEqual(['Shop.Example.com', 'example.com/api/'])
    expect(JSON.parse((await observer.get('/targets/shop-1')).data.toString())).toHaveProperty('stripPrefix', true)
    const decoded = decodeTarget('shop-1', (await observer.get('/targets/shop-1')).data)
    expect(decoded.ok && decoded.target.routes?.map(r => r.key)).toEqual(['shop.example.com', 'example.com/api'])

    const url = await startBackend()
    const sidecar = await startCli(['register', '--zk', zkConnect, '--url', url, '--name', 'shop-2', '--session-timeout-ms', '4000'], 'register running', {
      env: { ZKPROXY_ROUTE: 'shop.example.com, blog.example.com' }
    })
    procs.push(sidecar.proc)
    await until(async () => await observer.exists('/targets/shop-2') !== null, { message: 'sidecar registered' })
    expect(await routesIn('/targets/shop-2')).toEqual(['shop.example.com', 'blog.example.com'])

    const json = await runCli(['status', '--zk', zkConnect, '--json'])
    expect(json.code, json.output).toBe(0)
    const report = JSON.parse(json.output) as StatusReport
    expect(report.targets.map(t => [t.name, t.routes, t.stripPrefix])).toEqual([
      ['shop-1', ['shop.example.com', 'example.com/api'], true],
      ['shop-2', ['shop.example.com', 'blog.example.com'], false]
    ])
    expect(report.pools).toEqual([
      { route: 'blog.example.com', targets: ['shop-2'] },
      { route: 'example.com/api', targets: ['shop-1'] },
      { route: 'shop.example.com', targets: ['shop-1', 'shop-2'] }
    ])
    const table = await runCli(['status', '--zk', zkConnect])
    expect(table.code, table.output).toBe(0)
    expect(table.output).toMatch(/^shop-1\s.*\sshop\.example\.com,example\.com\/api \(strip-prefix\)$/m)
    expect(table.output).toMatch(/^shop-2\s.*\sshop\.example\.com,blog\.example\.com$/m)
    expect(table.output).toMatch(/^shop\.example\.com\s+shop-1, shop-2$/m)
    expect(table.output).toContain('No default pool')

    // Deregistering removes the target, and so its routes, from what status reports.
    sidecar.proc.signal('SIGTERM')
    expect(await sidecar.proc.exited).toEqual({ code: 0, signal: null })
    const after = JSON.parse((await runCli(['status', '--zk', zkConnect, '--json'])).output) as StatusReport
    expect(after.pools.map(p => p.route)).toEqual(['example.com/api', 'shop.example.com'])
  })

  const bad = ['example.com:8080', 'http://example.com', 'exa mple.com', '/api', '*.*.example.com']
  it.each(bad)('exits 2 with one line naming %j, from the flag and from ZKPROXY_ROUTE', async (value) => {
    const runs = [
      runCli(['replica', '--zk', '127.0.0.1:1', '--port', '0', '--route', 'ok.example.com', '--route', value]),
      runCli(['register', '--zk', '127.0.0.1:1', '--url', 'http://127.0.0.1:1', '--route', value]),
      runCli(['register', '--zk', '127.0.0.1:1', '--url', 'http://127.0.0.1:1'], { env: { ZKPROXY_ROUTE: `ok.example.com,${value}` } })
    ]
    for (const [i, r] of (await Promise.all(runs)).entries()) {
      expect(r.code, r.output).toBe(2)
      expect(r.lines, r.output).toHaveLength(1)
      expect(r.lines[0]).toContain(value)
      expect(r.lines[0]).toContain(i === 2 ? 'ZKPROXY_ROUTE' : '--route')
    }
  })

  it('exits 2 with one line when --strip-prefix has no route with a path prefix to strip', async () => {
    const r = await runCli(['replica', '--zk', '127.0.0.1:1', '--port', '0', '--route', 'shop.example.com', '--strip-prefix'])
    expect(r.code, r.output).toBe(2)
    expect(r.lines, r.output).toHaveLength(1)
    expect(r.lines[0]).toContain('--strip-prefix needs a --route with a path prefix')
  })
})
