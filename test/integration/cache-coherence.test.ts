// Revision coherence through a rolling deploy, against a real ZooKeeper, two real proxies and
// real origins: a stored response is served only while a live target of its pool carries the
// revision that produced it (docs/cache.md "Revisions and coherence").
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend, type Backend } from '../support/backends.js'
import { startTestProxy } from '../support/proxy.js'
import { CreateMode, type ZkSession } from '../../src/zk/index.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

const zkCluster = useZooKeeper()

interface Reply { status: number, body: string, cache: string | undefined, servedBy: string | undefined }

async function get (base: string, path: string, host?: string): Promise<Reply> {
  const r = await request(`${base}${path}`, { headers: host === undefined ? {} : { host } })
  const body = await r.body.text()
  return { status: r.statusCode, body, cache: r.headers['x-cache'] as string | undefined, servedBy: r.headers['x-served-by'] as string | undefined }
}

/** An origin at `revision`: every answer names it and may be stored for a minute. */
async function originAt (name: string, revision: string): Promise<Backend> {
  return await startBackend(name, (req, res) => {
    res.setHeader('cache-control', 'public, max-age=60')
    res.end(`${revision} ${req.url ?? ''}`)
  })
}

async function register (session: ZkSession, targetsPath: string, name: string, url: string, revision: string | undefined, routes?: string[]): Promise<void> {
  await session.mkdirp(targetsPath)
  const data = { url, requests: 0, ...(revision === undefined ? {} : { revision }), ...(routes === undefined ? {} : { routes }) }
  await session.create(`${targetsPath}/${name}`, Buffer.from(JSON.stringify(data)), CreateMode.EPHEMERAL)
}

async function seeTargets (proxies: ProxyRuntime[], n: number): Promise<void> {
  await until(() => proxies.every((p) => p.router.targets.length === n), { message: `every proxy sees ${n} target(s)` })
}

describe('revision coherence', () => {
  it('a rolling deploy A → B: either revision while mixed, none of A on either proxy once A left', async () => {
    const targetsPath = uniquePath('targets')
    const agePath = uniquePath('cacheAge')
    const session = await connectSession(zkCluster().connectString, { sessionTimeoutMs: 10_000 })
    const r1 = await originAt('r1', 'A')
    const r2 = await originAt('r2', 'B')
    await session.create(agePath, Buffer.from('A'))
    await register(session, targetsPath, 'r1', r1.url, 'A')
    const flags = ['--targets-path', targetsPath, '--cache-age-path', agePath]
    const proxies = [await startTestProxy(zkCluster().connectString, flags), await startTestProxy(zkCluster().connectString, flags)]
    await seeTargets(proxies, 1)
    const early = Array.from({ length: 10 }, (_, i) => `/early/${i}`)
    for (const p of proxies) for (const path of early) expect((await get(p.url, path)).body).toBe(`A ${path}`)

    // r2 joins at B: /cacheAge says B, but the pool is mixed, so A's answers are still right.
    await register(session, targetsPath, 'r2', r2.url, 'B')
    await session.set(agePath, Buffer.from('B'), -1)
    await seeTargets(proxies, 2)
    // The new /cacheAge value cleared each cache once (its meaning is unchanged).
    await until(() => proxies.every((p) => p.cache?.stats().clears === 1), { message: 'both caches cleared for B' })
    const mixed = Array.from({ length: 30 }, (_, i) => `/mixed/${i}`)
    const answeredBy = new Set<string>()
    for (const p of proxies) {
      for (const path of mixed) {
        const r = await get(p.url, path)
        expect(r.status).toBe(200)
        answeredBy.add(r.body.split(' ')[0]!)
        // Stored on the first answer: the second one is a hit with the same revision's body.
        const again = await get(p.url, path)
        expect(again).toMatchObject({ cache: 'HIT', body: r.body })
      }
    }
    // Least-used spreads a burst over both targets: both revisions were stored while mixed.
    expect([...answeredBy].sort()).toEqual(['A', 'B'])

    // r1 leaves: no proxy answers with A any more, for any URL it had stored.
    await session.delete(`${targetsPath}/r1`, -1)
    await r1.close()
    await seeTargets(proxies, 1)
    for (const p of proxies) {
      for (const path of [...early, ...mixed]) {
        const r = await get(p.url, path)
        expect(r.status).toBe(200)
        expect(r.body).toBe(`B ${path}`)
      }
      expect(p.cache?.stats().revisionDrops).toBeGreaterThan(0)
    }
  })

  it('a deploy of one app keeps the other app\'s entries (pools)', async () => {
    const targetsPath = uniquePath('targets')
    const agePath = uniquePath('cacheAge')
    const session = await connectSession(zkCluster().connectString, { sessionTimeoutMs: 10_000 })
    const shop1 = await originAt('shop1', 'S1')
    const blog = await originAt('blog', 'B1')
    await session.create(agePath, Buffer.from('B1'))
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', targetsPath, '--cache-age-path', agePath])
    await register(session, targetsPath, 'shop1', shop1.url, 'S1', ['shop.test'])
    await register(session, targetsPath, 'blog', blog.url, 'B1', ['blog.test'])
    await seeTargets([proxy], 2)
    expect((await get(proxy.url, '/p', 'shop.test')).body).toBe('S1 /p')
    expect((await get(proxy.url, '/p', 'blog.test')).body).toBe('B1 /p')

    const shop2 = await originAt('shop2', 'S2')
    // The new shop replica publishes its revision (new to the fleet) as a replica does: written
    // here before its znode, so the proxy may read it before it sees a target carrying it.
    await session.set(agePath, Buffer.from('S2'), -1)
    await register(session, targetsPath, 'shop2', shop2.url, 'S2', ['shop.test'])
    await until(() => proxy.cache?.stats().clears === 1, { message: 'the shop pool cleared for S2' })
    await session.delete(`${targetsPath}/shop1`, -1)
    await until(() => proxy.router.targets.map((t) => t.name).sort().join() === 'blog,shop2', { message: 'shop deployed' })

    expect((await get(proxy.url, '/p', 'shop.test')).body).toBe('S2 /p')
    const blogHit = await get(proxy.url, '/p', 'blog.test')
    expect(blogHit).toMatchObject({ cache: 'HIT', body: 'B1 /p' })
    expect(blog.hits('/p')).toBe(1)
  })
})
