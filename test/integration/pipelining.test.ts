// The request lifecycle is owned by the connection (src/proxy/connection.ts): pipelined requests
// are answered in order, unsafe ones handled one at a time, and a client that leaves ends every
// request it had queued: nothing stays counted in flight, holds an upstream connection or keeps
// the proxy from stopping. Hostile clients here are raw sockets on loopback.
import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { ms, until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend, writeChunks, type Backend, type Handler } from '../support/backends.js'
import { registerTarget, startTestProxy } from '../support/proxy.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'
import { PIPELINE_WINDOW } from '../../src/proxy/connection.js'

const zkCluster = useZooKeeper()

async function targets (handlers: Handler[], flags: readonly string[]): Promise<{ proxy: ProxyRuntime, backends: Backend[] }> {
  const path = uniquePath('targets')
  const session = await connectSession(zkCluster().connectString)
  const backends: Backend[] = []
  for (const [i, handler] of handlers.entries()) {
    const b = await startBackend(`t${i}`, handler)
    await registerTarget(session, path, `t${i}`, b.url)
    backends.push(b)
  }
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, ...flags])
  await until(() => proxy.router.targets.length === handlers.length)
  return { proxy, backends }
}

async function open (proxy: ProxyRuntime): Promise<Socket> {
  const sock = connect(Number(new URL(proxy.url).port), '127.0.0.1')
  await new Promise<void>(resolve => sock.once('connect', resolve))
  return sock
}

const inFlight = (proxy: ProxyRuntime): number => proxy.router.targets.reduce((n, t) => n + t.inFlight, 0)

const large: Handler = (_req, res) => { writeChunks(res, Buffer.alloc(64 * 1024, 'x'), 32) } // 2 MiB

describe('a client that pipelines and leaves', () => {
  it('300 pipelined GETs of a large response, then a close: in flight back to 0, others served, the proxy stops in time', async () => {
    const { proxy, backends } = await targets([large, large], ['--cache-ttl', '0', '--drain-ms', '1000'])
    const sock = await open(proxy)
    sock.pause() // reads nothing: every response queues behind the first
    let batch = ''
    for (let i = 0; i < 300; i++) batch += `GET /big${i} HTTP/1.1\r\nHost: a\r\n\r\n`
    sock.write(batch)
    await until(() => inFlight(proxy) > 0, { message: 'the first requests are upstream' })
    // At most a window of safe requests goes upstream from one connection at a time.
    expect(inFlight(proxy)).toBeLessThanOrEqual(PIPELINE_WINDOW)
    sock.destroy()
    await until(() => inFlight(proxy) === 0, { message: 'in flight back to 0 after the client left' })
    // The responses the kernel's socket buffers took let a few more start; never all 300.
    expect(backends.reduce((n, b) => n + b.hits(), 0)).toBeLessThan(300)

    // Another client is served at once.
    const r = await request(`${proxy.url}/after`)
    expect(r.statusCode).toBe(200)
    await r.body.dump()

    // And the proxy stops within its drain, with nothing left to wait for.
    const started = performance.now()
    await proxy.stop()
    expect(performance.now() - started).toBeLessThan(1000 + 1000)
  })

  it('two pipelined requests and a close leak nothing, also for a POST', async () => {
    const slow: Handler = (_req, res) => { setTimeout(() => { res.end('late') }, 200) }
    const { proxy, backends } = await targets([slow], ['--cache-ttl', '0'])
    for (const [a, b] of [['GET /a', 'GET /b'], ['POST /a', 'POST /b']] as const) {
      const before = backends[0]!.hits()
      const sock = await open(proxy)
      const body = a.startsWith('POST') ? 'Content-Length: 2\r\n\r\nhi' : '\r\n'
      sock.write(`${a} HTTP/1.1\r\nHost: a\r\n${body}${b} HTTP/1.1\r\nHost: a\r\n${body}`)
      await until(() => backends[0]!.hits() > before, { message: 'the first reached the target' })
      sock.destroy()
      await until(() => inFlight(proxy) === 0, { message: `in flight back to 0 (${a})` })
    }
  })

  it('a client that never reads a pipelined queue of responses holds no upstream request once it is gone', async () => {
    // 16 MiB each: more than loopback's socket buffers take, so the first never finishes.
    const { proxy, backends } = await targets([(_req, res) => { writeChunks(res, Buffer.alloc(64 * 1024, 'x'), 256) }], ['--cache-ttl', '0'])
    const sock = await open(proxy)
    sock.pause()
    sock.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => backends[0]!.hits() === 3, { message: 'three requests reached the target' })
    expect(inFlight(proxy)).toBeGreaterThan(0)
    sock.resetAndDestroy()
    await until(() => inFlight(proxy) === 0, { message: 'in flight back to 0 after a reset' })
  })
})

