// Fleet-wide purges through a real ZooKeeper and two real proxies (docs/cache.md "Purge"): a
// purge by host or by prefix reaches every proxy; a proxy cut off from ZooKeeper while a purge
// was published applies it when it reconnects, and clears everything when the purge it missed
// was pruned meanwhile; the admin API publishes the same purge.
import { createServer, connect, type Server, type Socket } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { ms, until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend } from '../support/backends.js'
import { registerTarget, startTestProxy } from '../support/proxy.js'
import { publishPurge } from '../../src/registry/purges.js'
import type { ZkSession } from '../../src/zk/index.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

const zkCluster = useZooKeeper()

async function cached (p: ProxyRuntime, host: string, path: string): Promise<string> {
  const r = await request(`${p.url}${path}`, { headers: { host } })
  await r.body.text()
  expect(r.statusCode).toBe(200)
  return r.headers['x-cache'] as string
}

interface Fleet { proxies: ProxyRuntime[], session: ZkSession, purgePath: string }

/** Two proxies (the second through `zk`, if given) in front of one cacheable origin. */
async function fleet (zk?: string): Promise<Fleet> {
  const targetsPath = uniquePath('targets')
  const purgePath = uniquePath('purges')
  const backend = await startBackend('a', (req, res) => {
    res.setHeader('cache-control', 'public, max-age=600')
    res.end(`${req.headers.host ?? ''}${req.url ?? ''}`)
  })
  const session = await connectSession(zkCluster().connectString, { sessionTimeoutMs: 10_000 })
  await registerTarget(session, targetsPath, 'a', backend.url)
  const flags = ['--targets-path', targetsPath, '--cache-age-path', uniquePath('cacheAge'), '--purge-path', purgePath]
  const proxies = [
    await startTestProxy(zkCluster().connectString, flags),
    await startTestProxy(zk ?? zkCluster().connectString, [...flags, '--session-timeout-ms', '10000'])
  ]
  await until(() => proxies.every((p) => p.router.targets.length === 1), { message: 'both proxies see the target' })
  return { proxies, session, purgePath }
}

const URLS: Array<[string, string]> = [['a.test', '/blog/1'], ['a.test', '/blog/2'], ['a.test', '/shop/1'], ['b.test', '/blog/1'], ['b.test', '/shop/1']]

async function fill (p: ProxyRuntime): Promise<void> {
  for (const [host, path] of URLS) {
    expect(await cached(p, host, path)).toBe('MISS')
    expect(await cached(p, host, path)).toBe('HIT')
  }
}

/** Which of URLS each proxy still answers from its cache. */
async function hits (p: ProxyRuntime): Promise<string[]> {
  const out: string[] = []
  for (const [host, path] of URLS) if (await cached(p, host, path) === 'HIT') out.push(`${host}${path}`)
  return out
}

/**
 * A TCP relay to ZooKeeper that the test can cut: while cut, open connections are reset and new
 * ones are closed at once, as in a network partition of this one client.
 */
