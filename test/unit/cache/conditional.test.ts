import { describe, expect, it } from 'vitest'
import { isNotModified, notModifiedHeaders, parseEntityTags } from '../../../src/cache/conditional.js'
import type { CachedEntry } from '../../../src/cache/entry.js'
import type { HeaderMap } from '../../../src/cache/types.js'

const STORED_AT = Date.parse('2026-01-01T00:00:00Z')
const at = (offsetSec: number): string => new Date(STORED_AT + offsetSec * 1000).toUTCString()

function entry (overrides: Partial<CachedEntry> = {}): CachedEntry {
  return {
    status: 200,
    headers: {},
    body: Buffer.from('x'),
    storedAt: STORED_AT,
    ttlMs: 60_000,
    ageAtStoreSec: 0,
    mayServeStale: true,
    varyNames: [],
    varyValues: [],
    ...overrides
  }
}

const withTags = entry({ etag: '"v1"', lastModified: at(-100) })

describe('isNotModified (RFC 9110 §13, RFC 9111 §4.3.2)', () => {
  it.each<{ title: string, headers: HeaderMap, stored?: CachedEntry, method?: string, expected: boolean }>([
    { title: 'no conditional headers', headers: {}, expected: false },
    { title: 'If-None-Match strong match', headers: { 'if-none-match': '"v1"' }, expected: true },
    { title: 'If-None-Match weak request tag, strong stored tag', headers: { 'if-none-match': 'W/"v1"' }, expected: true },
    { title: 'If-None-Match strong request tag, weak stored tag', headers: { 'if-none-match': '"v1"' }, stored: entry({ etag: 'W/"v1"' }), expected: true },
    { title: 'If-None-Match list containing the tag', headers: { 'if-none-match': '"a", W/"v1" , "b"' }, expected: true },
    { title: 'If-None-Match list without the tag', headers: { 'if-none-match': '"a", "b"' }, expected: false },
    { title: 'If-None-Match: *', headers: { 'if-none-match': '*' }, stored: entry(), expected: true },
    { title: 'If-None-Match with a comma inside a tag', headers: { 'if-none-match': '"a,b"' }, stored: entry({ etag: '"a,b"' }), expected: true },
    { title: 'If-None-Match must not match a tag prefix', headers: { 'if-none-match': '"v"' }, expected: false },
    { title: 'If-None-Match, stored response has no ETag', headers: { 'if-none-match': '"v1"' }, stored: entry({ lastModified: at(-100) }), expected: false },
    { title: 'If-None-Match wins over a matching If-Modified-Since', headers: { 'if-none-match': '"other"', 'if-modified-since': at(0) }, expected: false },
    { title: 'If-None-Match wins even without a stored ETag', headers: { 'if-none-match': '"v1"', 'if-modified-since': at(0) }, stored: entry({ lastModified: at(-100) }), expected: false },
    { title: 'If-Modified-Since after Last-Modified', headers: { 'if-modified-since': at(-50) }, expected: true },
    { title: 'If-Modified-Since equal to Last-Modified', headers: { 'if-modified-since': at(-100) }, expected: true },
    { title: 'If-Modified-Since before Last-Modified', headers: { 'if-modified-since': at(-101) }, expected: false },
    { title: 'If-Modified-Since invalid is ignored', headers: { 'if-modified-since': 'yesterday' }, expected: false },
    { title: 'no Last-Modified: compared with Date', headers: { 'if-modified-since': at(-10) }, stored: entry({ headers: { date: at(-20) } }), expected: true },
    { title: 'no Last-Modified: Date after the condition', headers: { 'if-modified-since': at(-30) }, stored: entry({ headers: { date: at(-20) } }), expected: false },
    { title: 'no Last-Modified nor Date: time stored', headers: { 'if-modified-since': at(0) }, stored: entry(), expected: true },
    { title: 'HEAD is conditional too', method: 'HEAD', headers: { 'if-none-match': '"v1"' }, expected: true },
    { title: 'not for other methods', method: 'POST', headers: { 'if-none-match': '"v1"' }, expected: false },
    { title: 'not for a stored 404 (§13.2.1)', headers: { 'if-none-match': '*' }, stored: entry({ status: 404 }), expected: false }
  ])('$title → $expected', ({ headers, stored, method, expected }) => {
    expect(isNotModified({ method: method ?? 'GET', headers }, stored ?? withTags)).toBe(expected)
  })

  it('parses entity-tag lists, skipping malformed elements', () => {
    expect(parseEntityTags('"a", W/"b", junk, "c,d", ""')).toEqual(['a', 'b', 'c,d', ''])
  })

  it('builds 304 headers from the stored ones (RFC 9110 §15.4.5)', () => {
    const stored = entry({
      headers: { etag: '"v1"', 'cache-control': 'max-age=60', Vary: 'Accept-Encoding', date: at(0), 'content-type': 'text/html', 'content-length': '1' }
    })
    expect(notModifiedHeaders(stored, 7)).toEqual({
      etag: '"v1"', 'cache-control': 'max-age=60', vary: 'Accept-Encoding', date: at(0), age: '7'
    })
  })
})
