import { describe, expect, it } from 'vitest'
import { DEFAULT_POOL_KEY, RouteTable, normalizeHost, prefixCovers, type RoutedTarget } from '../../../src/balancer/route-table.js'
import { routeOrThrow } from '../../../src/routes.js'

/** A target declaring `routes` (none: the default pool). */
function t (name: string, ...routes: string[]): RoutedTarget {
  return { name, routes: routes.map(routeOrThrow) }
}

/** The pool key a request lands in, or 'none' (404 no_route). */
function keyFor (table: RouteTable<RoutedTarget>, host: string | undefined, path: string): string {
  return table.match(host, path)?.key ?? 'none'
}

describe('RouteTable.match', () => {
  // Each row: the targets (name + routes), then requests (Host, path) and the pool they land in.
  const cases: Array<{ title: string, targets: RoutedTarget[], requests: Array<[host: string | undefined, path: string, key: string]> }> = [
    {
      title: 'no routes anywhere: everything goes to the default pool (the single-app design)',
      targets: [t('a'), t('b')],
      requests: [['example.com', '/', DEFAULT_POOL_KEY], [undefined, '/x', DEFAULT_POOL_KEY], ['[::1]:9000', '/', DEFAULT_POOL_KEY]]
    },
    {
      title: 'exact hosts',
      targets: [t('shop', 'shop.example.com'), t('blog', 'blog.example.com')],
      requests: [['shop.example.com', '/', 'shop.example.com'], ['blog.example.com', '/p/1', 'blog.example.com'], ['other.example.com', '/', 'none']]
    },
    {
      title: 'case-insensitive host, port ignored, trailing dot ignored',
      targets: [t('shop', 'Shop.Example.com')],
      requests: [
        ['SHOP.example.COM', '/', 'shop.example.com'],
        ['shop.example.com:9000', '/', 'shop.example.com'],
        ['shop.example.com.', '/', 'shop.example.com'],
        ['shop.example.com.:443', '/', 'shop.example.com']
      ]
    },
    {
      title: 'IPv6 literal hosts in brackets, with and without a port',
      targets: [t('v6', '[::1]'), t('v4', '127.0.0.1/api')],
      requests: [
        ['[::1]:9000', '/', '[::1]'], ['[::1]', '/x', '[::1]'], ['[::2]:9000', '/', 'none'],
        ['127.0.0.1:9000', '/api/x', '127.0.0.1/api'], ['127.0.0.1', '/', 'none']
      ]
    },
    {
      title: 'an exact host beats its wildcard; the wildcard covers one label only',
      targets: [t('special', 'special.example.com'), t('any', '*.example.com')],
      requests: [
        ['special.example.com', '/', 'special.example.com'],
        ['other.example.com', '/', '*.example.com'],
        ['example.com', '/', 'none'],
        ['a.b.example.com', '/', 'none'],
        ['localhost', '/', 'none']
      ]
    },
    {
      title: 'an exact host whose prefixes all miss falls through to the wildcard, then the default pool',
      targets: [t('api', 'api.example.com/v2'), t('any', '*.example.com/static'), t('default')],
      requests: [
        ['api.example.com', '/v2/users', 'api.example.com/v2'],
        ['api.example.com', '/static/app.js', '*.example.com/static'],
        ['api.example.com', '/other', DEFAULT_POOL_KEY]
      ]
    },
    {
      title: 'longest path prefix wins, whatever the declaration order',
      targets: [t('root', 'example.com'), t('api', 'example.com/api'), t('v2', 'example.com/api/v2')],
      requests: [
        ['example.com', '/', 'example.com'],
        ['example.com', '/api', 'example.com/api'],
        ['example.com', '/api/v1/x', 'example.com/api'],
        ['example.com', '/api/v2', 'example.com/api/v2'],
        ['example.com', '/api/v2/x?y=1', 'example.com/api/v2'],
        ['example.com', '/api/v22', 'example.com/api']
      ]
    },
    {
      title: 'segment boundaries: /api and /api/ are one route; /apix is not under /api',
      targets: [t('api', 'example.com/api/')],
      requests: [
        ['example.com', '/api', 'example.com/api'],
        ['example.com', '/api/', 'example.com/api'],
        ['example.com', '/api/x', 'example.com/api'],
        ['example.com', '/api?x=1', 'example.com/api'],
        ['example.com', '/apix', 'none'],
        ['example.com', '/ap', 'none'],
        ['example.com', '/', 'none'],
        ['example.com', '/API/x', 'none']
      ]
    },
    {
      title: 'no route matches: the default pool',
      targets: [t('shop', 'shop.example.com'), t('site')],
      requests: [['shop.example.com', '/', 'shop.example.com'], ['www.example.com', '/', DEFAULT_POOL_KEY], [undefined, '/', DEFAULT_POOL_KEY]]
    },
    {
      title: 'no route matches and no default pool: nowhere (404 no_route)',
      targets: [t('shop', 'shop.example.com')],
      requests: [['www.example.com', '/', 'none'], [undefined, '/', 'none'], ['', '/', 'none']]
    },
    {
      title: 'no targets at all: the empty default pool (503 no_targets, as without routes)',
      targets: [],
      requests: [['shop.example.com', '/', DEFAULT_POOL_KEY]]
    },
    {
      title: 'a target declaring several routes serves each of them',
      targets: [t('multi', 'a.example.com', 'b.example.com/x')],
      requests: [['a.example.com', '/', 'a.example.com'], ['b.example.com', '/x/1', 'b.example.com/x'], ['b.example.com', '/', 'none']]
    }
  ]

  for (const c of cases) {
    it(c.title, () => {
      const table = new RouteTable(c.targets)
      const got = c.requests.map(([host, path]) => [host, path, keyFor(table, host, path)])
      expect(got).toStrictEqual(c.requests)
    })
  }
})

