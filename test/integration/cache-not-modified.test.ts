// RFC 9111 §4.3.4 (freshening stored responses upon validation) through the real proxy: a
// client's conditional request that goes upstream and gets a 304 updates the stored response it
// validates, "replacing ... the corresponding header fields" (§3.2), and nothing else.
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend, type Backend } from '../support/backends.js'
import { registerTarget, startTestProxy } from '../support/proxy.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

const zkCluster = useZooKeeper()

/** The origin: a 200 with ETag "v1"; a matching If-None-Match gets a 304 with `notModified` fields. */
async function setup (notModified: Record<string, string>): Promise<{ proxy: ProxyRuntime, backend: Backend }> {
  let n = 0
  const backend = await startBackend('a', (req, res) => {
    n++
    res.setHeader('x-version', String(n))
    if (req.headers['if-none-match'] === '"v1"') {
      res.statusCode = 304
      for (const [name, value] of Object.entries(notModified)) res.setHeader(name, value)
      res.end()
      return
    }
    res.setHeader('etag', '"v1"')
    res.setHeader('cache-control', 'max-age=600')
    res.end('content')
  })
  const session = await connectSession(zkCluster().connectString, { sessionTimeoutMs: 10_000 })
  const targetsPath = uniquePath('targets')
  await registerTarget(session, targetsPath, 'a', backend.url)
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', targetsPath])
  await until(() => proxy.router.targets.length === 1, { message: 'proxy sees the target' })
  return { proxy, backend }
}

async function get (proxy: ProxyRuntime, headers: Record<string, string> = {}): Promise<{ status: number, cache: string, version: string, body: string, cc: string }> {
  const r = await request(`${proxy.url}/doc`, { headers })
  const body = await r.body.text()
  return { status: r.statusCode, cache: r.headers['x-cache'] as string, version: r.headers['x-version'] as string, body, cc: r.headers['cache-control'] as string }
}

const REVALIDATE = { 'cache-control': 'no-cache', 'if-none-match': '"v1"' }

describe('304 updates the stored response (RFC 9111 §4.3.4)', () => {
  it('a 304 with the same strong ETag replaces the stored header fields; the body stays', async () => {
    const { proxy, backend } = await setup({ etag: '"v1"', 'cache-control': 'max-age=900' })
    expect(await get(proxy)).toMatchObject({ status: 200, cache: 'MISS', version: '1', body: 'content' })
    expect(await get(proxy, REVALIDATE)).toMatchObject({ status: 304, version: '2' })
    expect(await get(proxy)).toMatchObject({ status: 200, cache: 'HIT', version: '2', body: 'content', cc: 'max-age=900' })
    expect(backend.hits('/doc')).toBe(2)
  })

  it('a 304 whose strong ETag names another representation updates nothing', async () => {
    const { proxy } = await setup({ etag: '"v9"', 'cache-control': 'max-age=900' })
    await get(proxy)
    expect((await get(proxy, REVALIDATE)).status).toBe(304)
    expect(await get(proxy)).toMatchObject({ cache: 'HIT', version: '1', cc: 'max-age=600' })
  })

  it('a 304 that now says no-store removes the stored response', async () => {
    const { proxy } = await setup({ etag: '"v1"', 'cache-control': 'no-store' })
    await get(proxy)
    expect((await get(proxy, REVALIDATE)).status).toBe(304)
    expect(await get(proxy)).toMatchObject({ cache: 'MISS', version: '3' })
  })
})
