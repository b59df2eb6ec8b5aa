// `zkproxy replica` as a real process (the built CLI) against a real ZooKeeper: it registers
// itself, serves the folder with x-served-by, deregisters on SIGTERM before it stops answering,
// refuses path traversal, and fails start-up with exit 2 and one line.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { connect, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { decodeTarget } from '../../src/registry/codec.js'
import type { ZkSession } from '../../src/zk/index.js'
import { runCli, startCli, type StartedCli } from '../support/cli.js'
import { stopAllTracked, type TrackedProcess } from '../support/processes.js'
import { ms, until } from '../support/until.js'
import { chrootConnect, closeAllSessions, connectSession } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

let zk: ZkCluster
let zkConnect: string
let observer: ZkSession
let site: string
const servers: Server[] = []
// Stopped by PID after each test; stopAllTracked() would also kill this file's ZooKeeper JVM.
const procs: TrackedProcess[] = []

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
  // This file's own chroot: the replica sees it as /, we read it with the prefix.
  zkConnect = await chrootConnect(zk.connectString, 'e2e-replica')
  observer = await connectSession(zkConnect)
  // A site with a secret next to it (not in it), and a symlink pointing at that secret.
  const base = await mkdtemp(join(tmpdir(), 'zkproxy-site-'))
  site = join(base, 'site')
  await mkdir(join(site, 'sub'), { recursive: true })
  await writeFile(join(site, 'index.html'), '<h1>hello</h1>')
  await writeFile(join(site, 'sub', 'page.html'), 'page')
  await writeFile(join(base, 'secret.txt'), 'TOPSECRET')
  await symlink(join(base, 'secret.txt'), join(site, 'link.txt'))
})

afterEach(async () => {
  await Promise.all(procs.splice(0).map(async (p) => { p.kill(); await p.exited }))
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
})

afterAll(async () => {
  await stopAllTracked()
  await closeAllSessions()
  await zk?.stop()
  if (site !== undefined) await rm(join(site, '..'), { recursive: true, force: true })
})

async function startReplica (...extra: string[]): Promise<StartedCli & { url: string, name: string, path: string }> {
  const started = await startCli(['replica', '--zk', zkConnect, '--port', '0', '--dir', site, '--session-timeout-ms', '4000', ...extra], 'replica listening')
  procs.push(started.proc)
  const url = started.ready['url'] as string
  const name = started.ready['name'] as string
  return { ...started, url, name, path: `/targets/${name}` }
}

/** One request written by hand: fetch() would normalise `..` away before sending it. */
async function rawGet (url: string, target: string): Promise<{ status: number, text: string }> {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      // write, not end: Node's server drops a half-closed connection without answering.
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`)
    })
    socket.setTimeout(ms(5000), () => { socket.destroy(new Error(`no answer to GET ${target}`)) })
    socket.on('data', (c: Buffer) => { chunks.push(c) })
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), text })
    })
  })
}

describe('zkproxy replica', () => {
  it('registers itself with its url and serves the folder with x-served-by', async () => {
    const r = await startReplica('--revision', 'e2e-rev')
    expect(r.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(r.name).toBe(new URL(r.url).host)
    await until(async () => await observer.exists(r.path) !== null, { message: 'znode visible' })
    const decoded = decodeTarget(r.name, (await observer.get(r.path)).data)
    expect(decoded).toMatchObject({ ok: true, target: { url: r.url, requests: 0, revision: 'e2e-rev' } })
    expect((await observer.get('/cacheAge')).data.toString()).toBe('e2e-rev')
    const res = await fetch(`${r.url}/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-served-by')).toBe(r.name)
    expect(res.headers.get('cache-control')).toBe('public, max-age=120')
    expect(await res.text()).toContain('hello')
  })

  it('on SIGTERM deletes its znode first and keeps answering while it drains, then exits 0', async () => {
    const r = await startReplica('--drain-ms', '3000')
    await until(async () => await observer.exists(r.path) !== null, { message: 'znode visible' })
    r.proc.signal('SIGTERM')
    await until(async () => await observer.exists(r.path) === null, { intervalMs: 10, message: 'znode removed after SIGTERM' })
    // The node is gone, and the process still serves stragglers (asking them to close).
    expect(r.proc.running).toBe(true)
    const res = await fetch(`${r.url}/sub/page.html`)
    expect(res.status).toBe(200)
    expect(res.headers.get('connection')).toBe('close')
    expect(await res.text()).toBe('page')
    const exit = await r.proc.exited
    expect(exit).toEqual({ code: 0, signal: null })
    const msgs = r.logs().map(l => l.msg)
    expect(msgs.indexOf('deregistered; draining')).toBeLessThan(msgs.indexOf('replica stopped'))
    await expect(fetch(`${r.url}/`)).rejects.toThrow()
  })

  it('answers path traversal attempts with 404 or 400, never the file outside the folder', async () => {
    const r = await startReplica()
    expect((await rawGet(r.url, '/index.html')).status).toBe(200)
    const attempts = [
      '/../secret.txt', '/sub/../../secret.txt', '/%2e%2e/secret.txt', '/%2e%2e%2fsecret.txt',
      '/sub/%2e%2e/%2e%2e/secret.txt', '/..%5csecret.txt', '/%252e%252e/secret.txt', '/link.txt',
      '/%00', '/index.html%00.txt', '//etc/passwd', '/../../../../../../etc/passwd'
    ]
    for (const target of attempts) {
      const { status, text } = await rawGet(r.url, target)
      expect([400, 404], `${target} → ${status}`).toContain(status)
      expect(text).not.toContain('TOPSECRET')
      expect(text).not.toContain('root:')
    }
  })

  it('exits 2 with one line naming the flag for a bad --port or --zk', async () => {
    for (const [args, flag] of [[['--port', 'abc'], '--port'], [['--port', '0', '--zk', 'nonsense'], '--zk'], [['--port', '70000'], '--port']] as const) {
      const r = await runCli(['replica', ...args])
      expect(r.code, r.output).toBe(2)
      expect(r.lines, r.output).toHaveLength(1)
      expect(r.lines[0]).toContain(flag)
    }
    const env = await runCli(['replica', '--port', '0'], { env: { ZKPROXY_SESSION_TIMEOUT_MS: 'soon' } })
    expect(env.code).toBe(2)
    expect(env.lines, env.output).toHaveLength(1)
    expect(env.lines[0]).toContain('ZKPROXY_SESSION_TIMEOUT_MS')
  })

  it('exits 2 with one line when the port is in use', async () => {
    const busy = createServer()
    servers.push(busy)
    await new Promise<void>((resolve) => { busy.listen({ host: '127.0.0.1', port: 0 }, resolve) })
    const port = (busy.address() as { port: number }).port
    const r = await runCli(['replica', '--zk', zkConnect, '--port', String(port), '--dir', site])
    expect(r.code, r.output).toBe(2)
    expect(r.lines, r.output).toHaveLength(1)
    expect(r.lines[0]).toContain(`port ${port} in use on 127.0.0.1`)
    expect(r.lines[0]).toContain('ZKPROXY_ERR_REPLICA_LISTEN')
  })
})
