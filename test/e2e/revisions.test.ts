// Revisions that mean something, with real `zkproxy replica` / `zkproxy register` processes, a
// real ZooKeeper and in-process proxies (the same runtime `zkproxy proxy` runs): a replica
// restarted with the same files keeps every proxy's cache, and a backend registered without
// --revision changes nothing (docs/cache.md "Revisions").
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { decodeTarget } from '../../src/registry/codec.js'
import type { ZkSession } from '../../src/zk/index.js'
import { startCli, type StartedCli } from '../support/cli.js'
import type { TrackedProcess } from '../support/processes.js'
import { startTestProxy, stopAllProxies } from '../support/proxy.js'
import { until } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

let zk: ZkCluster
let observer: ZkSession
let site: string
// Stopped by PID after each test, also when it failed.
const procs: TrackedProcess[] = []
const servers: Server[] = []

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
  observer = await connectSession(zk.connectString)
  // Not in a git repository: the revision comes from the files.
  site = await mkdtemp(join(tmpdir(), 'zkproxy-revsite-'))
  await writeFile(join(site, 'index.html'), '<h1>same content</h1>')
})

afterEach(async () => {
  await stopAllProxies()
  await Promise.all(procs.splice(0).map(async (p) => { p.kill(); await p.exited }))
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
  }
})

afterAll(async () => {
  await closeAllSessions()
  await zk?.stop()
  if (site !== undefined) await rm(site, { recursive: true, force: true })
})

interface Roots { targets: string, cacheAge: string }

async function startReplica (roots: Roots): Promise<StartedCli> {
  const started = await startCli(['replica', '--zk', zk.connectString, '--port', '0', '--dir', site, '--session-timeout-ms', '4000', '--drain-ms', '0',
    '--targets-path', roots.targets, '--cache-age-path', roots.cacheAge], 'replica listening')
  procs.push(started.proc)
  return started
}

async function stop (p: StartedCli): Promise<void> {
  p.proc.signal('SIGTERM')
  expect(await p.proc.exited).toEqual({ code: 0, signal: null })
}

async function xcache (base: string, path: string): Promise<string | undefined> {
  const r = await request(`${base}${path}`)
  await r.body.text()
  expect(r.statusCode).toBe(200)
  return r.headers['x-cache'] as string | undefined
}

describe('content revisions', () => {
  it('a replica restarted with the same files (no git, no --revision) keeps every proxy\'s cache', async () => {
    const roots = { targets: uniquePath('targets'), cacheAge: uniquePath('cacheAge') }
    const first = await startReplica(roots)
    expect(first.ready['revisionSource']).toBe('content')
    const revision = first.ready['revision'] as string
    await until(async () => (await observer.exists(roots.cacheAge)) !== null, { message: '/cacheAge published' })
    const published = await observer.get(roots.cacheAge)
    expect(published.data.toString()).toBe(revision)

    const flags = ['--targets-path', roots.targets, '--cache-age-path', roots.cacheAge]
    const proxies = [await startTestProxy(zk.connectString, flags), await startTestProxy(zk.connectString, flags)]
    await until(() => proxies.every((p) => p.router.targets.length === 1), { message: 'proxies see the replica' })
    for (const p of proxies) {
      expect(await xcache(p.url, '/index.html')).toBe('MISS')
      expect(await xcache(p.url, '/index.html')).toBe('HIT')
    }

    // Restart: the old process leaves, a new one (another port, another name) joins.
    await stop(first)
    const second = await startReplica(roots)
    expect(second.ready['revision']).toBe(revision)
    await until(() => proxies.every((p) => p.router.targets.length === 1 && p.router.targets[0]!.name === second.ready['name']), { message: 'proxies see the new replica' })
    for (const p of proxies) {
      expect(await xcache(p.url, '/index.html')).toBe('HIT')
      expect(p.cache?.stats()).toMatchObject({ clears: 0, revisionDrops: 0 })
    }
    // The same revision was not rewritten.
    expect((await observer.exists(roots.cacheAge))?.mzxid).toBe(published.stat.mzxid)
  })

  it('`register` without --revision publishes none and writes nothing: every cache stays', async () => {
    const roots = { targets: uniquePath('targets'), cacheAge: uniquePath('cacheAge') }
    const replica = await startReplica(roots)
    await until(async () => (await observer.exists(roots.cacheAge)) !== null, { message: '/cacheAge published' })
    const published = await observer.get(roots.cacheAge)
    const flags = ['--targets-path', roots.targets, '--cache-age-path', roots.cacheAge]
    const proxy = await startTestProxy(zk.connectString, flags)
    await until(() => proxy.router.targets.length === 1, { message: 'proxy sees the replica' })
    expect(await xcache(proxy.url, '/index.html')).toBe('MISS')

    const backend = createServer((_req, res) => { res.end('other backend') })
    servers.push(backend)
    await new Promise<void>((resolve) => { backend.listen(0, '127.0.0.1', resolve) })
    const url = `http://127.0.0.1:${(backend.address() as { port: number }).port}`
    const sidecar = await startCli(['register', '--zk', zk.connectString, '--url', url, '--session-timeout-ms', '4000',
      '--targets-path', roots.targets, '--cache-age-path', roots.cacheAge], 'register running')
    procs.push(sidecar.proc)
    expect(sidecar.ready['revisionSource']).toBe('none')
    const name = sidecar.ready['name'] as string
    await until(() => proxy.router.targets.length === 2, { message: 'proxy sees the sidecar\'s target' })
    const target = decodeTarget(name, (await observer.get(`${roots.targets}/${name}`)).data)
    expect(target.ok && target.target.revision).toBe(undefined)
    expect((await observer.exists(roots.cacheAge))?.mzxid).toBe(published.stat.mzxid)
    expect(await xcache(proxy.url, '/index.html')).toBe('HIT')
    expect(proxy.cache?.stats()).toMatchObject({ clears: 0, revisionDrops: 0 })
    await stop(sidecar)
    await stop(replica)
  })
})
