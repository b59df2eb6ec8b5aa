// Many apps behind one proxy, over HTTP: the routes the targets declare decide which pool
// answers each request (Host, then the longest path prefix), failover stays inside a pool,
// requests no route matches go to the default pool or get 404 no_route, and --strip-prefix
// mounts a replica that serves `/` under a path. Real backends, a real ZooKeeper.
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { WebSocket, WebSocketServer } from 'ws'
import { useZooKeeper } from '../support/suite.js'
import { until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend, type Backend } from '../support/backends.js'
import { startTestProxy } from '../support/proxy.js'
import { freePort } from '../support/ports.js'
import { CreateMode, type ZkSession } from '../../src/zk/index.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

const zkCluster = useZooKeeper()

async function declare (s: ZkSession, path: string, name: string, url: string, routes?: string[], extra: Record<string, unknown> = {}): Promise<void> {
  await s.mkdirp(path)
  await s.create(`${path}/${name}`, Buffer.from(JSON.stringify({ url, requests: 0, ...(routes === undefined ? {} : { routes }), ...extra })), CreateMode.EPHEMERAL)
}

async function get (proxy: ProxyRuntime, host: string, path: string): Promise<{ status: number, servedBy: string | undefined, body: string }> {
  const r = await request(`${proxy.url}${path}`, { headers: { host } })
  const body = await r.body.text()
  return { status: r.statusCode, servedBy: r.headers['x-served-by'] as string | undefined, body }
}

interface Fleet { proxy: ProxyRuntime, session: ZkSession, path: string, b: Record<string, Backend> }

/** shop (2 replicas) on shop.example.com, api on example.com/api, blog on *.blog.example, site as the default pool. */
async function threeApps (flags: string[] = []): Promise<Fleet> {
  const path = uniquePath('targets')
  const session = await connectSession(zkCluster().connectString)
  const b: Record<string, Backend> = {}
  for (const name of ['shop-1', 'shop-2', 'api-1', 'blog-1', 'site-1']) b[name] = await startBackend(name)
  await declare(session, path, 'shop-1', b['shop-1']!.url, ['shop.example.com'])
  await declare(session, path, 'shop-2', b['shop-2']!.url, ['shop.example.com'])
  await declare(session, path, 'api-1', b['api-1']!.url, ['example.com/api'])
  await declare(session, path, 'blog-1', b['blog-1']!.url, ['*.blog.example'])
  await declare(session, path, 'site-1', b['site-1']!.url)
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--cache-ttl', '0', ...flags])
  await until(() => proxy.router.targets.length === 5, { message: 'five targets' })
  return { proxy, session, path, b }
}

