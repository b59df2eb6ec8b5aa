// RFC 9213 through the real proxy: CDN-Cache-Control (or the field --cdn-cache-control-field
// names) decides what this shared cache stores, before Cache-Control; the field is passed on.
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend, type Backend } from '../support/backends.js'
import { parseProxyFlags, registerTarget, startTestProxy } from '../support/proxy.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

const zkCluster = useZooKeeper()

async function setup (args: string[] = []): Promise<{ proxy: ProxyRuntime, backend: Backend }> {
  // The browser must not keep it (Cache-Control: no-store); the CDN may, for a minute.
  const backend = await startBackend('a', (req, res) => {
    res.setHeader('cache-control', 'no-store')
    res.setHeader('cdn-cache-control', 'max-age=60')
    res.setHeader('edge-control', 'no-store')
    res.end(`#${backend.hits(req.url)}`)
  })
  const session = await connectSession(zkCluster().connectString, { sessionTimeoutMs: 10_000 })
  const targetsPath = uniquePath('targets')
  await registerTarget(session, targetsPath, 'a', backend.url)
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', targetsPath, ...args])
  await until(() => proxy.router.targets.length === 1, { message: 'proxy sees the target' })
  return { proxy, backend }
}

async function get (proxy: ProxyRuntime, path: string): Promise<{ cache: string, cc: string, cdn: string }> {
  const r = await request(`${proxy.url}${path}`)
  await r.body.text()
  return { cache: r.headers['x-cache'] as string, cc: r.headers['cache-control'] as string, cdn: r.headers['cdn-cache-control'] as string }
}

describe('CDN-Cache-Control (RFC 9213)', () => {
  it('takes precedence over Cache-Control here, and both reach the client unchanged', async () => {
    const { proxy, backend } = await setup()
    expect(await get(proxy, '/p')).toEqual({ cache: 'MISS', cc: 'no-store', cdn: 'max-age=60' })
    expect(await get(proxy, '/p')).toEqual({ cache: 'HIT', cc: 'no-store', cdn: 'max-age=60' })
    expect(backend.hits('/p')).toBe(1)
  })

  it('--cdn-cache-control-field names another field; off obeys Cache-Control only', async () => {
    const edge = await setup(['--cdn-cache-control-field', 'Edge-Control'])
    await get(edge.proxy, '/q')
    expect((await get(edge.proxy, '/q')).cache).toBe('MISS')
    const off = await setup(['--cdn-cache-control-field', 'off'])
    await get(off.proxy, '/q')
    expect((await get(off.proxy, '/q')).cache).toBe('MISS')
    expect(() => parseProxyFlags(['--cdn-cache-control-field', 'not a name'])).toThrow(/not a header field name/)
  })
})
