// A forced expiry of the proxy's own ZooKeeper session while requests flow: the proxy opens a
// new session, re-reads the targets and keeps routing (the targets' nodes belong to other
// sessions and stay), and every request it counted reaches ZooKeeper exactly once.
import { describe, expect, it } from 'vitest'
import { expireSession } from '../../src/zk/index.js'
import { useZooKeeper } from '../support/suite.js'
import { connectSession } from '../support/zk-client.js'
import { startBackend } from '../support/backends.js'
import { registerTarget, startTestProxy } from '../support/proxy.js'
import { loadFor, startLoad, untilCountsAddUp, untilRouting } from '../support/fleet.js'
import { ms, until } from '../support/until.js'

const zk = useZooKeeper()

describe('forced expiry of the proxy\'s session', () => {
  it('three expiries under load: no client error, counts exact', async () => {
    const targetsPath = '/expiry-targets'
    const owner = await connectSession(zk().connectString, { sessionTimeoutMs: 30_000 })
    const backends = await Promise.all(['e1', 'e2'].map(async n => await startBackend(n)))
    for (const b of backends) await registerTarget(owner, targetsPath, b.name, b.url)
    const proxy = await startTestProxy(zk().connectString, ['--targets-path', targetsPath, '--cache-ttl', '0', '--count-flush-ms', '100'])
    await untilRouting(proxy.url, 2, '/x')
    const load = startLoad(proxy.url, { path: '/x', concurrency: 4 })
    for (let i = 0; i < 3; i++) {
      await loadFor(load.result, 200)
      const id = proxy.session.sessionId
      const password = proxy.session.sessionPassword
      if (id === undefined || password === undefined) throw new Error('proxy session not established')
      await expireSession(zk().connectString, { id, password })
      await until(() => proxy.session.state === 'connected' && proxy.session.sessionId !== id, { timeoutMs: ms(20_000), message: 'the proxy on a new session' })
    }
    await loadFor(load.result, 200)
    const r = await load.stop()
    expect(r.failures).toEqual([])
    const hits = backends.reduce((n, b) => n + b.hits(), 0)
    await untilCountsAddUp(owner, hits, targetsPath)
    expect(proxy.counter.stats.dropped).toBe(0)
  })
})
