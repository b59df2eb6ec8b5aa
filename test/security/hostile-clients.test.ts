// Hostile and slow clients cost only themselves (docs/security.md "Hostile and slow clients"):
// each attack runs against a real proxy and target on loopback, scaled down and with the limits
// set low, while a well-behaved client on another address probes; its answers must come in
// under a second, and once the attack is over nothing may stay counted: no request in flight
// to a target, none in undici's hands, none counted for the attacker's address.
import type { IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { ms, until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend, writeChunks, type Backend, type Handler } from '../support/backends.js'
import { registerTarget, startTestProxy } from '../support/proxy.js'
import {
  ATTACKER_ADDRESS, nonReadingClients, pipelineAndLeave, pipelinedGets, probe, resettingClients, rssMiB, slowUploads,
  type Attack, type Target
} from '../support/attacks.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'
import { PIPELINE_WINDOW } from '../../src/proxy/connection.js'

const zkCluster = useZooKeeper()
const MiB = 1024 * 1024

interface Setup { proxy: ProxyRuntime, backend: Backend, target: Target, slowMost: () => number, finished: () => number }

/** One target: /big (16 MiB, uncacheable), /medium (8 MiB), /slow (200 ms), anything else 'ok'. */
async function setup (flags: readonly string[]): Promise<Setup> {
  let slowNow = 0
  let slowMost = 0
  let finished = 0
  const handler: Handler = (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    res.setHeader('cache-control', 'no-store')
    res.on('finish', () => { finished++ })
    if (path === '/big') { writeChunks(res, Buffer.alloc(64 * 1024, 'x'), 256); return }
    if (path === '/medium') { writeChunks(res, Buffer.alloc(64 * 1024, 'x'), 128); return }
    if (path === '/slow') {
      slowMost = Math.max(slowMost, ++slowNow)
      setTimeout(() => { slowNow--; res.end('slow') }, 200)
      return
    }
    res.end('ok')
  }
  const path = uniquePath('targets')
  const session = await connectSession(zkCluster().connectString)
  const backend = await startBackend('t', handler)
  await registerTarget(session, path, 't', backend.url)
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--cache-ttl', '0', ...flags])
  await until(() => proxy.router.targets.length === 1)
  const target: Target = { host: '127.0.0.1', port: Number(new URL(proxy.url).port), hostHeader: 'a' }
  return { proxy, backend, target, slowMost: () => slowMost, finished: () => finished }
}

const bigHits = (s: Setup): number => s.backend.seen.filter(r => r.url.startsWith('/big?')).length

interface Counts { inFlight: number, upstream: number, clients: number }

function counts (proxy: ProxyRuntime): Counts {
  return {
    inFlight: proxy.router.targets.reduce((n, t) => n + t.inFlight, 0),
    upstream: proxy.server.path.slots.total,
    clients: proxy.server.path.clients.active()
  }
}

const NOTHING: Counts = { inFlight: 0, upstream: 0, clients: 0 }

/** Probes while the attack holds, then ends it and checks that nothing stays counted. */
async function probeThenEnd (s: Setup, attack: Attack, rssBefore: number): Promise<void> {
  const seen = await probe(`${s.proxy.url}/probe`, 10, ms(5000))
  expect(seen, `${attack.name}: the well-behaved client's answers`).toMatchObject({ answers: 10, underOneSecond: 10, failures: 0 })
  attack.stop()
  await until(() => JSON.stringify(counts(s.proxy)) === JSON.stringify(NOTHING), { message: `nothing counted after "${attack.name}"`, timeoutMs: ms(10_000) })
  const growth = rssMiB() - rssBefore
  console.log(`${attack.name}: probes worst ${seen.worstMs.toFixed(0)} ms; RSS growth ${growth.toFixed(1)} MiB`)
  // Bounded: the limits below allow at most a few MiB of buffers per admitted request.
  expect(growth).toBeLessThan(256)
}

describe('hostile clients', () => {
  it('clients that never read a large uncacheable answer hold at most their cap, and are cut after --send-timeout-ms', async () => {
    const s = await setup(['--max-requests-per-client', '10', '--upstream-connections', '16', '--send-timeout-ms', String(ms(1500)), '--response-buffer-bytes', '64k'])
    const rss = rssMiB()
    const attack = nonReadingClients(s.target, 30, '/big')
    await until(() => bigHits(s) >= 10, { message: 'the admitted non-readers are upstream' })
    const during = counts(s.proxy)
    expect(during.clients).toBeLessThanOrEqual(10)
    expect(s.proxy.server.path.clients.active(ATTACKER_ADDRESS)).toBeLessThanOrEqual(10)
    const seen = await probe(`${s.proxy.url}/probe`, 10, ms(5000))
    expect(seen).toMatchObject({ answers: 10, underOneSecond: 10, failures: 0 })
    // The attacker never reads and never leaves: the send timeout frees everything it held.
    await until(() => counts(s.proxy).inFlight === 0 && counts(s.proxy).upstream === 0, { message: 'non-readers cut by the send timeout', timeoutMs: ms(10_000) })
    expect(bigHits(s)).toBeLessThan(30)
    await probeThenEnd(s, attack, rss)
  })

  it('uploads at one byte per interval hold no upstream connection while they trickle in', async () => {
    const s = await setup(['--max-requests-per-client', '64'])
    const rss = rssMiB()
    const attack = slowUploads(s.target, 30, '/upload', 100)
    await until(() => s.proxy.server.path.clients.active(ATTACKER_ADDRESS) === 30, { message: 'every upload is in' })
    // Bodies within --request-buffer-bytes are read whole before a target is chosen.
    await until(() => attack.statuses.size === 0 && counts(s.proxy).upstream === 0 && s.backend.hits('/upload') === 0, { message: 'no upload upstream' })
    await probeThenEnd(s, attack, rss)
    expect(s.backend.hits('/upload')).toBe(0)
  })

  it('pipelined GETs to a slow endpoint on one connection: a window upstream at a time, 429 and a close past the cap', async () => {
    const s = await setup(['--max-requests-per-client', '100'])
    const rss = rssMiB()
    const attack = pipelinedGets(s.target, 300, '/slow')
    await until(() => s.backend.hits() > 0, { message: 'the pipeline reached the target' })
    const seen = await probe(`${s.proxy.url}/probe`, 10, ms(5000))
    expect(seen).toMatchObject({ answers: 10, underOneSecond: 10, failures: 0 })
    // Past the cap the request is refused with 429, and the connection closed after it: the
    // requests it had queued behind are dropped with it.
    await until(() => attack.open() === 0, { message: 'the proxy closed the connection after its 429', timeoutMs: ms(30_000) })
    // Requests that arrive once earlier ones ended are admitted again: at least the cap's worth.
    expect(attack.statuses.get(200)).toBeGreaterThanOrEqual(100)
    expect(attack.statuses.get(429)).toBe(1)
    expect(s.slowMost()).toBeLessThanOrEqual(PIPELINE_WINDOW)
    await probeThenEnd(s, attack, rss)
  })

  it('clients that reset mid-request leave nothing counted, and X-Forwarded-For never says unknown', async () => {
    const s = await setup([])
    const rss = rssMiB()
    const attack = resettingClients(s.target, 60, '/upload')
    await until(() => attack.open() === 0, { message: 'every resetting client is gone' })
    await until(() => JSON.stringify(counts(s.proxy)) === JSON.stringify(NOTHING), { message: 'nothing counted after the resets' })
    const xff = s.backend.seen.filter(r => r.url === '/upload').map(r => r.headers['x-forwarded-for'])
    console.log(`resetting clients: ${xff.length} of 60 requests reached the target before the reset was seen`)
    for (const v of xff) expect(v).toBe(ATTACKER_ADDRESS)
    await probeThenEnd(s, attack, rss)
  })

  it('the X-Forwarded-For of a client that resets right after sending a POST body is its address', async () => {
    const s = await setup([])
    // Recorded when the request reaches the target, before its body: a reset cannot hide it.
    const xff: unknown[] = []
    s.backend.server.on('request', (req: IncomingMessage) => { if (req.url === '/upload') xff.push(req.headers['x-forwarded-for']) })
    const rounds = 20
    for (let i = 0; i < rounds; i++) {
      const sock = connect({ host: '127.0.0.1', port: s.target.port, localAddress: ATTACKER_ADDRESS })
      sock.on('error', () => {})
      await new Promise<void>(resolve => sock.once('connect', resolve))
      // In turn a body within --request-buffer-bytes (read whole, then forwarded: the reset may
      // come first, and then nothing is forwarded) and one past it (forwarded at its head).
      const size = i % 2 === 0 ? 1024 : 2 * MiB
      sock.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`)
      sock.write(Buffer.alloc(size, 'x'), () => { sock.resetAndDestroy() })
      await until(() => sock.destroyed, { message: 'reset' })
      await until(() => JSON.stringify(counts(s.proxy)) === JSON.stringify(NOTHING), { message: 'the reset request ended' })
    }
    console.log(`reset after the body: ${xff.length} of ${rounds} requests reached the target`)
    expect(xff.length).toBeGreaterThanOrEqual(rounds / 2)
    expect(xff.filter(v => v !== ATTACKER_ADDRESS)).toEqual([])
  })

  it('a client that pipelines and leaves ends every request it queued', async () => {
    const s = await setup(['--max-requests-per-client', '64'])
    const rss = rssMiB()
    const attack = pipelineAndLeave(s.target, 100, '/big')
    await until(() => attack.open() === 0, { message: 'the client left' })
    await probeThenEnd(s, attack, rss)
    expect(bigHits(s)).toBeLessThan(100)
  })
})

describe('bounded buffers and queues', () => {
  it('a response within --response-buffer-bytes frees its target while the client is still not reading', async () => {
    const s = await setup(['--response-buffer-bytes', '16MiB', '--send-timeout-ms', String(ms(2000))])
    const sock = connect({ host: '127.0.0.1', port: s.target.port, localAddress: ATTACKER_ADDRESS })
    sock.on('error', () => {})
    sock.pause()
    sock.write('GET /medium HTTP/1.1\r\nHost: a\r\n\r\n')
    // 8 MiB: more than loopback's socket buffers take, so only the proxy's buffer can hold it.
    await until(() => s.finished() === 1 && counts(s.proxy).upstream === 0 && counts(s.proxy).inFlight === 0, { message: 'the target is done and free' })
    expect(sock.destroyed).toBe(false)
    expect(counts(s.proxy).clients).toBe(1)
    await until(() => sock.destroyed || sock.readableEnded || counts(s.proxy).clients === 0, { message: 'the send timeout cut the client', timeoutMs: ms(10_000) })
    await until(() => counts(s.proxy).clients === 0)
    sock.destroy()
  })

  it('past --upstream-connections, one request waits until --upstream-queue-timeout-ms (504), the next finds the queue full (503)', async () => {
    const s = await setup(['--upstream-connections', '2', '--upstream-queue', '1', '--upstream-queue-timeout-ms', String(ms(300))])
    // Held well past the queue's deadline: nothing frees a connection during the test.
    s.backend.handler = (_req, res) => { setTimeout(() => { res.end('late') }, ms(1500)) }
    const url = `${s.proxy.url}/hold`
    const held = [request(url), request(url)]
    await until(() => counts(s.proxy).upstream === 2, { message: 'both connections busy' })
    const queued = request(url, { reset: true })
    await until(() => counts(s.proxy).upstream === 3, { message: 'one waiting' })
    const refused = await request(url, { reset: true })
    expect(refused.statusCode).toBe(503)
    expect(await refused.body.json()).toMatchObject({ error: 'upstream_busy', code: 'ZKPROXY_ERR_PROXY_UPSTREAM_BUSY' })
    for (const r of await Promise.all(held)) { expect(r.statusCode).toBe(200); await r.body.dump() }
    const late = await queued
    expect(late.statusCode).toBe(504)
    await late.body.dump()
    await until(() => JSON.stringify(counts(s.proxy)) === JSON.stringify(NOTHING), { message: 'nothing counted' })
  })

  it('a wait for a connection that outlasts --upstream-queue-timeout-ms gets 504 with a clear body', async () => {
    const s = await setup(['--upstream-connections', '1', '--upstream-queue-timeout-ms', String(ms(200))])
    s.backend.handler = (_req, res) => { setTimeout(() => { res.end('late') }, ms(1000)) }
    const held = request(`${s.proxy.url}/hold`)
    await until(() => counts(s.proxy).upstream === 1, { message: 'the one connection is busy' })
    const started = performance.now()
    const r = await request(`${s.proxy.url}/wait`, { reset: true })
    expect(r.statusCode).toBe(504)
    expect(await r.body.json()).toMatchObject({ error: 'upstream_queue_timeout', code: 'ZKPROXY_ERR_PROXY_UPSTREAM_QUEUE_TIMEOUT' })
    expect(performance.now() - started).toBeLessThan(ms(1000))
    const first = await held
    expect(first.statusCode).toBe(200)
    await first.body.dump()
    // The given-up request was aborted when a connection took it: the target never saw it.
    await until(() => JSON.stringify(counts(s.proxy)) === JSON.stringify(NOTHING), { message: 'nothing counted' })
    expect(s.backend.hits('/wait')).toBe(0)
  })

  it('past --max-requests-per-client an address gets 429 with a clear body; another address is served', async () => {
    const s = await setup(['--max-requests-per-client', '1'])
    s.backend.handler = (_req, res) => { setTimeout(() => { res.end('late') }, ms(1000)) }
    const held = request(`${s.proxy.url}/hold`)
    await until(() => s.proxy.server.path.clients.active('127.0.0.1') === 1, { message: 'one request in' })
    const refused = await request(`${s.proxy.url}/more`, { reset: true })
    expect(refused.statusCode).toBe(429)
    expect(refused.headers['retry-after']).toBe('1')
    expect(await refused.body.json()).toMatchObject({ error: 'too_many_requests', code: 'ZKPROXY_ERR_PROXY_TOO_MANY_REQUESTS' })
    const other = await rawRequest(s.target.port, 'GET /other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', ATTACKER_ADDRESS)
    expect(other).toMatch(/^HTTP\/1\.1 200/)
    const first = await held
    expect(first.statusCode).toBe(200)
    await first.body.dump()
    await until(() => JSON.stringify(counts(s.proxy)) === JSON.stringify(NOTHING), { message: 'nothing counted' })
  })

  it('a chunked body within --request-buffer-bytes reaches the target whole, with its length and no added Content-Type', async () => {
    const s = await setup([])
    const answer = await rawRequest(s.target.port, 'POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n')
    expect(answer).toMatch(/^HTTP\/1\.1 200/)
    const seen = s.backend.seen.at(-1)!
    expect(seen.body.toString()).toBe('hello world')
    expect(seen.headers['content-length']).toBe('11')
    expect(seen.headers['transfer-encoding']).toBeUndefined()
    expect(seen.headers['content-type']).toBeUndefined()
  })

  it('a chunked body past --request-buffer-bytes streams on, the buffered start first', async () => {
    const s = await setup(['--request-buffer-bytes', '8'])
    const answer = await rawRequest(s.target.port, 'POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n3\r\n!!!\r\n0\r\n\r\n')
    expect(answer).toMatch(/^HTTP\/1\.1 200/)
    expect(s.backend.seen.at(-1)!.body.toString()).toBe('hello world!!!')
  })
})

describe('request shapes', () => {
  it('bodies keep the header fields they came with: no Content-Type is added, one sent is kept', async () => {
    const s = await setup([])
    await rawRequest(s.target.port, 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi')
    expect(s.backend.seen.at(-1)!.headers['content-type']).toBeUndefined()
    await rawRequest(s.target.port, 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: text/x-odd; charset=latin1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi')
    expect(s.backend.seen.at(-1)!.headers['content-type']).toBe('text/x-odd; charset=latin1')
  })

  it('OPTIONS * is answered by the proxy with the methods it forwards; * with another method is 400', async () => {
    const s = await setup([])
    const options = await rawRequest(s.target.port, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(options).toMatch(/^HTTP\/1\.1 200/)
    expect(options).toMatch(/\r\nallow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\n/i)
    const get = await rawRequest(s.target.port, 'GET * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    expect(get).toMatch(/^HTTP\/1\.1 400/)
    expect(s.backend.hits()).toBe(0)
  })

  const HOSTS: ReadonlyArray<[string, number]> = [
    ['user@evil.com/x y', 400],
    ['user@evil.com', 400],
    ['evil.com/x', 400],
    ['evil.com x', 400],
    ['evil.com:99999', 400],
    ['evil.com:80x', 400],
    ['evil.com:', 200],
    ['example.com', 200],
    ['example.com:8080', 200],
    ['[::1]:8080', 200],
    ['127.0.0.1', 200]
  ]
  for (const [host, status] of HOSTS) {
    it(`Host: ${host} gets ${status}`, async () => {
      const s = await setup([])
      const answer = await rawRequest(s.target.port, `GET /h HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
      expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status}`))
      if (status === 400) {
        expect(answer).toContain('"error":"bad_request"')
        expect(s.backend.hits()).toBe(0)
      }
    })
  }
})

/** One request on its own connection; resolves with everything the proxy sent back. */
async function rawRequest (port: number, text: string, localAddress = '127.0.0.1'): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1', localAddress })
    let out = ''
    sock.on('data', (c: Buffer) => { out += c.toString('latin1') })
    sock.on('error', reject)
    sock.on('close', () => { resolve(out) })
    sock.write(text)
  })
}
