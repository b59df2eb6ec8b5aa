// Routes through a real ZooKeeper: what a Registration writes (and keeps through a re-creation),
// the floor a routed target starts at, and the proxy's route table following the znodes — a
// route appears and disappears with its targets, two proxies agree, a znode with a bad route is
// skipped with one warning per version, and count flushes keep the routes they do not own.
import pino, { type Logger } from 'pino'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { decodeTarget } from '../../src/registry/codec.js'
import { Registration } from '../../src/registry/registration.js'
import { DEFAULT_POOL_KEY } from '../../src/routes.js'
import { CreateMode, expireSession, type ZkSession } from '../../src/zk/index.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'
import { startBackend } from '../support/backends.js'
import { registerTarget, startTestProxy } from '../support/proxy.js'
import { useZooKeeper } from '../support/suite.js'
import { ms, until, untilValue } from '../support/until.js'
import { connectSession, silentLogger, uniquePath } from '../support/zk-client.js'

const zkCluster = useZooKeeper()

function roots (): { targets: string, cacheAge: string } {
  const base = uniquePath('routes')
  return { targets: `${base}/targets`, cacheAge: `${base}/cacheAge` }
}

async function register (session: ZkSession, r: { targets: string, cacheAge: string }, name: string, routes: string[], port = 4000, stripPrefix = false): Promise<Registration> {
  const reg = new Registration({
    session, targetsPath: r.targets, cacheAgePath: r.cacheAge, name, url: `http://127.0.0.1:${port}`, revision: 'rev-1', routes, stripPrefix, logger: silentLogger
  })
  reg.start()
  await until(() => reg.state === 'registered', { message: `${name} registered` })
  return reg
}

async function znode (s: ZkSession, path: string): Promise<Record<string, unknown>> {
  return JSON.parse((await s.get(path)).data.toString('utf8')) as Record<string, unknown>
}

async function createTarget (s: ZkSession, path: string, name: string, data: Record<string, unknown>): Promise<void> {
  await s.mkdirp(path)
  await s.create(`${path}/${name}`, Buffer.from(JSON.stringify(data)), CreateMode.EPHEMERAL)
}

/** The pools as a proxy sees them: route → target names. */
function pools (p: ProxyRuntime): Record<string, string[]> {
  return Object.fromEntries(p.router.pools.map(pool => [pool.key, pool.targets.map(t => t.name)]))
}

describe('Registration with routes', () => {
  it('writes routes as given (duplicates dropped) and --strip-prefix, and keeps them (and its count) when the node is re-created after expiry', async () => {
    const s = await connectSession(zkCluster().connectString)
    const observer = await connectSession(zkCluster().connectString)
    const r = roots()
    const reg = await register(s, r, 'shop-1', ['Shop.Example.com', 'shop.example.com/', 'example.com/api/'], 4000, true)
    try {
      expect(reg.routes).toEqual(['Shop.Example.com', 'example.com/api/'])
      expect((await znode(observer, reg.path))['routes']).toEqual(['Shop.Example.com', 'example.com/api/'])
      expect((await znode(observer, reg.path))['stripPrefix']).toBe(true)
      // A same-pool target far ahead of us appears; after expiry our node is re-created with
      // its routes, and continues its own exact count (only a first registration starts at the
      // pool's minimum: a re-created one must not count requests nobody routed).
      await createTarget(observer, r.targets, 'shop-2', { url: 'http://127.0.0.1:4999', requests: 500, routes: ['shop.example.com'] })
      const { sessionId: id, sessionPassword: password } = s
      if (id === undefined || password === undefined) throw new Error('no session')
      await expireSession(zkCluster().connectString, { id, password })
      const data = await untilValue(async () => {
        const { data, stat } = await observer.get(reg.path)
        return stat.ephemeralOwner === s.sessionId && stat.ephemeralOwner !== id ? JSON.parse(data.toString()) as Record<string, unknown> : undefined
      }, { timeoutMs: ms(20_000), message: 'node re-created by the new session' })
      expect(data['routes']).toEqual(['Shop.Example.com', 'example.com/api/'])
      expect(data['requests']).toBe(0)
      expect(await znode(observer, reg.path)).toMatchObject({ routes: ['Shop.Example.com', 'example.com/api/'], stripPrefix: true, requests: 0 })
    } finally {
      await reg.stop()
    }
  })

  it('starts at the minimum count of its own pool, not of other apps\' targets', async () => {
    const s = await connectSession(zkCluster().connectString)
    const observer = await connectSession(zkCluster().connectString)
    const r = roots()
    await createTarget(observer, r.targets, 'site', { url: 'http://127.0.0.1:4100', requests: 100_000 })
    await createTarget(observer, r.targets, 'blog-1', { url: 'http://127.0.0.1:4101', requests: 70, routes: ['blog.example.com'] })
    await createTarget(observer, r.targets, 'blog-2', { url: 'http://127.0.0.1:4102', requests: 90, routes: ['BLOG.example.com'] })
    const blog = await register(s, r, 'blog-3', ['blog.example.com'], 4103)
    const fresh = await register(s, r, 'new-app', ['new.example.com'], 4104)
    const plain = await register(s, r, 'site-2', [], 4105)
    try {
      expect((await znode(observer, blog.path))['requests']).toBe(70)
      expect((await znode(observer, fresh.path))['requests']).toBe(0)
      expect((await znode(observer, plain.path))['requests']).toBe(100_000)
      // A default-pool registration writes no routes field at all.
      expect(await znode(observer, plain.path)).not.toHaveProperty('routes')
    } finally {
      await Promise.all([blog.stop(), fresh.stop(), plain.stop()])
    }
  })

  it('refuses a bad route naming it', () => {
    expect(() => new Registration({
      session: {} as unknown as ZkSession, targetsPath: '/t', cacheAgePath: '/c', name: 'a', url: 'http://127.0.0.1:1', revision: 'r', routes: ['ok.example.com', 'bad.example.com:8080'], logger: silentLogger
    })).toThrow(/--route: route "bad\.example\.com:8080" has a port/)
  })
})

