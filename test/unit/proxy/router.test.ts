// The router's per-pool choice: least-used among the pool's targets only, failover within the
// pool, ejections and counts per target (shared by every pool the target is in).
import { describe, expect, it } from 'vitest'
import { seededRandom } from '../../../src/balancer/random.js'
import { DEFAULT_POOL_KEY, Router, type CountView, type RoutableTarget } from '../../../src/proxy/router.js'
import { routeOrThrow } from '../../../src/routes.js'

function info (name: string, requests: number, routes: string[] = [], generation = 'g1', stripPrefix = false): RoutableTarget {
  return { name, origin: `http://${name}.test:80`, url: `http://${name}.test:80`, generation, requests, revision: undefined, startedAt: undefined, routes: routes.map(routeOrThrow), stripPrefix }
}

/** A router over a fake clock whose count cells are plain objects keyed by name@generation. */
function setup (): { router: Router, cells: Map<string, CountView & { base: number }>, setNow: (ms: number) => void } {
  let now = 1_000_000
  const cells = new Map<string, CountView & { base: number }>()
  const router = new Router({
    countFor: (t) => {
      const key = `${t.name}@${t.generation}`
      let c = cells.get(key)
      if (c === undefined) {
        c = { base: t.requests, pending: 0, get total () { return this.base + this.pending } }
        cells.set(key, c)
      }
      return c
    },
    clock: () => now,
    random: seededRandom(7)
  })
  return { router, cells, setNow: (ms) => { now = ms } }
}

const names = (ts: ReadonlyArray<{ name: string }> | undefined): string[] | undefined => ts?.map(t => t.name)