describe('order of pipelined requests (RFC 9112 §9.3.2)', () => {
  it('a pipelined POST then GET reach the target in order: the GET only once the POST was answered', async () => {
    const events: string[] = []
    const handler: Handler = (req, res) => {
      events.push(`start ${req.method ?? ''} ${req.url ?? ''}`)
      setTimeout(() => {
        events.push(`end ${req.method ?? ''} ${req.url ?? ''}`)
        res.end('ok')
      }, req.method === 'POST' ? 200 : 0)
    }
    const { proxy } = await targets([handler], ['--cache-ttl', '0'])
    const sock = await open(proxy)
    let answers = ''
    sock.on('data', (c: Buffer) => { answers += c.toString('latin1') })
    sock.write('POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nxGET /b HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => (answers.match(/HTTP\/1\.1 200/g) ?? []).length === 2, { message: 'both answered' })
    sock.destroy()
    expect(events).toEqual(['start POST /a', 'end POST /a', 'start GET /b', 'end GET /b'])
  })

  it('a cache hit pipelined behind a POST waits its turn; on an idle connection it is answered at once and holds no place', async () => {
    const events: string[] = []
    const handler: Handler = (req, res) => {
      events.push(`start ${req.method ?? ''} ${req.url ?? ''}`)
      setTimeout(() => {
        events.push(`end ${req.method ?? ''} ${req.url ?? ''}`)
        res.setHeader('cache-control', 'max-age=60')
        res.end(`body of ${req.url ?? ''}`)
      }, req.method === 'POST' ? 200 : 0)
    }
    const { proxy } = await targets([handler], ['--cache-ttl', '60', '--max-requests-per-client', '2'])
    const stored = await request(`${proxy.url}/hit`, { headers: { host: 'a' } })
    expect(await stored.body.text()).toBe('body of /hit')
    const sock = await open(proxy)
    let answers = ''
    sock.on('data', (c: Buffer) => { answers += c.toString('latin1') })
    // Behind an unsafe request, the hit waits for it (the POST to /hit also invalidates it).
    sock.write('POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nxGET /hit HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => (answers.match(/HTTP\/1\.1 200/g) ?? []).length === 2, { message: 'both answered' })
    expect(answers.indexOf('x-cache: HIT')).toBeGreaterThan(answers.indexOf('body of /other'))
    // With nothing before them, hits need no place under --max-requests-per-client 2: ten
    // pipelined hits on one connection are each answered at once, none refused with a 429.
    answers = ''
    sock.write('GET /hit HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(10))
    await until(() => (answers.match(/x-cache: HIT/g) ?? []).length === 10, { message: 'ten hits answered' })
    sock.destroy()
    expect(events).toEqual(['start GET /hit', 'end GET /hit', 'start POST /other', 'end POST /other'])
    expect(inFlight(proxy)).toBe(0)
  })

  it('safe pipelined requests run side by side and are answered in order', async () => {
    // The first answers last: a parallel window shows as overlapping upstream requests.
    let concurrent = 0
    let most = 0
    const handler: Handler = (req, res) => {
      concurrent++
      most = Math.max(most, concurrent)
      setTimeout(() => { concurrent--; res.end(req.url) }, req.url === '/0' ? 300 : 50)
    }
    const { proxy } = await targets([handler], ['--cache-ttl', '0'])
    const sock = await open(proxy)
    let answers = ''
    sock.on('data', (c: Buffer) => { answers += c.toString('latin1') })
    let batch = ''
    for (let i = 0; i < 4; i++) batch += `GET /${i} HTTP/1.1\r\nHost: a\r\n\r\n`
    sock.write(batch)
    await until(() => (answers.match(/HTTP\/1\.1 200/g) ?? []).length === 4, { message: 'four answered', timeoutMs: ms(5000) })
    sock.destroy()
    const bodies = [...answers.matchAll(/\r\n\r\n(\/\d)/g)].map(m => m[1])
    expect(bodies).toEqual(['/0', '/1', '/2', '/3'])
    expect(most).toBeGreaterThan(1)
  })
})

describe('SIGTERM with hostile clients', () => {
  it('stops within --drain-ms plus a second while a client that never reads holds a large response', async () => {
    const { proxy } = await targets([(_req, res) => { writeChunks(res, Buffer.alloc(64 * 1024, 'x'), 256) }], ['--cache-ttl', '0', '--drain-ms', '500'])
    const sock = await open(proxy)
    sock.pause()
    sock.write('GET /huge HTTP/1.1\r\nHost: a\r\n\r\nGET /huge2 HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => inFlight(proxy) > 0, { message: 'upstream' })
    const started = performance.now()
    await proxy.stop()
    expect(performance.now() - started).toBeLessThan(500 + 1000)
    expect(inFlight(proxy)).toBe(0)
    sock.destroy()
  })
})
