// Abuse of the public listener over raw sockets (docs/security.md "Public listener"): slow
// and idle clients, connection floods, header floods. Request smuggling shapes, oversized
// headers and bodies are in test/integration/proxy-requests.test.ts ("request shapes get
// explicit answers"); admin isolation in test/integration/admin.test.ts.
import { connect, type Socket } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { closeAllBackends, startBackend, type Backend } from '../support/backends.js'
import { registerTarget, startTestProxy, stopAllProxies } from '../support/proxy.js'
import { ms, until } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

let zk: ZkCluster
const sockets: Socket[] = []

beforeAll(async () => { zk = await startZooKeeper({ nodes: 1 }) })

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await stopAllProxies()
  await closeAllBackends()
  await closeAllSessions()
})

afterAll(async () => { await zk?.stop() })

async function setup (args: string[]): Promise<{ proxy: ProxyRuntime, backend: Backend, port: number }> {
  const s = await connectSession(zk.connectString)
  const targets = uniquePath('targets')
  const backend = await startBackend('b')
  await registerTarget(s, targets, 'b', backend.url)
  const proxy = await startTestProxy(zk.connectString, ['--targets-path', targets, '--cache-ttl', '0', ...args])
  await until(() => proxy.router.targets.length === 1)
  return { proxy, backend, port: Number(new URL(proxy.url).port) }
}

interface Conversation { sock: Socket, text: () => string, closed: Promise<number> }

/** A raw connection; `closed` resolves with the ms from connect to close. */
function open (port: number): Conversation {
  const sock = connect(port, '127.0.0.1')
  sockets.push(sock)
  const started = Date.now()
  let out = ''
  sock.on('data', (c: Buffer) => { out += c.toString('latin1') })
  sock.on('error', () => {})
  const closed = new Promise<number>((resolve) => { sock.on('close', () => { resolve(Date.now() - started) }) })
  return { sock, text: () => out, closed }
}

/** Writes `text` one byte every `everyMs` until the peer closes. */
function dribble (c: Conversation, text: string, everyMs: number): void {
  let i = 0
  const timer = setInterval(() => {
    if (c.sock.destroyed || i >= text.length) { clearInterval(timer); return }
    c.sock.write(text[i++]!)
  }, everyMs)
  void c.closed.then(() => { clearInterval(timer) })
}

describe('slow and idle clients', () => {
  it('a slowloris client sending one header byte per second is cut off after --request-timeout-ms with 408', async () => {
    const { port, backend } = await setup(['--request-timeout-ms', '1500'])
    const c = open(port)
    dribble(c, 'GET / HTTP/1.1\r\nHost: slow.example\r\nX-Pad: aaaaaaaaaaaaaaaaaaaa\r\n\r\n', 1000)
    const elapsed = await c.closed
    expect(c.text()).toMatch(/^HTTP\/1\.1 408 /)
    expect(elapsed).toBeGreaterThanOrEqual(1400)
    // Node sweeps its connections every --request-timeout-ms / 4 here (30 s by default).
    expect(elapsed).toBeLessThan(ms(4000))
    expect(backend.hits()).toBe(0)
  })

  it('a request body sent one byte per second is cut off after --request-timeout-ms', async () => {
    const { port } = await setup(['--request-timeout-ms', '1500'])
    const c = open(port)
    c.sock.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n')
    dribble(c, 'x'.repeat(100), 1000)
    const elapsed = await c.closed
    expect(elapsed).toBeLessThan(ms(5000))
  })

  it('a connection that never sends a byte is closed after --request-timeout-ms', async () => {
    const { port } = await setup(['--request-timeout-ms', '1000'])
    const c = open(port)
    expect(await c.closed).toBeLessThan(ms(3500))
  })

  it('an idle keep-alive connection is closed after --keep-alive-timeout-ms', async () => {
    const { port } = await setup(['--keep-alive-timeout-ms', '500'])
    const c = open(port)
    c.sock.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => /\r\n\r\n/.test(c.text()), { message: 'first response' })
    const idleFrom = Date.now()
    await c.closed
    expect(Date.now() - idleFrom).toBeLessThan(ms(3000))
  })
})

describe('floods', () => {
  it('connections past --max-connections are dropped; the ones inside keep working', async () => {
    const { port, backend } = await setup(['--max-connections', '2', '--keep-alive-timeout-ms', '30000'])
    const held = [open(port), open(port)]
    for (const c of held) c.sock.write('GET /held HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => held.every(c => /^HTTP\/1\.1 200/.test(c.text())), { message: 'two connections served' })
    const extra = open(port)
    extra.sock.write('GET /extra HTTP/1.1\r\nHost: a\r\n\r\n')
    await extra.closed
    expect(extra.text()).toBe('')
    expect(backend.hits('/extra')).toBe(0)
    held[0]!.sock.write('GET /again HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => backend.hits('/again') === 1, { message: 'a held connection still works' })
  })

  it.each([101, 2500])('a request with %i header fields gets 431 and never reaches a backend (Node alone would drop fields past ~1000 silently)', async (n) => {
    const { port, backend } = await setup([])
    let head = 'GET /many HTTP/1.1\r\nHost: a\r\nConnection: close\r\n'
    for (let i = 0; head.split('\r\n').length - 2 < n; i++) head += `x${i}:\r\n`
    const c = open(port)
    c.sock.write(`${head}\r\n`)
    await c.closed
    expect(c.text()).toMatch(/^HTTP\/1\.1 431 /)
    expect(backend.hits()).toBe(0)
  })

  it('100 header fields are still accepted', async () => {
    const { port, backend } = await setup([])
    let head = 'GET /hundred HTTP/1.1\r\nHost: a\r\nConnection: close\r\n'
    for (let i = 0; i < 98; i++) head += `x${i}: 1\r\n`
    const c = open(port)
    c.sock.write(`${head}\r\n`)
    await c.closed
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 /)
    expect(backend.hits('/hundred')).toBe(1)
  })
})