describe('RouteTable pools', () => {
  const names = (table: RouteTable<RoutedTarget>, key: string): string[] | undefined => table.get(key)?.targets.map(x => x.name)

  it('targets declaring the same route, in any spelling, form one pool', () => {
    const table = new RouteTable([t('a', 'Shop.Example.com'), t('b', 'shop.example.com/'), t('c', 'shop.example.com.'), t('d', 'other.example.com')])
    expect(names(table, 'shop.example.com')).toStrictEqual(['a', 'b', 'c'])
    expect(names(table, 'other.example.com')).toStrictEqual(['d'])
    expect(table.match('shop.example.com', '/')?.targets.map(x => x.name)).toStrictEqual(['a', 'b', 'c'])
  })

  it('a target is in the pool of each of its routes, once even if it lists one route twice', () => {
    const table = new RouteTable([t('a', 'x.example.com', 'x.example.com/', 'y.example.com'), t('b', 'y.example.com')])
    expect(names(table, 'x.example.com')).toStrictEqual(['a'])
    expect(names(table, 'y.example.com')).toStrictEqual(['a', 'b'])
  })

  it('lists every pool, the default first, then by key; no default pool when every target has routes', () => {
    expect(new RouteTable([t('s', 'b.example.com'), t('d'), t('r', 'a.example.com')]).pools.map(p => p.key))
      .toStrictEqual([DEFAULT_POOL_KEY, 'a.example.com', 'b.example.com'])
    const routedOnly = new RouteTable([t('s', 'b.example.com')])
    expect(routedOnly.defaultPool).toBeUndefined()
    expect(routedOnly.pools.map(p => p.key)).toStrictEqual(['b.example.com'])
  })

  it('a route whose last target is gone is gone: its requests fall to the default pool', () => {
    const before = new RouteTable([t('shop', 'shop.example.com'), t('site')])
    expect(keyFor(before, 'shop.example.com', '/')).toBe('shop.example.com')
    const after = new RouteTable([t('site')])
    expect(after.get('shop.example.com')).toBeUndefined()
    expect(keyFor(after, 'shop.example.com', '/')).toBe(DEFAULT_POOL_KEY)
  })

  it('the pools and their target lists are frozen', () => {
    const table = new RouteTable([t('a', 'x.example.com')])
    expect(Object.isFrozen(table.pools)).toBe(true)
    expect(Object.isFrozen(table.get('x.example.com'))).toBe(true)
    expect(Object.isFrozen(table.get('x.example.com')?.targets)).toBe(true)
  })

  it('stays correct with 200 routes of 5 targets each (hosts, wildcards and prefixes mixed)', () => {
    const targets: RoutedTarget[] = []
    for (let r = 0; r < 200; r++) {
      const route = r % 4 === 0 ? `*.w${r}.example.com` : r % 4 === 1 ? `h${r}.example.com/p${r}` : `h${r}.example.com`
      for (let i = 0; i < 5; i++) targets.push(t(`r${r}-t${i}`, route))
    }
    const table = new RouteTable(targets)
    expect(table.pools).toHaveLength(200)
    for (let r = 0; r < 200; r++) {
      const [host, path, key] = r % 4 === 0
        ? [`x.w${r}.example.com`, '/', `*.w${r}.example.com`]
        : r % 4 === 1 ? [`h${r}.example.com:9000`, `/p${r}/q`, `h${r}.example.com/p${r}`] : [`H${r}.example.com`, '/', `h${r}.example.com`]
      const pool = table.match(host, path)
      expect(pool?.key).toBe(key)
      expect(pool?.targets).toHaveLength(5)
    }
  })
})

describe('normalizeHost', () => {
  const cases: Array<[string | undefined, string]> = [
    [undefined, ''], ['', ''], ['Example.COM', 'example.com'], ['example.com:8080', 'example.com'],
    ['example.com.', 'example.com'], ['[::1]:9000', '[::1]'], ['[2001:DB8::1]', '[2001:db8::1]'], ['[::1', '[::1']
  ]
  it.each(cases)('%j → %j', (input, expected) => { expect(normalizeHost(input)).toBe(expected) })
})

describe('prefixCovers', () => {
  const cases: Array<[prefix: string, path: string, covered: boolean]> = [
    ['/', '/', true], ['/', '/anything', true], ['/', '*', true],
    ['/api', '/api', true], ['/api', '/api/', true], ['/api', '/api/x', true], ['/api', '/api?x', true],
    ['/api', '/apix', false], ['/api', '/ap', false], ['/api', '/', false], ['/api', '/Api', false],
    ['/a/b', '/a/b/c', true], ['/a/b', '/a/bc', false], ['/a/b', '/a', false]
  ]
  it.each(cases)('%s covers %s: %s', (prefix, path, covered) => { expect(prefixCovers(prefix, path)).toBe(covered) })
})
