// `zkproxy purge` as a real process (the built CLI) against a real ZooKeeper, with a proxy
// watching: the purge reaches it; a bad filter exits 2 with one line and publishes nothing.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import type { ZkSession } from '../../src/zk/index.js'
import { runCli } from '../support/cli.js'
import { closeAllBackends, startBackend } from '../support/backends.js'
import { registerTarget, startTestProxy, stopAllProxies } from '../support/proxy.js'
import { ms, until } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

let zk: ZkCluster
let observer: ZkSession

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
  observer = await connectSession(zk.connectString)
})

afterEach(async () => {
  await stopAllProxies()
  await closeAllBackends()
})

afterAll(async () => {
  await closeAllSessions()
  await zk?.stop()
})

describe('zkproxy purge', () => {
  it('--host purges that host on the proxies watching; a bad --prefix exits 2 and publishes nothing', async () => {
    const targetsPath = uniquePath('targets')
    const purgePath = uniquePath('purges')
    const backend = await startBackend('a', (req, res) => { res.setHeader('cache-control', 'max-age=600'); res.end(req.url) })
    await registerTarget(observer, targetsPath, 'a', backend.url)
    const proxy = await startTestProxy(zk.connectString, ['--targets-path', targetsPath, '--purge-path', purgePath])
    await until(() => proxy.router.targets.length === 1, { message: 'proxy sees the target' })
    const xcache = async (host: string): Promise<string> => {
      const r = await request(`${proxy.url}/page`, { headers: { host } })
      await r.body.text()
      return r.headers['x-cache'] as string
    }
    for (const host of ['a.test', 'b.test']) {
      await xcache(host)
      expect(await xcache(host)).toBe('HIT')
    }

    const bad = await runCli(['purge', '--zk', zk.connectString, '--purge-path', purgePath, '--prefix', 'page'])
    expect(bad.code).toBe(2)
    expect(bad.lines).toHaveLength(1)
    expect(bad.lines[0]).toMatch(/^zkproxy purge: .*prefix "page" must start with \//)

    const ok = await runCli(['purge', '--zk', zk.connectString, '--purge-path', purgePath, '--host', 'a.test'])
    expect(ok.code).toBe(0)
    expect(ok.output).toMatch(/^purge \d+ published \(host a\.test\)/)
    await until(() => proxy.cache?.stats().purged === 1, { timeoutMs: ms(1000), message: 'the proxy purged a.test within a second' })
    expect(await xcache('a.test')).toBe('MISS')
    expect(await xcache('b.test')).toBe('HIT')
    expect(await observer.children(purgePath)).toHaveLength(1)
  })
})
