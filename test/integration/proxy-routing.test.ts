// The proxy against a real ZooKeeper and real upstream servers: watch-driven membership,
// least-used routing, batched counts (also with two proxies), failover and ejection, and the
// 503/502 answers. Each test uses its own targets path so tests never see each other's nodes.
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { ms, until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend, type Backend, type Handler } from '../support/backends.js'
import { readCount, registerTarget, startTestProxy } from '../support/proxy.js'
import { freePort } from '../support/ports.js'
import { CreateMode, expireSession, type ZkSession } from '../../src/zk/index.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

const zkCluster = useZooKeeper()

/** A fresh targets path with one backend registered as its only target, and a proxy routing to it. */
async function oneTarget (name: string, handler: Handler | undefined, flags: readonly string[]): Promise<{ proxy: ProxyRuntime, backend: Backend, session: ZkSession, path: string }> {
  const path = uniquePath('targets')
  const backend = await startBackend(name, handler)
  const session = await connectSession(zkCluster().connectString)
  await registerTarget(session, path, name, backend.url)
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, ...flags])
  await until(() => proxy.router.targets.length === 1)
  return { proxy, backend, session, path }
}

async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string, headers: Record<string, string | string[] | undefined> }> {
  const r = await request(url, { headers })
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers }
}

describe('membership and routing', () => {
  it('answers 503 no_targets while nothing is registered, then routes to a target within a second of it registering', async () => {
    const path = uniquePath('targets')
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
    await until(() => proxy.router.hasView, { message: 'first view' })
    const none = await get(`${proxy.url}/x`)
    expect(none.status).toBe(503)
    expect(JSON.parse(none.body)).toMatchObject({ error: 'no_targets' })

    const b = await startBackend('a')
    const s = await connectSession(zkCluster().connectString)
    const registeredAt = Date.now()
    await registerTarget(s, path, 'a', b.url)
    await until(async () => (await get(`${proxy.url}/x`)).status === 200, { timeoutMs: 1000, intervalMs: 10, message: 'routed within 1 s' })
    expect(Date.now() - registeredAt).toBeLessThan(1000)
  })

  it('spreads requests over two targets by least use, and the counts in ZooKeeper match the requests', async () => {
    const path = uniquePath('targets')
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')])
    const s = await connectSession(zkCluster().connectString)
    await registerTarget(s, path, 'a', a.url)
    await registerTarget(s, path, 'b', b.url)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--count-flush-ms', '50'])
    await until(() => proxy.router.targets.length === 2)
    for (let i = 0; i < 100; i++) expect((await get(`${proxy.url}/p${i}`)).status).toBe(200)
    // Least-used with counts taken at dispatch: strictly alternating, so an even split.
    expect(a.hits()).toBe(50)
    expect(b.hits()).toBe(50)
    await until(async () => (await readCount(s, `${path}/a`)) === 50 && (await readCount(s, `${path}/b`)) === 50, { message: 'counts flushed' })
  })

  it('a graceful stop writes the counts not yet flushed', async () => {
    // A flush period longer than the test: only the stop can write these counts.
    const { proxy, session: s, path } = await oneTarget('a', undefined, ['--count-flush-ms', '60000'])
    for (let i = 0; i < 7; i++) expect((await get(`${proxy.url}/s${i}`)).status).toBe(200)
    expect(await readCount(s, `${path}/a`)).toBe(0)
    await proxy.stop()
    expect(await readCount(s, `${path}/a`)).toBe(7)
  })

  it('two proxies on shared targets lose no count under concurrent load', async () => {
    const path = uniquePath('targets')
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')])
    const s = await connectSession(zkCluster().connectString)
    await registerTarget(s, path, 'a', a.url)
    await registerTarget(s, path, 'b', b.url)
    const p1 = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--count-flush-ms', '20'])
    const p2 = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--count-flush-ms', '20'])
    await until(() => p1.router.targets.length === 2 && p2.router.targets.length === 2)
    const load = async (url: string, n: number): Promise<void> => {
      const workers = Array.from({ length: 10 }, async (_, w) => {
        for (let i = w; i < n; i += 10) expect((await get(`${url}/r${i}`)).status).toBe(200)
      })
      await Promise.all(workers)
    }
    await Promise.all([load(p1.url, 300), load(p2.url, 300)])
    await until(async () => (await readCount(s, `${path}/a`)) + (await readCount(s, `${path}/b`)) === 600, { message: 'all 600 counted' })
    expect(await readCount(s, `${path}/a`)).toBe(a.hits())
    expect(await readCount(s, `${path}/b`)).toBe(b.hits())
    // Writes are batched: far fewer than one per request.
    expect(p1.counter.stats.writes + p2.counter.stats.writes).toBeLessThan(300)
  })

  it('a joining target at the current minimum count is not flooded, and a garbage znode does not disturb routing', async () => {
    const path = uniquePath('targets')
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')])
    const s = await connectSession(zkCluster().connectString)
    await registerTarget(s, path, 'a', a.url, 1000)
    await s.create(`${path}/garbage`, Buffer.from('{not json'), CreateMode.EPHEMERAL)
    await s.create(`${path}/ftp`, Buffer.from(JSON.stringify({ url: 'ftp://127.0.0.1:21', requests: 0 })), CreateMode.EPHEMERAL)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
    await until(() => proxy.router.targets.length === 1)
    expect(proxy.targets.snapshot?.rejected.map(r => r.name).sort()).toEqual(['ftp', 'garbage'])
    await registerTarget(s, path, 'b', b.url, 1000)
    await until(() => proxy.router.targets.length === 2)
    for (let i = 0; i < 20; i++) expect((await get(`${proxy.url}/x`)).status).toBe(200)
    expect(a.hits()).toBe(10)
    expect(b.hits()).toBe(10)
  })

  it('reads the bare-integer target form with a host:port name and keeps that form when counting', async () => {
    const path = uniquePath('targets')
    const a = await startBackend('a')
    const s = await connectSession(zkCluster().connectString)
    await s.mkdirp(path)
    await s.create(`${path}/127.0.0.1:${a.port}`, Buffer.from('7'), CreateMode.EPHEMERAL)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--count-flush-ms', '20'])
    await until(() => proxy.router.targets.length === 1)
    expect((await get(`${proxy.url}/`)).status).toBe(200)
    await until(async () => (await s.get(`${path}/127.0.0.1:${a.port}`)).data.toString() === '8', { message: 'bare count 8' })
  })
})