describe('the proxy\'s route table follows the znodes', () => {
  it('a route appears with its first target and disappears with its last; two proxies agree', async () => {
    const path = uniquePath('targets')
    const s = await connectSession(zkCluster().connectString)
    const site = await startBackend('site')
    await registerTarget(s, path, 'site', site.url)
    const [p1, p2] = await Promise.all([
      startTestProxy(zkCluster().connectString, ['--targets-path', path]),
      startTestProxy(zkCluster().connectString, ['--targets-path', path])
    ])
    await until(() => p1.router.targets.length === 1 && p2.router.targets.length === 1, { message: 'first view' })
    for (const p of [p1, p2]) expect(p.router.pool('shop.example.com', '/')?.key).toBe(DEFAULT_POOL_KEY)

    const shop1 = await startBackend('shop-1')
    const shop2 = await startBackend('shop-2')
    await createTarget(s, path, 'shop-1', { url: shop1.url, requests: 0, routes: ['shop.example.com'] })
    await createTarget(s, path, 'shop-2', { url: shop2.url, requests: 0, routes: ['SHOP.example.com', 'example.com/api'], stripPrefix: true })
    const expected = { [DEFAULT_POOL_KEY]: ['site'], 'example.com/api': ['shop-2'], 'shop.example.com': ['shop-1', 'shop-2'] }
    await until(() => JSON.stringify(pools(p1)) === JSON.stringify(expected) && JSON.stringify(pools(p2)) === JSON.stringify(expected), { message: 'both proxies see the shop pools' })
    for (const p of [p1, p2]) {
      expect(p.router.pool('Shop.Example.com:9000', '/cart')?.key).toBe('shop.example.com')
      expect(p.router.pool('example.com', '/api/v1')?.key).toBe('example.com/api')
      expect(p.router.pool('example.com', '/apix')?.key).toBe(DEFAULT_POOL_KEY)
      const shop2Live = p.router.targets.find(t => t.name === 'shop-2')!
      expect(p.router.pool('example.com', '/api/v1?x=1')?.upstreamPath(shop2Live, '/api/v1?x=1')).toBe('/v1?x=1')
    }

    await s.delete(`${path}/shop-1`, -1)
    await until(() => p1.router.poolByKey('shop.example.com')?.targets.length === 1 && p2.router.poolByKey('shop.example.com')?.targets.length === 1, { message: 'shop-1 left its pool' })
    await s.delete(`${path}/shop-2`, -1)
    await until(() => p1.router.pools.length === 1 && p2.router.pools.length === 1, { message: 'shop routes gone' })
    for (const p of [p1, p2]) {
      expect(p.router.pool('shop.example.com', '/')?.key).toBe(DEFAULT_POOL_KEY)
      expect(p.router.pool('example.com', '/api')?.key).toBe(DEFAULT_POOL_KEY)
    }
  })

  it('with every target routed there is no default pool; with none left, the empty default pool', async () => {
    const path = uniquePath('targets')
    const s = await connectSession(zkCluster().connectString)
    const b = await startBackend('only')
    await createTarget(s, path, 'only', { url: b.url, requests: 0, routes: ['only.example.com'] })
    const p = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
    await until(() => p.router.targets.length === 1, { message: 'view' })
    expect(p.router.pool('other.example.com', '/')).toBeUndefined()
    expect(p.router.pool('only.example.com', '/')?.pick()?.name).toBe('only')
    await s.delete(`${path}/only`, -1)
    await until(() => p.router.targets.length === 0, { message: 'target gone' })
    expect(p.router.pool('only.example.com', '/')?.key).toBe(DEFAULT_POOL_KEY)
    expect(p.router.pool('only.example.com', '/')?.pick()).toBeUndefined()
  })

  it('skips a znode with a bad route, warning once per version, and keeps routing the others', async () => {
    const path = uniquePath('targets')
    const s = await connectSession(zkCluster().connectString)
    const good = await startBackend('good')
    await createTarget(s, path, 'good', { url: good.url, requests: 0, routes: ['good.example.com'] })
    await createTarget(s, path, 'bad', { url: good.url, requests: 0, routes: ['bad.example.com:8080'] })
    const warnings: Array<Record<string, unknown>> = []
    const logger: Logger = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(JSON.parse(line) as Record<string, unknown>) } })
    const p = await startTestProxy(zkCluster().connectString, ['--targets-path', path], logger)
    const reason = await untilValue(() => p.targets.snapshot?.rejected.find(r => r.name === 'bad')?.reason, { message: 'bad rejected' })
    expect(reason).toMatch(/"bad\.example\.com:8080" has a port/)
    expect(pools(p)).toEqual({ 'good.example.com': ['good'] })
    // Rebuilds caused by the other target's changes do not repeat the warning...
    for (let i = 1; i <= 3; i++) await s.set(`${path}/good`, Buffer.from(JSON.stringify({ url: good.url, requests: i, routes: ['good.example.com'] })), -1)
    await until(() => p.router.targets[0]?.requests === 3, { message: 'count updates seen' })
    const ignored = (): number => warnings.filter(w => w['msg'] === 'target ignored' && w['target'] === 'bad').length
    expect(ignored()).toBe(1)
    // ...a new version of the bad znode warns again, and a fixed one joins its pool.
    await s.set(`${path}/bad`, Buffer.from(JSON.stringify({ url: good.url, requests: 0, routes: ['http://bad.example.com'] })), -1)
    await until(() => ignored() === 2, { message: 'a warning for the new version' })
    await s.set(`${path}/bad`, Buffer.from(JSON.stringify({ url: good.url, requests: 0, routes: ['good.example.com'] })), -1)
    await until(() => pools(p)['good.example.com']?.length === 2, { message: 'fixed znode joins the pool' })
  })

  it('count flushes rewrite the count and keep the routes', async () => {
    const path = uniquePath('targets')
    const s = await connectSession(zkCluster().connectString)
    const b = await startBackend('app')
    await createTarget(s, path, 'app', { url: b.url, requests: 0, routes: ['app.example.com/api/'] })
    const p = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--count-flush-ms', '50', '--cache-ttl', '0'])
    await until(() => p.router.targets.length === 1, { message: 'view' })
    // Routed by Host (fetch() may not set Host: undici's request may).
    for (let i = 0; i < 5; i++) {
      const r = await request(`${p.url}/api/${i}`, { headers: { host: 'app.example.com' } })
      await r.body.dump()
      expect(r.statusCode).toBe(200)
    }
    await until(async () => (await znode(s, `${path}/app`))['requests'] === 5, { message: 'counts flushed' })
    const decoded = decodeTarget('app', (await s.get(`${path}/app`)).data)
    expect(decoded.ok && decoded.target.routes?.map(r => r.key)).toEqual(['app.example.com/api'])
    expect((await znode(s, `${path}/app`))['routes']).toEqual(['app.example.com/api/'])
  })
})
