// What the proxy does with each request shape, over raw sockets so the client does not tidy
// anything up: header handling both ways, limits with their status codes, smuggling shapes,
// absolute-form targets, and bodies passed through untouched.
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import { until } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { closeAllBackends, startBackend, type Backend } from '../support/backends.js'
import { registerTarget, startTestProxy, stopAllProxies } from '../support/proxy.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

let zk: ZkCluster
let proxy: ProxyRuntime
let backend: Backend
let port: number

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
  const path = uniquePath('targets')
  backend = await startBackend('b', (req, res, body) => {
    if (req.url === '/hop') {
      // Hop-by-hop response headers, and one named by Connection, must not reach the client.
      res.setHeader('connection', 'keep-alive, x-upstream-private')
      res.setHeader('keep-alive', 'timeout=99, max=7')
      res.setHeader('x-upstream-private', 'secret')
    }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString('base64') }))
  })
  const s = await connectSession(zk.connectString)
  await registerTarget(s, path, 'b', backend.url)
  proxy = await startTestProxy(zk.connectString, ['--targets-path', path, '--cache-ttl', '0', '--max-header-bytes', '8k', '--body-limit', '1m'])
  await until(() => proxy.router.targets.length === 1)
  port = Number(new URL(proxy.url).port)
})

afterAll(async () => {
  await stopAllProxies()
  await closeAllBackends()
  await closeAllSessions()
  await zk?.stop()
})

/** Sends raw bytes and returns the status line's code and the rest (connection closed after). */
async function raw (text: string): Promise<{ status: number, text: string }> {
  return await new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1')
    let out = ''
    sock.on('data', (c: Buffer) => { out += c.toString('latin1') })
    sock.on('error', reject)
    sock.on('close', () => { resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(out)?.[1] ?? 0), text: out }) })
    // Every request says Connection: close (or is HTTP/1.0), so the proxy closes after answering.
    sock.write(text)
  })
}

interface Echo { method: string, url: string, headers: Record<string, string>, body: string }
function echoOf (text: string): Echo {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, '')) as Echo
}

describe('headers', () => {
  it('passes Host on, appends X-Forwarded-For, sets X-Forwarded-Proto/-Host and Via, and strips hop-by-hop request headers', async () => {
    const r = await raw('GET /h HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close, x-client-private\r\nX-Client-Private: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nX-Forwarded-Proto: https\r\n\r\n')
    expect(r.status).toBe(200)
    const echo = echoOf(r.text)
    expect(echo.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1')
    expect(echo.headers['x-forwarded-proto']).toBe('http')
    expect(echo.headers['x-forwarded-host']).toBe('shop.example')
    expect(echo.headers.via).toBe('1.1 zkproxy')
    for (const h of ['x-client-private', 'keep-alive', 'proxy-authorization', 'te']) expect(echo.headers[h]).toBeUndefined()
    // The client's Host reaches the target unchanged (--upstream-host client, the default).
    expect(echo.headers.host).toBe('shop.example')
  })

  it('strips hop-by-hop response headers and those the upstream Connection header names', async () => {
    const r = await request(`${proxy.url}/hop`)
    await r.body.text()
    expect(r.statusCode).toBe(200)
    expect(r.headers['x-upstream-private']).toBeUndefined()
    // Node adds its own Keep-Alive for the client connection; the upstream's must not pass.
    expect(r.headers['keep-alive']).not.toBe('timeout=99, max=7')
    expect(r.headers.via).toBe('1.1 zkproxy')
  })
})

describe('request shapes get explicit answers', () => {
  const cases: Array<[string, string, number]> = [
    ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n', 400],
    ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n', 400],
    ['duplicate Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabc', 400],
    ['obs-fold header', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  2\r\nConnection: close\r\n\r\n', 400],
    ['invalid chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400],
    ['Transfer-Encoding other than chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n', 501],
    ['Transfer-Encoding on HTTP/1.0', 'POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['dot-segment path', 'GET /a/../admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 400],
    ['encoded dot-segment path', 'GET /a/%2e%2e/admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 400],
    ['backslash in the path', 'GET /\\evil.example/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 400],
    ['backslash in the path, HEAD', 'HEAD /a\\b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 400],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n', 400],
    ['oversized header section', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(9000)}\r\nConnection: close\r\n\r\n`, 431],
    ['body over --body-limit (Content-Length)', `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${2 * 1024 * 1024}\r\nConnection: close\r\n\r\n`, 413]
  ]
  for (const [name, text, status] of cases) {
    it(`${name} → ${status}`, async () => {
      const before = backend.hits()
      expect((await raw(text)).status).toBe(status)
      expect(backend.hits()).toBe(before)
    })
  }

  // [what, request line target, Host, the target the backend must see]
  const targets: Array<[string, string, string, string]> = [
    ['an absolute-form request URI goes to a registered target with its path only, never to the named host',
      'http://169.254.169.254:81/latest/meta-data?x=1', '169.254.169.254', '/latest/meta-data?x=1'],
    ['a leading "//" is merged so the backend never sees a network-path reference', '//evil.example/x', 'a', '/evil.example/x'],
    ['a backslash in the query is passed on as sent (browsers send it raw)', '/q?path=a\\b', 'a', '/q?path=a\\b'],
    ['characters outside RFC 3986 in the path reach the backend percent-encoded (WHATWG URL), the query as sent',
      '/a|b{c}?x="y"', 'a', '/a|b%7Bc%7D?x="y"']
  ]
  for (const [name, target, host, expected] of targets) {
    it(name, async () => {
      const r = await raw(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
      expect(r.status).toBe(200)
      expect(echoOf(r.text).url).toBe(expected)
    })
  }

  it('an Upgrade: h2c request is answered over HTTP/1.1 without upgrading', async () => {
    const r = await raw('GET /u HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n')
    expect(r.status).toBe(200)
    const echo = echoOf(r.text)
    expect(echo.headers.upgrade).toBeUndefined()
    expect(echo.headers['http2-settings']).toBeUndefined()
  })

  it('a chunked body over --body-limit is refused with 413', async () => {
    const chunk = Buffer.alloc(256 * 1024, 'a')
    const r = await request(`${proxy.url}/big`, {
      method: 'POST',
      body: Readable.from((function * () { for (let i = 0; i < 8; i++) yield chunk })())
    })
    await r.body.text()
    expect(r.statusCode).toBe(413)
  })
})

describe('bodies pass through untouched', () => {
  it('forwards POST, PUT, PATCH and DELETE bodies byte for byte, with any content type', async () => {
    const payload = Buffer.from([0, 1, 2, 255, 254, 10, 13, 123, 34])
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      const r = await request(`${proxy.url}/m`, { method, body: payload, headers: { 'content-type': 'application/json' } })
      const echo = await r.body.json() as Echo
      expect(r.statusCode).toBe(200)
      expect(echo.method).toBe(method)
      expect(Buffer.from(echo.body, 'base64').equals(payload)).toBe(true)
    }
  })

  it('streams a chunked body larger than --retry-body-limit', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'q')
    const r = await request(`${proxy.url}/stream`, {
      method: 'POST',
      body: Readable.from((function * () { for (let i = 0; i < 12; i++) yield chunk })())
    })
    const echo = await r.body.json() as Echo
    expect(r.statusCode).toBe(200)
    expect(Buffer.from(echo.body, 'base64').length).toBe(12 * 64 * 1024)
  })
})