describe('failover and ejection', () => {
  it('fails over from a refused target without a client error and ejects it', async () => {
    const path = uniquePath('targets')
    const live = await startBackend('live')
    const deadPort = await freePort()
    const s = await connectSession(zkCluster().connectString)
    // The dead target has the lowest count, so it is chosen first.
    await registerTarget(s, path, 'dead', `http://127.0.0.1:${deadPort}`, 0)
    await registerTarget(s, path, 'live', live.url, 0)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
    await until(() => proxy.router.targets.length === 2)
    for (let i = 0; i < 20; i++) {
      const r = await get(`${proxy.url}/g${i}`)
      expect(r.status).toBe(200)
      expect(r.headers['x-served-by']).toBe('live')
    }
    const dead = proxy.router.targets.find(t => t.name === 'dead')!
    expect(proxy.router.isEjected(dead)).toBe(true)
    // A POST that never reached a backend is failed over too.
    const post = await request(`${proxy.url}/submit`, { method: 'POST', body: 'payload' })
    expect(post.statusCode).toBe(200)
    await post.body.text()
    expect(live.seen.at(-1)).toMatchObject({ method: 'POST', url: '/submit' })
    expect(live.seen.at(-1)?.body.toString()).toBe('payload')
  })

  it('answers 502 upstream_failed when every attempt fails', async () => {
    const path = uniquePath('targets')
    const s = await connectSession(zkCluster().connectString)
    for (const n of ['x', 'y']) await registerTarget(s, path, n, `http://127.0.0.1:${await freePort()}`)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
    await until(() => proxy.router.targets.length === 2)
    const r = await get(`${proxy.url}/`)
    expect(r.status).toBe(502)
    expect(JSON.parse(r.body)).toMatchObject({ error: 'upstream_failed', attempts: 2 })
  })

  it('does not retry a POST that may have reached the backend (connection reset after sending)', async () => {
    const path = uniquePath('targets')
    const resetter = await startBackend('resetter', (req) => { req.socket.destroy() })
    const other = await startBackend('other')
    const s = await connectSession(zkCluster().connectString)
    await registerTarget(s, path, 'resetter', resetter.url, 0)
    await registerTarget(s, path, 'other', other.url, 5)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
    await until(() => proxy.router.targets.length === 2)
    const post = await request(`${proxy.url}/charge`, { method: 'POST', body: 'once' })
    expect(post.statusCode).toBe(502)
    await post.body.text()
    expect(other.hits()).toBe(0)
    // The same failure on a GET is retried on the other target.
    proxy.router.ejections.noteSuccess('resetter')
    const g = await get(`${proxy.url}/page`)
    expect(g.status).toBe(200)
    expect(g.headers['x-served-by']).toBe('other')
  })
})

