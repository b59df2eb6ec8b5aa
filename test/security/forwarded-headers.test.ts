// Spoofed forwarding headers and cache poisoning (docs/security.md "Forwarded headers" and
// "Cache"): a client's X-Forwarded-For is appended to, never taken as its address; its
// X-Forwarded-Proto/-Host are replaced unless the peer is in --trust-proxy; and a trusted
// peer's X-Forwarded-Host (unkeyed) cannot choose what the cache serves everyone else.
// Client-side poisoning and cross-user leaks are in test/integration/cache.test.ts.
import { connect } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { closeAllBackends, startBackend } from '../support/backends.js'
import { registerTarget, startTestProxy, stopAllProxies } from '../support/proxy.js'
import { until } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

let zk: ZkCluster

beforeAll(async () => { zk = await startZooKeeper({ nodes: 1 }) })

afterEach(async () => {
  await stopAllProxies()
  await closeAllBackends()
  await closeAllSessions()
})

afterAll(async () => { await zk?.stop() })

/** A proxy in front of a backend that echoes the request headers it got (cacheable for 60 s). */
async function setup (args: string[]): Promise<number> {
  const s = await connectSession(zk.connectString)
  const targets = uniquePath('targets')
  const backend = await startBackend('b', (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.setHeader('cache-control', 'public, max-age=60')
    res.end(JSON.stringify(req.headers))
  })
  await registerTarget(s, targets, 'b', backend.url)
  const proxy = await startTestProxy(zk.connectString, ['--targets-path', targets, ...args])
  await until(() => proxy.router.targets.length === 1)
  return Number(new URL(proxy.url).port)
}

/** One request over a raw socket (the client's headers exactly as given). */
async function get (port: number, path: string, headers: string): Promise<{ status: number, cache: string | undefined, seen: Record<string, string> }> {
  const text = await new Promise<string>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1')
    let out = ''
    sock.on('data', (c: Buffer) => { out += c.toString('latin1') })
    sock.on('error', reject)
    sock.on('close', () => { resolve(out) })
    sock.write(`GET ${path} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`)
  })
  const body = text.slice(text.indexOf('\r\n\r\n') + 4)
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    cache: /\r\nx-cache: (\w+)/i.exec(text)?.[1],
    seen: JSON.parse(body) as Record<string, string>
  }
}

const SPOOFED = 'Host: shop.example\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n'

describe('forwarding headers', () => {
  it('an untrusted client\'s X-Forwarded-For is appended to, and its X-Forwarded-Proto/-Host are replaced', async () => {
    const port = await setup(['--cache-ttl', '0'])
    const { seen } = await get(port, '/a', SPOOFED)
    expect(seen['x-forwarded-for']).toBe('10.9.9.9, 127.0.0.1')
    expect(seen['x-forwarded-proto']).toBe('http')
    expect(seen['x-forwarded-host']).toBe('shop.example')
  })

  it('--trust-proxy naming other peers does not trust this one', async () => {
    const port = await setup(['--cache-ttl', '0', '--trust-proxy', '10.0.0.0/8,::1'])
    const { seen } = await get(port, '/a', SPOOFED)
    expect(seen['x-forwarded-proto']).toBe('http')
    expect(seen['x-forwarded-host']).toBe('shop.example')
  })

  it('from a --trust-proxy peer, X-Forwarded-Proto/-Host are kept and X-Forwarded-For is still appended', async () => {
    const port = await setup(['--cache-ttl', '0', '--trust-proxy', '127.0.0.1/32'])
    const { seen } = await get(port, '/a', SPOOFED)
    expect(seen['x-forwarded-for']).toBe('10.9.9.9, 127.0.0.1')
    expect(seen['x-forwarded-proto']).toBe('https')
    expect(seen['x-forwarded-host']).toBe('evil.example')
    // Without the header, the trusted peer gets the same values as anyone.
    const plain = await get(port, '/b', 'Host: shop.example\r\n')
    expect(plain.seen['x-forwarded-proto']).toBe('http')
    expect(plain.seen['x-forwarded-host']).toBe('shop.example')
  })
})

describe('cache poisoning', () => {
  it('through a trusted front proxy, a response to an X-Forwarded-Host other than Host is not stored for everyone', async () => {
    const port = await setup(['--trust-proxy', '127.0.0.1'])
    const poisoned = await get(port, '/page', SPOOFED)
    expect(poisoned.seen['x-forwarded-host']).toBe('evil.example')
    const next = await get(port, '/page', 'Host: shop.example\r\n')
    expect(next.cache).toBe('MISS')
    expect(next.seen['x-forwarded-host']).toBe('shop.example')
    // A response that matches the key is stored as usual.
    expect((await get(port, '/page', 'Host: shop.example\r\n')).cache).toBe('HIT')
  })

  it('an untrusted client\'s X-Forwarded-Host never reaches the origin, so the stored response is the Host\'s', async () => {
    const port = await setup([])
    const first = await get(port, '/home', SPOOFED)
    expect(first.seen['x-forwarded-host']).toBe('shop.example')
    const hit = await get(port, '/home', 'Host: shop.example\r\n')
    expect(hit.cache).toBe('HIT')
    expect(hit.seen['x-forwarded-host']).toBe('shop.example')
  })
})