describe('routes over HTTP', () => {
  it('three apps and a default behind one proxy: Host first, then the longest path prefix on a segment boundary', async () => {
    const { proxy } = await threeApps()
    const cases: Array<[string, string, string]> = [
      ['shop.example.com', '/', 'shop'],
      ['SHOP.example.com:9000', '/cart', 'shop'],
      ['example.com', '/api', 'api-1'],
      ['example.com', '/api/users?x=1', 'api-1'],
      ['example.com', '/apix', 'site-1'],
      ['example.com', '/', 'site-1'],
      ['eu.blog.example', '/post/1', 'blog-1'],
      ['blog.example', '/', 'site-1'],
      ['a.b.blog.example', '/', 'site-1'],
      ['unknown.test', '/', 'site-1']
    ]
    for (const [host, path, app] of cases) {
      const r = await get(proxy, host, path)
      expect(r.status, `${host}${path}`).toBe(200)
      expect(r.servedBy, `${host}${path}`).toMatch(new RegExp(`^${app}`))
    }
  })

  it('balances least-used inside a pool only', async () => {
    const { proxy, b } = await threeApps()
    for (let i = 0; i < 20; i++) expect((await get(proxy, 'shop.example.com', `/p${i}`)).servedBy).toMatch(/^shop-/)
    expect(b['shop-1']!.hits()).toBe(10)
    expect(b['shop-2']!.hits()).toBe(10)
    expect(b['site-1']!.hits() + b['api-1']!.hits() + b['blog-1']!.hits()).toBe(0)
  })

  it('an app\'s replica killed (znode still there) fails over inside its own pool, never to another app', async () => {
    const { proxy, b } = await threeApps()
    await b['shop-1']!.close()
    for (let i = 0; i < 10; i++) {
      const r = await get(proxy, 'shop.example.com', `/k${i}`)
      expect(r.status).toBe(200)
      expect(r.servedBy).toBe('shop-2')
    }
    // The api app has one replica: killing it gives its requests a 502, never another app's answer.
    await b['api-1']!.close()
    const r = await get(proxy, 'example.com', '/api/x')
    expect(r.status).toBe(502)
    expect(b['site-1']!.hits()).toBe(0)
  })

  it('no route and no default pool: 404 no_route; a route appears and disappears with its targets', async () => {
    const path = uniquePath('targets')
    const session = await connectSession(zkCluster().connectString)
    const shop = await startBackend('shop')
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--cache-ttl', '0'])
    await declare(session, path, 'shop', shop.url, ['shop.example.com'])
    await until(() => proxy.router.targets.length === 1)
    const miss = await request(`${proxy.url}/`, { headers: { host: 'other.example' } })
    expect(miss.statusCode).toBe(404)
    expect(JSON.parse(await miss.body.text())).toMatchObject({ error: 'no_route' })
    expect((await get(proxy, 'shop.example.com', '/')).status).toBe(200)
    // A second app appears by registering, and is routed within a second.
    const blog = await startBackend('blog')
    await declare(session, path, 'blog', blog.url, ['blog.example'])
    await until(async () => (await get(proxy, 'blog.example', '/')).servedBy === 'blog', { message: 'blog routed' })
    // It leaves: its Host no longer matches anything.
    await session.delete(`${path}/blog`, -1)
    await until(async () => (await get(proxy, 'blog.example', '/')).status === 404, { message: 'blog gone' })
  })

  it('--strip-prefix: a replica that serves / mounted at example.com/api/', async () => {
    const path = uniquePath('targets')
    const session = await connectSession(zkCluster().connectString)
    const api = await startBackend('api', (req, res) => { res.end(`saw ${req.url ?? ''}`) })
    await declare(session, path, 'api', api.url, ['example.com/api/'], { stripPrefix: true })
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--cache-ttl', '0'])
    await until(() => proxy.router.targets.length === 1)
    expect((await get(proxy, 'example.com', '/api/users?id=7')).body).toBe('saw /users?id=7')
    expect((await get(proxy, 'example.com', '/api')).body).toBe('saw /')
  })

  it('WebSocket upgrades are routed by the same table', async () => {
    const path = uniquePath('targets')
    const session = await connectSession(zkCluster().connectString)
    const wss = new WebSocketServer({ port: await freePort(), host: '127.0.0.1' })
    await new Promise<void>(resolve => wss.once('listening', () => { resolve() }))
    const port = (wss.address() as { port: number }).port
    wss.on('connection', (ws) => { ws.send('chat app') })
    const site = await startBackend('site')
    try {
      await declare(session, path, 'chat', `http://127.0.0.1:${port}`, ['chat.example'])
      await declare(session, path, 'site', site.url)
      const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
      await until(() => proxy.router.targets.length === 2)
      const ws = new WebSocket(`${proxy.url.replace(/^http/, 'ws')}/socket`, { headers: { host: 'chat.example' } })
      const first = await new Promise<string>((resolve, reject) => {
        ws.once('message', (d) => { resolve((d as Buffer).toString()) })
        ws.once('error', reject)
      })
      expect(first).toBe('chat app')
      ws.terminate()
    } finally {
      await new Promise<void>(resolve => wss.close(() => { resolve() }))
    }
  })
})