describe('ZooKeeper faults', () => {
  it('keeps routing with the last view while ZooKeeper is down, and flushes the counts after it returns', async () => {
    const path = uniquePath('targets')
    const a = await startBackend('a')
    const s = await connectSession(zkCluster().connectString, { sessionTimeoutMs: 10_000 })
    await registerTarget(s, path, 'a', a.url)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--count-flush-ms', '20', '--session-timeout-ms', '10000'])
    await until(() => proxy.router.targets.length === 1)
    await zkCluster().stopNode(0)
    try {
      await until(() => proxy.session.state === 'suspended', { message: 'proxy sees the outage' })
      for (let i = 0; i < 10; i++) expect((await get(`${proxy.url}/o${i}`)).status).toBe(200)
    } finally {
      await zkCluster().startNode(0)
    }
    await until(async () => (await readCount(s, `${path}/a`).catch(() => -1)) === 10, { timeoutMs: ms(20_000), message: 'counts flushed after reconnect' })
  })

  it('after its session expires the proxy re-reads everything and sees targets added since', async () => {
    const path = uniquePath('targets')
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')])
    const s = await connectSession(zkCluster().connectString)
    await registerTarget(s, path, 'a', a.url)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
    await until(() => proxy.router.targets.length === 1)
    const id = proxy.session.sessionId!
    await expireSession(zkCluster().connectString, { id, password: proxy.session.sessionPassword! })
    await until(() => proxy.session.state === 'connected' && proxy.session.sessionId !== id, { timeoutMs: ms(20_000), message: 'new session' })
    await registerTarget(s, path, 'b', b.url)
    await until(() => proxy.router.targets.length === 2, { message: 'target added after expiry seen' })
    await s.delete(`${path}/a`, -1)
    await until(() => proxy.router.targets.length === 1, { message: 'removal after expiry seen' })
    expect((await get(`${proxy.url}/`)).headers['x-served-by']).toBe('b')
  })

  it('a target znode the proxy may not read is rejected and does not freeze the view', async () => {
    const path = uniquePath('targets')
    const [a, b] = await Promise.all([startBackend('a'), startBackend('b')])
    const s = await connectSession(zkCluster().connectString)
    await registerTarget(s, path, 'a', a.url)
    // A child whose ACL shuts everyone else out (only an unknown digest identity may read).
    await s.create(`${path}/locked`, Buffer.from('{}'), CreateMode.EPHEMERAL)
    await s.setAcl(`${path}/locked`, -1, [{ perm: 31, scheme: 'digest', auth: 'nobody:AAAAAAAAAAAAAAAAAAAAAAAAAAA=' }])
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
    await until(() => proxy.router.targets.length === 1, { message: 'view despite the unreadable child' })
    expect(proxy.targets.snapshot?.rejected.map(r => r.name)).toContain('locked')
    await registerTarget(s, path, 'b', b.url)
    await until(() => proxy.router.targets.length === 2, { message: 'later joins still seen' })
  })
})

