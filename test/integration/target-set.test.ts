// The TargetSet against a real ZooKeeper: a count flush (one target's count rewritten) patches
// that one target into the snapshot and says so (`counted`), while anything else a znode can
// change (routes, revision, address, a new registration, a removal) emits a whole new view.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { encodeTarget, type TargetData } from '../../src/registry/codec.js'
import { TargetSet, type Snapshot } from '../../src/registry/target-set.js'
import { CreateMode, type ZkSession } from '../../src/zk/index.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import { untilValue } from '../support/until.js'
import { closeAllSessions, connectSession, silentLogger, uniquePath } from '../support/zk-client.js'

let zk: ZkCluster
const sets: TargetSet[] = []

beforeAll(async () => { zk = await startZooKeeper({ nodes: 1 }) })
afterAll(async () => { await zk?.stop() })
afterEach(async () => {
  for (const s of sets.splice(0)) s.close()
  await closeAllSessions()
})

interface Watched {
  session: ZkSession
  root: string
  /** Every snapshot emitted, in order. */
  seen: Snapshot[]
  write: (name: string, data: TargetData) => Promise<void>
  /** The next snapshot after `n` seen, once one arrives. */
  next: (n: number) => Promise<Snapshot>
}

async function watched (initial: Record<string, TargetData>): Promise<Watched> {
  const session = await connectSession(zk.connectString)
  const root = `${uniquePath('tset')}/targets`
  await session.mkdirp(root)
  for (const [name, data] of Object.entries(initial)) await session.create(`${root}/${name}`, encodeTarget(data), CreateMode.PERSISTENT)
  const set = new TargetSet({ session, targetsPath: root, logger: silentLogger })
  sets.push(set)
  const seen: Snapshot[] = []
  set.on('snapshot', (s: Snapshot) => { seen.push(s) })
  set.start()
  await untilValue(() => seen.length > 0 ? seen[0] : undefined, { message: 'the first snapshot' })
  return {
    session,
    root,
    seen,
    write: async (name, data) => {
      const { stat } = await session.get(`${root}/${name}`)
      await session.set(`${root}/${name}`, encodeTarget(data), stat.version)
    },
    next: async (n) => await untilValue(() => seen[n], { message: `snapshot ${n + 1}` })
  }
}

const base = (port: number, requests = 0): TargetData => ({ url: `http://127.0.0.1:${port}`, requests, revision: 'r1', routes: ['shop.example.com'] })

describe('TargetSet', () => {
  it('a count flush patches one target in (counted); the other targets are the same objects', async () => {
    const w = await watched({ a: base(4001), b: base(4002), c: base(4003) })
    const first = w.seen[0]!
    expect(first.counted).toBeUndefined()
    expect(first.targets.map(t => t.name)).toEqual(['a', 'b', 'c'])

    await w.write('b', { ...base(4002, 7), countedBy: { p1: 7 } })
    const s = await w.next(1)
    expect(s.counted?.map(t => [t.name, t.requests, t.countedBy])).toEqual([['b', 7, { p1: 7 }]])
    expect(s.targets.map(t => [t.name, t.requests])).toEqual([['a', 0], ['b', 7], ['c', 0]])
    expect(s.targets[0]).toBe(first.targets[0])
    expect(s.targets[2]).toBe(first.targets[2])
    expect(s.rejected).toBe(first.rejected)
  })

  it('routes, revision or address changed, a target added or removed: a whole new view, not counted', async () => {
    const w = await watched({ a: base(4001), b: base(4002) })
    let n = 1
    const expectWhole = async (check: (s: Snapshot) => void): Promise<void> => {
      const s = await w.next(n++)
      expect(s.counted).toBeUndefined()
      check(s)
    }
    await w.write('a', { ...base(4001, 1), routes: ['shop.example.com/api'] })
    await expectWhole(s => { expect(s.targets[0]!.routes.map(r => r.key)).toEqual(['shop.example.com/api']) })
    await w.write('a', { ...base(4001, 2), routes: ['shop.example.com/api'], revision: 'r2' })
    await expectWhole(s => { expect(s.targets[0]!.revision).toBe('r2') })
    await w.write('b', base(4009, 3))
    await expectWhole(s => { expect(s.targets[1]!.url).toBe('http://127.0.0.1:4009') })
    await w.session.create(`${w.root}/c`, encodeTarget(base(4003)), CreateMode.PERSISTENT)
    await expectWhole(s => { expect(s.targets.map(t => t.name)).toEqual(['a', 'b', 'c']) })
    await w.session.delete(`${w.root}/a`, -1)
    await expectWhole(s => { expect(s.targets.map(t => t.name)).toEqual(['b', 'c']) })
    // And a count flush after all that is a patch again, of the right entry.
    await w.write('c', base(4003, 5))
    const s = await w.next(n)
    expect(s.counted?.map(t => t.name)).toEqual(['c'])
    expect(s.targets.map(t => [t.name, t.requests])).toEqual([['b', 3], ['c', 5]])
  })

  it('a target whose data turns malformed is rejected by a whole new view, and comes back by one', async () => {
    const w = await watched({ a: base(4001), b: base(4002) })
    const { stat } = await w.session.get(`${w.root}/a`)
    await w.session.set(`${w.root}/a`, Buffer.from('{"url": 7}'), stat.version)
    const bad = await w.next(1)
    expect(bad.counted).toBeUndefined()
    expect(bad.targets.map(t => t.name)).toEqual(['b'])
    expect(bad.rejected.map(r => r.name)).toEqual(['a'])
    await w.write('a', base(4001, 4))
    const back = await w.next(2)
    expect(back.counted).toBeUndefined()
    expect(back.targets.map(t => [t.name, t.requests])).toEqual([['a', 4], ['b', 0]])
    expect(back.rejected).toEqual([])
  })
})
