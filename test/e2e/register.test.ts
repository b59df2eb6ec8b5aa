// `zkproxy register` as a real process (the built CLI) beside a tiny node:http backend whose
// health the test toggles: it holds the znode only while the backend is healthy, removes it on
// SIGTERM, and fails start-up with exit 2 and one line for bad flags or an unreachable --url.
import { createServer, type Server } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { decodeTarget } from '../../src/registry/codec.js'
import type { ZkSession } from '../../src/zk/index.js'
import { runCli, startCli } from '../support/cli.js'
import { freePort } from '../support/ports.js'
import { stopAllTracked, type TrackedProcess } from '../support/processes.js'
import { ms, until } from '../support/until.js'
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
  zkConnect = await chrootConnect(zk.connectString, 'e2e-register')
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

/** A backend on a free loopback port; /healthz answers 200 or 503 as `state.healthy` says. */
async function startBackend (): Promise<{ url: string, state: { healthy: boolean, checks: number } }> {
  const state = { healthy: true, checks: 0 }
  const server = createServer((req, res) => {
    if (req.url === '/healthz') {
      state.checks++
      res.statusCode = state.healthy ? 200 : 503
      res.end(state.healthy ? 'ok' : 'sick')
      return
    }
    res.end('backend')
  })
  backends.push(server)
  await new Promise<void>((resolve) => { server.listen({ host: '127.0.0.1', port: 0 }, resolve) })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, state }
}

async function present (path: string): Promise<boolean> {
  return await observer.exists(path) !== null
}

describe('zkproxy register', () => {
  it('registers a running backend and deletes the znode on SIGTERM (exit 0)', async () => {
    const b = await startBackend()
    const started = await startCli(['register', '--zk', zkConnect, '--url', b.url, '--revision', 'reg-rev', '--session-timeout-ms', '4000'], 'register running')
    procs.push(started.proc)
    const name = new URL(b.url).host
    expect(started.ready['name']).toBe(name)
    const path = `/targets/${name}`
    await until(async () => await present(path), { message: 'znode visible' })
    expect(decodeTarget(name, (await observer.get(path)).data)).toMatchObject({ ok: true, target: { url: b.url, requests: 0, revision: 'reg-rev' } })
    started.proc.signal('SIGTERM')
    expect(await started.proc.exited).toEqual({ code: 0, signal: null })
    expect(await present(path)).toBe(false)
  })

  it('with --health-path, removes the znode while the backend is unhealthy and restores it after', async () => {
    const b = await startBackend()
    const started = await startCli([
      'register', '--zk', zkConnect, '--url', b.url, '--name', 'flapper', '--health-path', '/healthz',
      '--health-interval-ms', '100', '--health-timeout-ms', '500', '--unhealthy-after', '2', '--healthy-after', '2'
    ], 'register running')
    procs.push(started.proc)
    const path = '/targets/flapper'
    await until(async () => await present(path), { message: 'registered while healthy' })
    for (let round = 1; round <= 2; round++) {
      b.state.healthy = false
      await until(async () => !await present(path), { timeoutMs: ms(5000), message: `round ${round}: removed while unhealthy` })
      b.state.healthy = true
      await until(async () => await present(path), { timeoutMs: ms(5000), message: `round ${round}: restored after recovery` })
    }
    expect(decodeTarget('flapper', (await observer.get(path)).data)).toMatchObject({ ok: true, target: { url: b.url } })
    const msgs = started.logs().map(l => l.msg)
    expect(msgs.filter(m => m === 'backend unhealthy: deregistering')).toHaveLength(2)
    expect(msgs.filter(m => m === 'backend healthy: registering')).toHaveLength(3)
    expect(b.state.checks).toBeGreaterThan(4)
    started.proc.signal('SIGTERM')
    expect(await started.proc.exited).toEqual({ code: 0, signal: null })
    expect(await present(path)).toBe(false)
  })

  it('exits 2 with one line naming the url when the backend does not answer', async () => {
    const url = `http://127.0.0.1:${await freePort()}`
    const r = await runCli(['register', '--zk', zkConnect, '--url', url])
    expect(r.code, r.output).toBe(2)
    expect(r.lines, r.output).toHaveLength(1)
    expect(r.lines[0]).toContain(url)
    expect(r.lines[0]).toContain('ZKPROXY_ERR_REPLICA_BACKEND_UNREACHABLE')
  })

  it('exits 2 with one line naming the flag for a missing or non-http --url', async () => {
    for (const args of [[], ['--url', 'ftp://x'], ['--url', 'not a url'], ['--url', 'http://127.0.0.1:1/some/path']]) {
      const r = await runCli(['register', '--zk', '127.0.0.1:1', ...args])
      expect(r.code, r.output).toBe(2)
      expect(r.lines, r.output).toHaveLength(1)
      expect(r.lines[0]).toContain('--url')
    }
  })
})