describe('in-flight accounting', () => {
  it('a client that gives up before the target answers does not stay counted in flight', async () => {
    const { proxy, backend: slow } = await oneTarget('slow', (_req, res) => { setTimeout(() => { res.end('late') }, 300) }, ['--cache-ttl', '0'])
    for (let i = 0; i < 5; i++) {
      await request(`${proxy.url}/wait${i}`, { signal: AbortSignal.timeout(50) }).catch(() => {})
    }
    await until(() => slow.hits() === 5, { message: 'all five reached the backend' })
    await until(() => proxy.router.targets[0]!.inFlight === 0, { message: 'in-flight back to 0' })
  })

  it('a client that aborts a chunked upload releases the upstream request', async () => {
    // Past --request-buffer-bytes a chunked body streams: the upload reaches the target at once.
    const { proxy } = await oneTarget('b', undefined, ['--cache-ttl', '0', '--request-buffer-bytes', '4'])
    const sock = connect(Number(new URL(proxy.url).port), '127.0.0.1')
    await new Promise<void>(resolve => sock.once('connect', resolve))
    sock.write('POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
    await until(() => proxy.router.targets[0]!.inFlight === 1, { message: 'upload forwarded' })
    sock.destroy()
    await until(() => proxy.router.targets[0]!.inFlight === 0, { message: 'upstream request ended with the client' })
  })
})

// Streaming through the exchange (src/proxy/exchange.ts): backpressure, clients that leave, and
// targets that fail after their head. The access log is a line written at the end, never a
// different path: the cases that run twice prove it changes no answer.
describe('streamed responses', () => {
  const MiB = 1024 * 1024

  /** A backend streaming `total` bytes in 64 KiB chunks, only as fast as its socket takes them. */
  function streamer (total: number): { generated: () => number, closedEarly: () => boolean, handler: Handler } {
    let generated = 0
    let closedEarly = false
    return {
      generated: () => generated,
      closedEarly: () => closedEarly,
      handler: (_req, res) => {
        res.setHeader('content-length', String(total))
        const chunk = Buffer.alloc(64 * 1024, 'x')
        res.on('close', () => { if (!res.writableFinished) closedEarly = true })
        const pump = (): void => {
          while (generated < total) {
            generated += chunk.length
            if (!res.write(chunk)) { res.once('drain', pump); return }
          }
          res.end()
        }
        pump()
      }
    }
  }

  it('a client that reads nothing stops the backend (backpressure), then gets every byte', async () => {
    const total = 48 * MiB
    const src = streamer(total)
    const { proxy } = await oneTarget('big', src.handler, ['--cache-ttl', '0'])
    const port = Number(new URL(proxy.url).port)
    const sock = connect(port, '127.0.0.1')
    sock.pause() // reads nothing until told
    await new Promise<void>(resolve => sock.once('connect', resolve))
    sock.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    // Kernel buffers, undici's and Node's fill up, then the backend must be held back.
    let last = -1
    await until(() => {
      const now = src.generated()
      const stalled = now > 0 && now === last
      last = now
      return stalled
    }, { message: 'the backend stops producing while the client does not read', intervalMs: 200 })
    expect(src.generated()).toBeLessThan(total / 2)
    let received = 0
    sock.on('data', (c: Buffer) => { received += c.length })
    sock.resume()
    await new Promise<void>(resolve => sock.once('close', resolve))
    expect(src.generated()).toBe(total)
    expect(received).toBeGreaterThan(total) // body + head
  })

  it('a client that goes away mid-body cuts the upstream response and is no longer in flight', async () => {
    const src = streamer(256 * MiB)
    const { proxy } = await oneTarget('cut', src.handler, ['--cache-ttl', '0'])
    const port = Number(new URL(proxy.url).port)
    const inFlight = (): number => proxy.router.targets[0]!.inFlight
    const sock = connect(port, '127.0.0.1')
    let received = 0
    sock.on('data', (c: Buffer) => { received += c.length })
    await new Promise<void>(resolve => sock.once('connect', resolve))
    sock.write('GET /cut HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => received > MiB, { message: 'the body is flowing' })
    sock.destroy()
    await until(() => src.closedEarly(), { message: 'the backend response was cut off' })
    await until(() => inFlight() === 0, { message: 'in-flight back to 0' })
    expect(src.generated()).toBeLessThan(256 * MiB)
  })

  for (const [way, flags] of [['access log off', ['--cache-ttl', '0']], ['access log on', ['--cache-ttl', '0', '--access-log']]] as const) {
    it(`a target that fails after its head but before any body byte: the GET fails over, the client never sees that head (${way})`, async () => {
      const path = uniquePath('targets')
      // Sends its head, then drops the connection before the body.
      const dies = await startBackend('dies', (_req, res) => {
        res.writeHead(200, { 'content-length': '100', 'x-from': 'dies' })
        res.flushHeaders()
        setImmediate(() => { res.socket?.destroy() })
      })
      const ok = await startBackend('ok')
      const s = await connectSession(zkCluster().connectString)
      await registerTarget(s, path, 'dies', dies.url)
      await registerTarget(s, path, 'ok', ok.url, 1000) // least-used tries 'dies' first
      const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, ...flags])
      await until(() => proxy.router.targets.length === 2)
      const r = await get(`${proxy.url}/x`)
      expect(r.status).toBe(200)
      expect(r.headers['x-served-by']).toBe('ok')
      expect(r.headers['x-from']).toBeUndefined()
      expect(dies.hits()).toBe(1)
      await until(() => proxy.router.targets.every(t => t.inFlight === 0), { message: 'nothing left in flight' })
    })
  }

  for (const [way, flags] of [['access log off', ['--cache-ttl', '0']], ['access log on', ['--cache-ttl', '0', '--access-log']]] as const) {
    it(`a client that leaves while a head is held back (no body byte yet) releases the target; the proxy goes on (${way})`, async () => {
      let upstreamClosed = 0
      const { proxy } = await oneTarget('late', (req, res) => {
        if (req.url === '/late') {
          // Head now, body never: an event stream with nothing to say yet.
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.flushHeaders()
          res.on('close', () => { upstreamClosed++ })
          return
        }
        res.end('fine')
      }, [...flags, '--admin', '127.0.0.1:0'])
      const port = Number(new URL(proxy.url).port)
      const sock = connect(port, '127.0.0.1')
      await new Promise<void>(resolve => sock.once('connect', resolve))
      sock.write('GET /late HTTP/1.1\r\nHost: a\r\n\r\n')
      // The proxy has the head (its response counter moved) and holds it: the client has nothing.
      await until(async () => (await proxy.metrics!.render()).includes('zkproxy_requests_total{target="late",code="2xx"} 1'), { message: 'the head reached the proxy' })
      expect(upstreamClosed).toBe(0)
      sock.destroy()
      await until(() => upstreamClosed === 1, { message: 'the upstream response was dropped' })
      await until(() => proxy.router.targets[0]!.inFlight === 0, { message: 'in-flight back to 0' })
      const r = await get(`${proxy.url}/after`)
      expect(r).toMatchObject({ status: 200, body: 'fine' })
    })
  }

  it('a status outside 100-599 (600) is a 502; the target is released and the proxy goes on', async () => {
    let upstreamClosed = false
    const { proxy } = await oneTarget('odd', (_req, res) => {
      // A head undici accepts and RFC 9110 §15 does not define, then no body byte.
      res.socket!.on('close', () => { upstreamClosed = true })
      res.socket!.write('HTTP/1.1 600 Odd\r\ncontent-length: 5\r\n\r\n')
    }, ['--cache-ttl', '0'])
    const port = Number(new URL(proxy.url).port)
    // A raw client that keeps its connection open after the answer.
    const sock = connect(port, '127.0.0.1')
    let answer = ''
    sock.on('data', (c: Buffer) => { answer += c.toString('latin1') })
    await new Promise<void>(resolve => sock.once('connect', resolve))
    sock.write('GET /odd HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => answer.includes('upstream_failed'), { message: 'a 502 answer' })
    expect(answer).toMatch(/^HTTP\/1\.1 502 /)
    // The target's connection is not held until the body timeout, and nothing stays in flight.
    await until(() => upstreamClosed, { message: 'the target connection is released' })
    expect(proxy.router.targets[0]!.inFlight).toBe(0)
    sock.destroy()
    expect((await get(`${proxy.url}/after`)).status).toBe(502)
  })

  it('after a head, a PUT with its buffered body fails over; a POST is answered 502 and sent nowhere else (RFC 9110 §9.2.2)', async () => {
    const path = uniquePath('targets')
    // The backend harness hands each handler the whole request body (support/backends.ts).
    const dies = await startBackend('dies', (_req, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.flushHeaders()
      setImmediate(() => { res.socket?.destroy() })
    })
    const bodies: string[] = []
    const ok = await startBackend('ok', (req, res, body) => {
      bodies.push(`${req.method!} ${body.toString()}`)
      res.end('stored')
    })
    const s = await connectSession(zkCluster().connectString)
    await registerTarget(s, path, 'dies', dies.url)
    await registerTarget(s, path, 'ok', ok.url, 1_000_000) // least-used tries 'dies' first
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--cache-ttl', '0', '--count-flush-ms', '60000'])
    await until(() => proxy.router.targets.length === 2)
    const put = await request(`${proxy.url}/doc`, { method: 'PUT', body: 'payload', headers: { 'content-type': 'text/plain' } })
    expect(put.statusCode).toBe(200)
    expect(await put.body.text()).toBe('stored')
    expect(bodies).toEqual(['PUT payload'])
    // The ejection of 'dies' ends on success only; re-register it fresh so it is tried first again.
    await s.delete(`${path}/dies`, -1)
    await until(() => proxy.router.targets.length === 1)
    await registerTarget(s, path, 'dies', dies.url)
    await until(() => proxy.router.targets.length === 2)
    const post = await request(`${proxy.url}/doc`, { method: 'POST', body: 'once', headers: { 'content-type': 'text/plain' } })
    expect(post.statusCode).toBe(502)
    expect(JSON.parse(await post.body.text())).toMatchObject({ error: 'upstream_failed' })
    expect(dies.hits()).toBe(2)
    expect(bodies).toEqual(['PUT payload'])
  })

  for (const [path, flags] of [['cache off', ['--cache-ttl', '0']], ['cache on', []]] as const) {
    it(`with no other target, a failure after the head is a 502 upstream_failed, not a cut connection (${path})`, async () => {
      const { proxy } = await oneTarget('dies', (_req, res) => {
        res.writeHead(200, { 'content-length': '100' })
        res.flushHeaders()
        setImmediate(() => { res.socket?.destroy() })
      }, flags)
      const r = await get(`${proxy.url}/x`)
      expect(r.status).toBe(502)
      expect(JSON.parse(r.body)).toMatchObject({ error: 'upstream_failed' })
    })
  }

  it('HEAD keeps the backend Content-Length and sends no body', async () => {
    const { proxy } = await oneTarget('head', (_req, res) => {
      res.setHeader('content-length', '12345')
      res.end()
    }, ['--cache-ttl', '0'])
    const port = Number(new URL(proxy.url).port)
    const r = await request(`http://127.0.0.1:${port}/h`, { method: 'HEAD' })
    expect(r.statusCode).toBe(200)
    expect(r.headers['content-length']).toBe('12345')
    expect(await r.body.text()).toBe('')
  })
})

describe('graceful stop', () => {
  it('finishes the request in flight, then refuses new connections', async () => {
    const { proxy, backend: slow } = await oneTarget('slow', (_req, res) => { setTimeout(() => { res.end('late') }, 300) }, ['--cache-ttl', '0'])
    const inFlight = request(`${proxy.url}/slow`)
    await until(() => slow.hits() === 1, { message: 'the request reached the backend' })
    const stopping = proxy.stop()
    const r = await inFlight
    expect(r.statusCode).toBe(200)
    expect(await r.body.text()).toBe('late')
    await stopping
    await expect(request(`${proxy.url}/after`)).rejects.toThrow()
    expect(slow.hits()).toBe(1)
  })
})