describe('Router pools', () => {
  it('before the first view: the empty default pool (503 no_targets), no view', () => {
    const { router } = setup()
    expect(router.hasView).toBe(false)
    const pool = router.pool('shop.example.com', '/')
    expect(pool?.key).toBe(DEFAULT_POOL_KEY)
    expect(pool?.pick()).toBeUndefined()
  })

  it('picks the least-used target of the matching pool only', () => {
    const { router } = setup()
    router.update([info('shop-1', 500, ['shop.example.com']), info('shop-2', 400, ['shop.example.com']), info('blog-1', 10, ['blog.example.com']), info('site', 0)])
    expect(router.pool('shop.example.com', '/cart')?.pick()?.name).toBe('shop-2')
    expect(router.pool('blog.example.com', '/')?.pick()?.name).toBe('blog-1')
    expect(router.pool('www.example.com', '/')?.pick()?.name).toBe('site')
    // The route-blind choice still spans every target.
    expect(router.pick()?.name).toBe('site')
  })

  it('spreads a burst over the pool by counting at begin()', () => {
    const { router } = setup()
    router.update([info('a', 0, ['app.example.com']), info('b', 0, ['app.example.com']), info('other', 0)])
    const pool = router.pool('app.example.com', '/')!
    const seen: Record<string, number> = {}
    for (let i = 0; i < 10; i++) {
      const t = pool.pick()!
      router.begin(t)
      seen[t.name] = (seen[t.name] ?? 0) + 1
    }
    expect(seen).toStrictEqual({ a: 5, b: 5 })
  })

  it('fails over within the pool, never to another app\'s targets', () => {
    const { router } = setup()
    router.update([info('a1', 1, ['a.example.com']), info('a2', 2, ['a.example.com']), info('b1', 0, ['b.example.com']), info('d', 0)])
    const pool = router.pool('a.example.com', '/')!
    const first = pool.pick()!
    expect(first.name).toBe('a1')
    const second = pool.next(new Set(['a1']))
    expect(second?.name).toBe('a2')
    expect(pool.next(new Set(['a1', 'a2']))).toBeUndefined()
  })

  it('ejection is per target: a target ejected through one pool is ejected in every pool', () => {
    const { router, setNow } = setup()
    router.update([info('both', 0, ['a.example.com', 'b.example.com']), info('a2', 5, ['a.example.com']), info('b2', 5, ['b.example.com'])])
    const both = router.pool('a.example.com', '/')!.pick()!
    expect(both.name).toBe('both')
    router.failed(both, false)
    expect(router.isEjected(both)).toBe(true)
    expect(router.pool('a.example.com', '/')!.pick()?.name).toBe('a2')
    expect(router.pool('b.example.com', '/')!.pick()?.name).toBe('b2')
    // Once the ejection lapses it is the least used again in both.
    setNow(1_000_000 + 60_000)
    expect(router.pool('b.example.com', '/')!.pick()?.name).toBe('both')
  })

  it('a pool whose targets are all ejected still offers them as a last resort', () => {
    const { router } = setup()
    router.update([info('a1', 0, ['a.example.com']), info('b1', 0, ['b.example.com'])])
    const a1 = router.pool('a.example.com', '/')!.pick()!
    router.failed(a1, false)
    expect(router.pool('a.example.com', '/')!.pick()?.name).toBe('a1')
  })

  it('a pool object is stable across snapshots and sees its current targets', () => {
    const { router } = setup()
    router.update([info('a1', 0, ['a.example.com'])])
    const held = router.pool('a.example.com', '/')!
    const targetsBefore = held.targets
    // A count-only snapshot does not rebuild the pools.
    router.update([info('a1', 7, ['a.example.com'])])
    expect(router.pool('a.example.com', '/')).toBe(held)
    expect(held.targets).toBe(targetsBefore)
    // A new member joins the held pool.
    router.update([info('a1', 7, ['a.example.com']), info('a2', 0, ['a.example.com'])])
    expect(router.pool('a.example.com', '/')).toBe(held)
    expect(names(held.targets)).toStrictEqual(['a1', 'a2'])
    expect(held.next(new Set(['a2']))?.name).toBe('a1')
  })

  it('counted(): a count-only snapshot swaps the named targets\' info in; an unknown or re-created one is refused', () => {
    const { router } = setup()
    router.update([info('a1', 0, ['a.example.com']), info('a2', 0, ['a.example.com'])])
    const pool = router.pool('a.example.com', '/')!
    const members = pool.targets
    expect(router.counted([info('a2', 9, ['a.example.com'])])).toBe(true)
    expect(router.byName('a2')!.info.requests).toBe(9)
    expect(pool.targets).toBe(members)
    expect(router.counted([info('a3', 1, ['a.example.com'])])).toBe(false)
    expect(router.counted([info('a1', 1, ['a.example.com'], 'g2')])).toBe(false)
    // A refused batch changes nothing, not even the entries it could have applied.
    expect(router.counted([info('a2', 11, ['a.example.com']), info('a3', 1)])).toBe(false)
    expect(router.byName('a2')!.info.requests).toBe(9)
  })

  it('a route appears and disappears with the targets declaring it', () => {
    const { router } = setup()
    router.update([info('site', 0)])
    expect(router.pool('shop.example.com', '/')?.key).toBe(DEFAULT_POOL_KEY)
    router.update([info('site', 0), info('shop', 0, ['shop.example.com'])])
    const shop = router.pool('shop.example.com', '/')!
    expect(shop.key).toBe('shop.example.com')
    expect(shop.live).toBe(true)
    expect(router.pools.map(p => p.key)).toStrictEqual([DEFAULT_POOL_KEY, 'shop.example.com'])
    router.update([info('site', 0)])
    // The held pool is emptied (a request failing over in it gets no target), and requests
    // for the host fall to the default pool.
    expect(shop.live).toBe(false)
    expect(shop.pick()).toBeUndefined()
    expect(router.pool('shop.example.com', '/')?.key).toBe(DEFAULT_POOL_KEY)
    expect(router.poolByKey('shop.example.com')).toBeUndefined()
  })

  it('a target changing its routes (new znode data, same registration) moves pools', () => {
    const { router } = setup()
    router.update([info('t', 0, ['a.example.com']), info('d', 0)])
    expect(router.pool('a.example.com', '/')?.pick()?.name).toBe('t')
    router.update([info('t', 0, ['b.example.com']), info('d', 0)])
    expect(router.pool('a.example.com', '/')?.pick()?.name).toBe('d')
    expect(router.pool('b.example.com', '/')?.pick()?.name).toBe('t')
  })

  it('with no default pool, an unmatched request has no pool (404 no_route); with no target at all, the empty default pool', () => {
    const { router } = setup()
    router.update([info('shop', 0, ['shop.example.com'])])
    expect(router.pool('www.example.com', '/')).toBeUndefined()
    router.update([])
    expect(router.pool('www.example.com', '/')?.key).toBe(DEFAULT_POOL_KEY)
    expect(router.pool('www.example.com', '/')?.pick()).toBeUndefined()
  })

  it('counts are per target: requests through either of its pools add to one count', () => {
    const { router } = setup()
    router.update([info('both', 0, ['a.example.com', 'b.example.com'])])
    const viaA = router.pool('a.example.com', '/')!.pick()!
    const viaB = router.pool('b.example.com', '/')!.pick()!
    expect(viaA).toBe(viaB)
    router.begin(viaA)
    router.begin(viaB)
    expect(viaA.requests).toBe(2)
    expect(viaA.inFlight).toBe(2)
  })

  it('upstreamPath strips the matched prefix only for targets that declared --strip-prefix', () => {
    const { router } = setup()
    router.update([
      info('mounted', 0, ['example.com/api/', 'shop.example.com'], 'g1', true),
      info('plain', 1, ['example.com/api']),
      info('site', 0)
    ])
    const api = router.pool('example.com', '/api/users?page=2')!
    const mounted = router.targets.find(t => t.name === 'mounted')!
    const plain = router.targets.find(t => t.name === 'plain')!
    expect(api.upstreamPath(mounted, '/api/users?page=2')).toBe('/users?page=2')
    expect(api.upstreamPath(mounted, '/api')).toBe('/')
    expect(api.upstreamPath(plain, '/api/users?page=2')).toBe('/api/users?page=2')
    // A host-only route has no prefix to strip; the default pool has no route at all.
    expect(router.pool('shop.example.com', '/cart')!.upstreamPath(mounted, '/cart')).toBe('/cart')
    expect(router.pool('www.example.com', '/x')!.upstreamPath(router.targets.find(t => t.name === 'site')!, '/x')).toBe('/x')
  })
})
