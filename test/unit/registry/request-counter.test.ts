// The counter's bookkeeping without ZooKeeper: the idempotent ledger write (applyCount) and how
// cells follow a registration across node re-creations (update). The writes themselves are
// exercised against a real ZooKeeper in test/integration and test/e2e.
import { describe, expect, it } from 'vitest'
import pino from 'pino'
import { RequestCounter, applyCount, chainOf } from '../../../src/registry/request-counter.js'
import type { TargetInfo } from '../../../src/registry/target-set.js'
import type { ZkSession } from '../../../src/zk/index.js'

const url = 'http://127.0.0.1:4000'
const startedAt = '2026-12-06T10:00:00.000Z'
const chain = chainOf({ url, startedAt })
const node = (o: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ url, startedAt, ...o }))
const read = (b: Buffer | undefined): Record<string, unknown> => JSON.parse(String(b)) as Record<string, unknown>

describe('applyCount', () => {
  it('adds what the ledger does not have yet and records our total', () => {
    const r = applyCount(node({ requests: 100, countedBy: { other: 60 } }), { bare: false, chain, id: 'p1', total: 7, delta: 7 })
    expect(r.outcome).toBe('written')
    expect(read(r.data)).toMatchObject({ requests: 107, countedBy: { other: 60, p1: 7 } })
  })

  it('is idempotent: a retry of a write that landed adds nothing', () => {
    const once = applyCount(node({ requests: 100 }), { bare: false, chain, id: 'p1', total: 7, delta: 7 })
    const again = applyCount(once.data!, { bare: false, chain, id: 'p1', total: 7, delta: 7 })
    expect(again).toMatchObject({ data: undefined, outcome: 'unchanged', entry: 7 })
    // A later total adds only the difference.
    expect(read(applyCount(once.data!, { bare: false, chain, id: 'p1', total: 10, delta: 3 }).data)).toMatchObject({ requests: 110, countedBy: { p1: 10 } })
  })

  it('tops up a node re-created from a stale copy', () => {
    // We had written 50 in all; the replica re-created its node from a copy that showed 30 of them.
    const r = applyCount(node({ requests: 230, countedBy: { p1: 30 } }), { bare: false, chain, id: 'p1', total: 50, delta: 0 })
    expect(read(r.data)).toMatchObject({ requests: 250, countedBy: { p1: 50 } })
  })

  it('writes nothing into another registration that took the name', () => {
    const r = applyCount(Buffer.from(JSON.stringify({ url: 'http://127.0.0.1:4001', requests: 3 })), { bare: false, chain, id: 'p1', total: 5, delta: 5 })
    expect(r.outcome).toBe('other')
    expect(r.data).toBeUndefined()
  })

  it('keeps the bare-integer form and adds the delta', () => {
    expect(String(applyCount(Buffer.from('41'), { bare: true, chain: 'x', id: undefined, total: 0, delta: 1 }).data)).toBe('42')
  })
})

const session = { state: 'suspended' } as unknown as ZkSession
const target = (o: Partial<TargetInfo> = {}): TargetInfo => ({
  name: 'r1', url, origin: url, requests: 0, revision: undefined, startedAt, routes: [], stripPrefix: false, generation: '1', version: 0, bare: false, ...o
})

describe('RequestCounter.update', () => {
  it('carries unflushed requests to the re-created node of the same registration', () => {
    let now = 0
    const c = new RequestCounter({ session, targetsPath: '/targets', flushMs: 100, logger: pino({ level: 'silent' }), id: 'p1', now: () => now })
    c.update([target({ requests: 10 })])
    const cell = c.cell('r1')!
    cell.pending += 5
    c.update([]) // the old node went with its session
    expect(c.cell('r1')).toBeUndefined()
    expect(c.unflushed).toBe(0)
    expect(c.awaitingReturn).toBe(5)
    now += 1000
    c.update([target({ requests: 10, generation: '2' })])
    expect(c.cell('r1')).toBe(cell)
    expect(cell.pending).toBe(5)
    expect(c.stats).toMatchObject({ dropped: 0, carried: 5 })
  })

  it('drops what was counted for a registration that another one replaced, and for one that never came back', () => {
    let now = 0
    const c = new RequestCounter({ session, targetsPath: '/targets', flushMs: 100, logger: pino({ level: 'silent' }), id: 'p1', now: () => now, retainMs: 1000 })
    c.update([target(), target({ name: 'r2' })])
    c.cell('r1')!.pending += 2
    c.cell('r2')!.pending += 3
    c.update([target({ startedAt: '2026-12-06T11:00:00.000Z', generation: '5' }), target({ name: 'r2' })])
    expect(c.stats.dropped).toBe(2)
    c.update([target({ startedAt: '2026-12-06T11:00:00.000Z', generation: '5' })])
    now += 1001
    c.update([target({ startedAt: '2026-12-06T11:00:00.000Z', generation: '5' })])
    expect(c.stats.dropped).toBe(5)
    expect(c.awaitingReturn).toBe(0)
  })

  it('keeps our ledger total across a re-creation whose writer carries the ledger, and forgets it when it does not', () => {
    const c = new RequestCounter({ session, targetsPath: '/targets', flushMs: 100, logger: pino({ level: 'silent' }), id: 'p1' })
    c.update([target({ countedBy: { p1: 40 } })])
    expect(c.cell('r1')!.written).toBe(40)
    c.update([target({ generation: '2', countedBy: { p1: 25 } })])
    expect(c.cell('r1')).toMatchObject({ written: 40, nodeWritten: 25, ledger: true })
    c.update([target({ generation: '3' })])
    expect(c.cell('r1')).toMatchObject({ written: 0, nodeWritten: 0, ledger: false })
  })
})

describe('RequestCounter.counted', () => {
  it('brings the named targets up to date and leaves every other cell where it was', () => {
    const c = new RequestCounter({ session, targetsPath: '/targets', flushMs: 100, logger: pino({ level: 'silent' }), id: 'p1' })
    c.update([target({ requests: 10 }), target({ name: 'r2', requests: 20 })])
    c.cell('r2')!.pending += 3
    c.counted([target({ requests: 15, version: 1, countedBy: { p1: 4 } })])
    expect(c.cell('r1')).toMatchObject({ base: 15, nodeWritten: 4, ledger: true })
    // r2 is not in the counted list and has not left: its cell and what it owes stay.
    expect(c.cell('r2')).toMatchObject({ base: 20, pending: 3 })
    expect(c.awaitingReturn).toBe(0)
  })
})
