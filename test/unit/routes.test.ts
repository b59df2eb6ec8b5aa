import { describe, expect, it } from 'vitest'
import { MAX_PATH_PREFIX, parseRoute, routeOrThrow, stripPathPrefix } from '../../src/routes.js'

describe('parseRoute: accepted', () => {
  const cases: Array<[input: string, host: string, wildcard: boolean, pathPrefix: string, key: string]> = [
    ['shop.example.com', 'shop.example.com', false, '/', 'shop.example.com'],
    ['Shop.EXAMPLE.com', 'shop.example.com', false, '/', 'shop.example.com'],
    ['example.com/', 'example.com', false, '/', 'example.com'],
    ['example.com/api', 'example.com', false, '/api', 'example.com/api'],
    ['example.com/api/', 'example.com', false, '/api', 'example.com/api'],
    ['example.com/API/v1/', 'example.com', false, '/API/v1', 'example.com/API/v1'],
    ['*.example.com', 'example.com', true, '/', '*.example.com'],
    ['*.Example.com/static', 'example.com', true, '/static', '*.example.com/static'],
    ['example.com.', 'example.com', false, '/', 'example.com'],
    ['localhost', 'localhost', false, '/', 'localhost'],
    ['127.0.0.1/api', '127.0.0.1', false, '/api', '127.0.0.1/api'],
    ['[::1]', '[::1]', false, '/', '[::1]'],
    ['[2001:DB8::1]/x', '[2001:db8::1]', false, '/x', '[2001:db8::1]/x'],
    ['my_service.internal', 'my_service.internal', false, '/', 'my_service.internal'],
    ['bücher.example', 'xn--bcher-kva.example', false, '/', 'xn--bcher-kva.example'],
    ['example.com/a%20b/~x', 'example.com', false, '/a%20b/~x', 'example.com/a%20b/~x']
  ]
  it.each(cases)('%s', (input, host, wildcard, pathPrefix, key) => {
    expect(parseRoute(input)).toStrictEqual({ ok: true, route: { host, wildcard, pathPrefix, key } })
  })

  it('the canonical key parses back to itself', () => {
    for (const [input] of cases) {
      const key = routeOrThrow(input).key
      expect(routeOrThrow(key).key).toBe(key)
    }
  })
})

describe('parseRoute: refused, with a reason naming the value', () => {
  const cases: Array<[input: string, reason: RegExp]> = [
    ['', /empty/],
    ['/api', /empty host/],
    ['example.com:8080', /port/],
    ['example.com:8080/api', /port/],
    ['[::1]:9000', /port/],
    ['http://example.com', /scheme/],
    ['https://example.com/api', /scheme/],
    ['exa mple.com', /whitespace/],
    [' example.com', /whitespace/],
    ['example.com/a b', /whitespace/],
    ['example.com\t', /whitespace/],
    ['*.*.example.com', /more than one '\*'/],
    ['*.example.com/*', /'\*' in its path/],
    ['example.com/api/*', /'\*' in its path/],
    ['a*.example.com', /whole first label/],
    ['a.*.example.com', /whole first label/],
    ['*', /whole first label/],
    ['*.', /empty host/],
    ['*.[::1]', /IP address/],
    ['example..com', /empty label/],
    ['.example.com', /empty label/],
    ['-bad.example.com', /invalid character/],
    ['bad!.example.com', /invalid character/],
    ['example.com?x=1', /query or fragment/],
    ['example.com#top', /query or fragment/],
    ['example.com//api', /empty path segment/],
    ['example.com/a/../b', /'\.' or '\.\.'/],
    ['example.com/a/./b', /'\.' or '\.\.'/],
    ['example.com/<x>', /not allowed in a URL path/],
    [`${'a'.repeat(64)}.example.com`, /label longer than 63/],
    [`${'a.'.repeat(127)}com`, /longer than 253/],
    [`example.com/${'a'.repeat(MAX_PATH_PREFIX)}`, /path prefix longer/]
  ]
  it.each(cases)('%j', (input, reason) => {
    const r = parseRoute(input)
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.reason).toMatch(reason)
    // One line, naming the value as given (except the empty one, which has nothing to show).
    expect(r.reason).not.toContain('\n')
    if (input !== '') expect(r.reason).toContain(JSON.stringify(input))
  })

  it('a non-string is refused, not thrown on (znode data is anything)', () => {
    expect(parseRoute(42 as unknown as string)).toStrictEqual({ ok: false, reason: 'route must be a string' })
  })

  it('routeOrThrow throws a RangeError with the reason', () => {
    expect(() => routeOrThrow('example.com:80')).toThrow(RangeError)
    expect(() => routeOrThrow('example.com:80')).toThrow(/port/)
  })
})

describe('stripPathPrefix', () => {
  const cases: Array<[prefix: string, path: string, upstream: string]> = [
    ['/api', '/api/x', '/x'],
    ['/api', '/api/x/y?q=1', '/x/y?q=1'],
    ['/api', '/api', '/'],
    ['/api', '/api/', '/'],
    ['/api', '/api?q=1', '/?q=1'],
    ['/a/b', '/a/b/c', '/c'],
    ['/', '/x', '/x'],
    // Never called for a path the prefix does not cover, and harmless if it were.
    ['/api', '/apix', '/apix'],
    ['/api', '/other', '/other']
  ]
  it.each(cases)('%s: %s → %s', (prefix, path, upstream) => { expect(stripPathPrefix(prefix, path)).toBe(upstream) })
})
