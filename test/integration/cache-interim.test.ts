// RFC 9110 §15.2 interim (1xx) responses through the proxy and its cache, with a raw client
// that sees every response on the wire: "A client MUST be able to parse one or more 1xx
// responses received prior to a final response", a proxy forwards them, and a cache stores
// only the final response ("1xx responses are terminated by the end of the header section").
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { useZooKeeper } from '../support/suite.js'
import { until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend } from '../support/backends.js'
import { registerTarget, startTestProxy } from '../support/proxy.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

const zkCluster = useZooKeeper()
const LINK = '</style.css>; rel=preload; as=style'

async function setup (): Promise<ProxyRuntime> {
  const backend = await startBackend('a', (req, res) => {
    res.writeProcessing()
    res.writeEarlyHints({ link: LINK })
    res.setHeader('cache-control', 'public, max-age=600')
    res.end(`final ${req.url ?? ''}`)
  })
  const session = await connectSession(zkCluster().connectString, { sessionTimeoutMs: 10_000 })
  const targetsPath = uniquePath('targets')
  await registerTarget(session, targetsPath, 'a', backend.url)
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', targetsPath])
  await until(() => proxy.router.targets.length === 1, { message: 'proxy sees the target' })
  return proxy
}

/** Every status line and the final body, as the client reads them off the socket. */
async function wire (proxy: ProxyRuntime, path: string, version = '1.1'): Promise<{ statuses: string[], text: string, body: string }> {
  const { port } = new URL(proxy.url)
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => {
      socket.write(`GET ${path} HTTP/${version}\r\nHost: site.test\r\nConnection: close\r\n\r\n`)
    })
    socket.on('data', (c: Buffer) => { chunks.push(c) })
    socket.on('error', reject)
    socket.on('close', () => { resolve(Buffer.concat(chunks).toString('latin1')) })
  })
  const statuses = [...text.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => m[1]!)
  return { statuses, text, body: text.slice(text.lastIndexOf('\r\n\r\n') + 4) }
}

describe('interim responses (RFC 9110 §15.2)', () => {
  it('102 and 103 reach an HTTP/1.1 client before the final response, which alone is stored', async () => {
    const proxy = await setup()
    const miss = await wire(proxy, '/page')
    expect(miss.statuses).toEqual(['102', '103', '200'])
    expect(miss.text).toMatch(/HTTP\/1\.1 103 Early Hints\r\n(?:[^\r\n]+\r\n)*link: <\/style\.css>; rel=preload; as=style\r\n/i)
    expect(miss.text).toMatch(/x-cache: MISS/i)
    expect(miss.body).toBe('final /page')
    // The stored response is the final one: a hit is a 200 with its body (no interim replayed).
    const hit = await wire(proxy, '/page')
    expect(hit.statuses).toEqual(['200'])
    expect(hit.text).toMatch(/x-cache: HIT/i)
    expect(hit.body).toBe('final /page')
  })

  it('an HTTP/1.0 client gets no 1xx, only the final response', async () => {
    const proxy = await setup()
    const r = await wire(proxy, '/old', '1.0')
    expect(r.statuses).toEqual(['200'])
    expect(r.body).toBe('final /old')
  })
})
