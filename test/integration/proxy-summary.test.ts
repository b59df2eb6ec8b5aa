// The proxy summary writer against a real ZooKeeper: a summary that changes constantly is still
// written at most once per interval, an unchanged one is never rewritten, the last change is
// always written in the end, and a node held by another session is left alone.
import { describe, expect, it } from 'vitest'
import { SummaryWriter, type ProxySummary } from '../../src/registry/proxy-summary.js'
import { CreateMode } from '../../src/zk/index.js'
import { useZooKeeper } from '../support/suite.js'
import { ms, until } from '../support/until.js'
import { connectSession, silentLogger, uniquePath } from '../support/zk-client.js'

const zkCluster = useZooKeeper()

async function setUp (owner?: 'stranger'): Promise<{ writer: (s: () => ProxySummary) => SummaryWriter, version: () => Promise<number>, read: () => Promise<ProxySummary> }> {
  const session = await connectSession(zkCluster().connectString)
  const holder = owner === 'stranger' ? await connectSession(zkCluster().connectString) : session
  const path = `${uniquePath('proxies')}/p1`
  await holder.mkdirp(path.slice(0, path.lastIndexOf('/')))
  await holder.create(path, Buffer.from('{}'), CreateMode.EPHEMERAL)
  return {
    writer: (summary) => new SummaryWriter({ session, path, logger: silentLogger, registered: () => true, summary, data: (s) => Buffer.from(JSON.stringify(s)), minIntervalMs: 300, checkMs: 20 }),
    version: async () => (await session.exists(path))?.version ?? -1,
    read: async () => JSON.parse((await session.get(path)).data.toString()) as ProxySummary
  }
}

describe('SummaryWriter', () => {
  it('writes a constantly changing summary at most once per interval, and the last change in the end', async () => {
    const { writer, version, read } = await setUp()
    let n = 0
    const w = writer(() => ({ ejected: [`t-${n}`], drained: [] })).start()
    const started = Date.now()
    const flipper = setInterval(() => { n++ }, 5)
    await until(() => Date.now() - started >= 1500, { timeoutMs: ms(5000), intervalMs: 50 })
    clearInterval(flipper)
    const elapsed = Date.now() - started
    // One write per 300 ms at most: 1.5 s allows 6 (the first is immediate).
    const writes = await version()
    expect(writes).toBeGreaterThanOrEqual(2)
    expect(writes).toBeLessThanOrEqual(Math.floor(elapsed / 300) + 1)
    await until(async () => (await read()).ejected[0] === `t-${n}`, { timeoutMs: ms(3000), message: 'the last summary written' })
    const settled = await version()
    // Unchanged: never rewritten.
    await new Promise(resolve => setTimeout(resolve, 700))
    expect(await version()).toBe(settled)
    w.stop()
  })

  it('leaves a node another session holds alone', async () => {
    const { writer, version } = await setUp('stranger')
    const w = writer(() => ({ ejected: ['x'], drained: [] })).start()
    await new Promise(resolve => setTimeout(resolve, 400))
    expect(await version()).toBe(0)
    w.stop()
  })
})