async function relayTo (hostPort: string): Promise<{ connect: string, cut: () => void, restore: () => void }> {
  const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(':')), Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))]
  let cut = false
  const open = new Set<Socket>()
  const server: Server = createServer((client) => {
    if (cut) { client.destroy(); return }
    const upstream = connect(port, host)
    open.add(client).add(upstream)
    const drop = (): void => { client.destroy(); upstream.destroy(); open.delete(client); open.delete(upstream) }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  onTestFinished(async () => {
    for (const s of open) s.destroy()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  })
  return {
    connect: `127.0.0.1:${(server.address() as { port: number }).port}`,
    cut: () => { cut = true; for (const s of open) s.destroy() },
    restore: () => { cut = false }
  }
}

describe('fleet-wide purge', () => {
  it('by host: every proxy drops that host\'s entries, and only those', async () => {
    const { proxies, session, purgePath } = await fleet()
    for (const p of proxies) await fill(p)
    await publishPurge(session, purgePath, { host: 'A.test' })
    await until(() => proxies.every((p) => p.cache?.stats().purged === 3), { timeoutMs: ms(1000), message: 'both proxies purged a.test within a second' })
    for (const p of proxies) expect(await hits(p)).toEqual(['b.test/blog/1', 'b.test/shop/1'])
  })

  it('by prefix: every proxy drops the entries under it, on every host', async () => {
    const { proxies, session, purgePath } = await fleet()
    for (const p of proxies) await fill(p)
    await publishPurge(session, purgePath, { prefix: '/blog/' })
    await until(() => proxies.every((p) => p.cache?.stats().purged === 3), { timeoutMs: ms(1000), message: 'both proxies purged /blog/ within a second' })
    for (const p of proxies) expect(await hits(p)).toEqual(['a.test/shop/1', 'b.test/shop/1'])
  })

  it('each purge is applied once: a later purge does not re-apply an earlier one', async () => {
    const { proxies, session, purgePath } = await fleet()
    const first = await publishPurge(session, purgePath, { host: 'a.test' })
    await until(() => proxies.every((p) => p.purges?.applied === first), { message: 'the first purge applied (to an empty cache)' })
    for (const p of proxies) await fill(p)
    await publishPurge(session, purgePath, { host: 'b.test', prefix: '/shop/' })
    await until(() => proxies.every((p) => p.cache?.stats().purged === 1), { timeoutMs: ms(1000), message: 'only the new purge applied' })
    for (const p of proxies) expect(await hits(p)).toEqual(['a.test/blog/1', 'a.test/blog/2', 'a.test/shop/1', 'b.test/blog/1'])
  })

  it('a proxy cut off while a purge was published applies it when it reconnects', async () => {
    const relay = await relayTo(zkCluster().connectString.split(',')[0]!)
    const { proxies, session, purgePath } = await fleet(relay.connect)
    const [p1, p2] = proxies as [ProxyRuntime, ProxyRuntime]
    for (const p of proxies) await fill(p)
    relay.cut()
    await until(() => p2.session.state !== 'connected', { message: 'p2 lost ZooKeeper' })
    await publishPurge(session, purgePath, { host: 'a.test' })
    await until(() => p1.cache?.stats().purged === 3, { message: 'p1 purged' })
    expect(p2.cache?.stats().purged).toBe(0)
    relay.restore()
    await until(() => p2.cache?.stats().purged === 3, { message: 'p2 applied the purge it missed' })
    expect(await hits(p2)).toEqual(['b.test/blog/1', 'b.test/shop/1'])
  })

  it('a proxy whose missed purge was pruned meanwhile clears everything', async () => {
    const relay = await relayTo(zkCluster().connectString.split(',')[0]!)
    const { proxies, session, purgePath } = await fleet(relay.connect)
    const [p1, p2] = proxies as [ProxyRuntime, ProxyRuntime]
    for (const p of proxies) await fill(p)
    relay.cut()
    await until(() => p2.session.state !== 'connected', { message: 'p2 lost ZooKeeper' })
    // Keeping one node: the a.test purge is pruned by the next one, before p2 could read it.
    await publishPurge(session, purgePath, { host: 'a.test' }, { kept: 1 })
    await publishPurge(session, purgePath, { host: 'c.test' }, { kept: 1 })
    expect(await session.children(purgePath)).toHaveLength(1)
    await until(() => p1.cache?.stats().purged === 3, { message: 'p1 purged' })
    relay.restore()
    await until(() => p2.cache?.stats().purged === 5, { message: 'p2 purged everything' })
    expect(await hits(p2)).toEqual([])
    // p1 saw both purges as they came: b.test's entries stay.
    expect(await hits(p1)).toEqual(['b.test/blog/1', 'b.test/shop/1'])
  })

  it('POST /purge on one proxy\'s admin listener purges the fleet; a bad request purges nothing', async () => {
    const targetsPath = uniquePath('targets')
    const purgePath = uniquePath('purges')
    const backend = await startBackend('a', (req, res) => { res.setHeader('cache-control', 'max-age=600'); res.end(req.url) })
    const session = await connectSession(zkCluster().connectString, { sessionTimeoutMs: 10_000 })
    await registerTarget(session, targetsPath, 'a', backend.url)
    const flags = ['--targets-path', targetsPath, '--purge-path', purgePath]
    const withAdmin = await startTestProxy(zkCluster().connectString, [...flags, '--admin', '127.0.0.1:0'])
    const other = await startTestProxy(zkCluster().connectString, flags)
    const proxies = [withAdmin, other]
    await until(() => proxies.every((p) => p.router.targets.length === 1), { message: 'both proxies see the target' })
    for (const p of proxies) await fill(p)
    const admin = withAdmin.admin!.url
    const post = async (body: string, type = 'application/json'): Promise<{ status: number, json: Record<string, unknown> }> => {
      const r = await request(`${admin}/purge`, { method: 'POST', body, headers: { 'content-type': type } })
      return { status: r.statusCode, json: await r.body.json() as Record<string, unknown> }
    }
    expect((await post('{"host":"a.test"}', 'text/plain')).status).toBe(415)
    expect((await post('{"prefix":"blog"}')).status).toBe(400)
    expect((await post('{"host":"a.test/x"}')).status).toBe(400)
    expect((await post('[]')).status).toBe(400)
    const ok = await post('{"prefix":"/shop/"}')
    expect(ok).toMatchObject({ status: 202, json: { prefix: '/shop/' } })
    await until(() => proxies.every((p) => p.cache?.stats().purged === 2), { timeoutMs: ms(1000), message: 'both proxies purged /shop/' })
    for (const p of proxies) expect(await hits(p)).toEqual(['a.test/blog/1', 'a.test/blog/2', 'b.test/blog/1'])
    // Only the one good request was published.
    expect(await session.children(purgePath)).toHaveLength(1)
  })
})
