// Revision coherence (docs/cache.md "Revisions and coherence"): a stored response is served only
// while a live target of its pool carries the revision that produced it.
import { describe, expect, it } from 'vitest'
import { RevisionLiveness, type PoolRevisions } from '../../../src/cache/coherence.js'
import { createEntry } from '../../../src/cache/entry.js'
import { ResponseCache } from '../../../src/cache/store.js'
import type { EvictionReason } from '../../../src/cache/store.js'
import { evaluate } from '../../../src/cache/policy.js'
import { fakeClock, request } from './fixtures.js'

function pools (spec: Record<string, Array<string | undefined>>): PoolRevisions {
  return new Map(Object.entries(spec).map(([pool, revs]) => [pool, new Set(revs)]))
}

function setup (): { cache: ResponseCache, live: RevisionLiveness, now: () => number, evicted: EvictionReason[] } {
  const time = fakeClock()
  const cache = new ResponseCache({ maxEntries: 100, maxBytes: 10_000_000, now: time.now })
  const live = new RevisionLiveness()
  live.onDied(() => { cache.dropIncoherent() })
  const evicted: EvictionReason[] = []
  cache.onEvict((reason) => { evicted.push(reason) })
  return { cache, live, now: time.now, evicted }
}

function putFrom (cache: ResponseCache, live: RevisionLiveness, now: number, url: string, pool: string, revision: string | undefined): boolean {
  const req = request(url)
  const headers = { 'cache-control': 'max-age=60' }
  const decision = evaluate(req, { status: 200, headers }, { cacheTtlSec: 3600, now })
  if (!decision.storable) throw new Error('fixture not storable')
  const entry = createEntry({ req, status: 200, headers, body: Buffer.from(url), decision, now, source: live.cell(pool, revision) })
  return cache.set(req, entry)
}

describe('RevisionLiveness', () => {
  it('a cell is live while its pool carries its revision, and dies for good when it does not', () => {
    const live = new RevisionLiveness()
    live.update(pools({ default: ['A'] }))
    const a = live.cell('default', 'A')
    expect(a.live).toBe(true)
    live.update(pools({ default: ['A', 'B'] }))
    expect(a.live).toBe(true)
    const died: string[] = []
    live.onDied((dead) => { for (const c of dead) died.push(`${c.pool}@${c.revision ?? '-'}`) })
    live.update(pools({ default: ['B'] }))
    expect(a.live).toBe(false)
    expect(died).toEqual(['default@A'])
    // A rollback to A gets a new cell: the old entries stay dropped.
    live.update(pools({ default: ['A', 'B'] }))
    expect(a.live).toBe(false)
    expect(live.cell('default', 'A').live).toBe(true)
  })

  it('a pair with no live target gets a dead cell (a late response from a departed target is not stored)', () => {
    const live = new RevisionLiveness()
    live.update(pools({ default: ['B'] }))
    expect(live.cell('default', 'A').live).toBe(false)
    expect(live.cell('shop', 'B').live).toBe(false)
    expect(live.size).toBe(0)
  })

  it('a pool left with no live target keeps its revision (an outage is not a deploy) until another revision arrives', () => {
    const live = new RevisionLiveness()
    live.update(pools({ default: ['A'], shop: ['S'] }))
    const a = live.cell('default', 'A')
    const s = live.cell('shop', 'S')
    live.update(pools({ default: [] }))
    expect([a.live, s.live]).toEqual([true, true])
    live.update(pools({ default: ['B'], shop: ['S'] }))
    expect([a.live, s.live]).toEqual([false, true])
  })

  it('targets without a revision are one revision of their own', () => {
    const live = new RevisionLiveness()
    live.update(pools({ default: [undefined] }))
    const none = live.cell('default', undefined)
    expect(none.live).toBe(true)
    live.update(pools({ default: ['B'] }))
    expect(none.live).toBe(false)
  })
})

describe('ResponseCache with revisions', () => {
  it('serves either revision while a pool is mixed, and none of the departed one after', () => {
    const { cache, live, now } = setup()
    live.update(pools({ default: ['A'] }))
    expect(putFrom(cache, live, now(), '/a', 'default', 'A')).toBe(true)
    live.update(pools({ default: ['A', 'B'] }))
    expect(putFrom(cache, live, now(), '/b', 'default', 'B')).toBe(true)
    expect(cache.get(request('/a'))).toBeDefined()
    expect(cache.get(request('/b'))).toBeDefined()
    live.update(pools({ default: ['B'] }))
    expect(cache.get(request('/a'))).toBeUndefined()
    expect(cache.get(request('/b'))).toBeDefined()
    expect(cache.stats().entries).toBe(1)
  })

  it('a deploy of one pool keeps every entry of another pool', () => {
    const { cache, live, now } = setup()
    live.update(pools({ shop: ['A'], blog: ['A'] }))
    putFrom(cache, live, now(), '/shop', 'shop', 'A')
    putFrom(cache, live, now(), '/blog', 'blog', 'A')
    live.update(pools({ shop: ['B'], blog: ['A'] }))
    expect(cache.get(request('/shop'))).toBeUndefined()
    expect(cache.get(request('/blog'))).toBeDefined()
  })

  it('drops the departed revision\'s entries when it leaves, not only when they are asked for', () => {
    const { cache, live, now, evicted } = setup()
    live.update(pools({ default: ['A', 'B'] }))
    for (let i = 0; i < 5; i++) putFrom(cache, live, now(), `/a${i}`, 'default', 'A')
    for (let i = 0; i < 3; i++) putFrom(cache, live, now(), `/b${i}`, 'default', 'B')
    live.update(pools({ default: ['B'] }))
    expect(cache.stats().entries).toBe(3)
    expect(evicted.filter((r) => r === 'invalidated')).toHaveLength(5)
  })

  it('refuses a response whose revision already left (it arrived after its target went away)', () => {
    const { cache, live, now } = setup()
    live.update(pools({ default: ['B'] }))
    expect(putFrom(cache, live, now(), '/late', 'default', 'A')).toBe(false)
    expect(cache.get(request('/late'))).toBeUndefined()
  })

  it('skips an incoherent entry on the hit path even when no sweep ran', () => {
    const time = fakeClock()
    const cache = new ResponseCache({ maxEntries: 100, maxBytes: 10_000_000, now: time.now })
    const live = new RevisionLiveness()
    live.update(pools({ default: ['A'] }))
    putFrom(cache, live, time.now(), '/a', 'default', 'A')
    live.update(pools({ default: ['B'] }))
    expect(cache.get(request('/a'))).toBeUndefined()
    expect(cache.stats().entries).toBe(0)
  })
})
