// Rules written from the RFC text, one test per sentence quoted (RFC 9111, RFC 9110 §5.6.7).
import { describe, expect, it } from 'vitest'
import { evaluate, parseHttpDate } from '../../../src/cache/policy.js'
import type { Decision } from '../../../src/cache/policy.js'
import type { HeaderMap } from '../../../src/cache/types.js'

const NOW = Date.parse('2026-01-01T00:00:00Z')
const at = (offsetSec: number): string => new Date(NOW + offsetSec * 1000).toUTCString()

function decide (resHeaders: HeaderMap): Decision {
  return evaluate(
    { method: 'GET', url: '/p', headers: { host: 'example.com' } },
    { status: 200, headers: { date: at(0), ...resHeaders } },
    { cacheTtlSec: 3600, now: NOW }
  )
}

describe('RFC 9111 §5.3 Expires: "A cache recipient MUST interpret invalid date formats, especially the value "0", as representing a time in the past (i.e., "already expired")"', () => {
  // Every shape below is not an HTTP-date (RFC 9110 §5.6.7), though Date.parse reads most of them.
  const MALFORMED = [
    '0', '-1', '1767225690', '', ' ',
    '2030-01-01', '2030-01-01T00:00:00Z', 'Jan 1 2030', '1 Jan 2030 00:00:00 GMT', 'Wed, 1 Jan 2030 00:00:00 GMT',
    'Tue, 01 Jan 2030 00:00:00', 'Tue, 01 Jan 2030 00:00:00 UTC', 'Tue, 01 Jan 2030 00:00:00 +0000', 'Tue, 01 Jan 2030 00:00:00 GMT garbage',
    'Tue, 01 jan 2030 00:00:00 GMT', 'tue, 01 Jan 2030 00:00:00 GMT', 'Tuesday, 01 Jan 2030 00:00:00 GMT',
    'Tue, 31 Feb 2030 00:00:00 GMT', 'Tue, 01 Jan 2030 24:00:00 GMT', 'Tue, 01 Jan 2030 00:60:00 GMT', 'Tue,01 Jan 2030 00:00:00 GMT',
    'Tue, 01 Jan 30 00:00:00 GMT', 'never', 'Infinity', '"Tue, 01 Jan 2030 00:00:00 GMT"'
  ]
  for (const expires of MALFORMED) {
    it(`Expires: ${JSON.stringify(expires)} is already expired`, () => {
      expect(decide({ expires })).toEqual({ storable: false, reason: 'stale' })
    })
  }

  it('repeated Expires lines are invalid: already expired', () => {
    expect(decide({ expires: [at(600), at(600)] })).toEqual({ storable: false, reason: 'stale' })
  })

  it('the three HTTP-date forms a recipient must accept (RFC 9110 §5.6.7) give a lifetime', () => {
    expect(decide({ expires: 'Thu, 01 Jan 2026 00:10:00 GMT' })).toMatchObject({ storable: true, ttlMs: 600_000 })
    expect(decide({ expires: 'Thursday, 01-Jan-26 00:10:00 GMT' })).toMatchObject({ storable: true, ttlMs: 600_000 })
    expect(decide({ expires: 'Thu Jan  1 00:10:00 2026' })).toMatchObject({ storable: true, ttlMs: 600_000 })
  })

  it('"Expires ... is ignored" when max-age is present (§5.3): a malformed Expires does not spoil it', () => {
    expect(decide({ expires: '0', 'cache-control': 'max-age=60' })).toMatchObject({ storable: true, ttlMs: 60_000 })
  })

  it('parseHttpDate: a two-digit rfc850 year more than 50 years ahead is in the past century', () => {
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37))
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(Date.UTC(1994, 10, 6, 8, 49, 37))
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(Date.UTC(1994, 10, 6, 8, 49, 37))
  })
})

describe('RFC 9111 §5.1 Age: "If the field value is invalid (e.g., it contains a list or something other than a non-negative integer), a cache SHOULD ignore the field"', () => {
  for (const age of ['10, 20', '-1', '+5', '1.5', '5s', 'ten', '0x10', '1e3', '']) {
    it(`Age: ${JSON.stringify(age)} is ignored (age 0)`, () => {
      expect(decide({ 'cache-control': 'max-age=60', age })).toMatchObject({ storable: true, ageSec: 0, ttlMs: 60_000 })
    })
  }

  it('repeated Age lines are a list: ignored', () => {
    expect(decide({ 'cache-control': 'max-age=60', age: ['10', '20'] })).toMatchObject({ storable: true, ageSec: 0 })
  })

  it('a plain non-negative integer counts against the lifetime (§4.2.3)', () => {
    expect(decide({ 'cache-control': 'max-age=60', age: '15' })).toMatchObject({ storable: true, ageSec: 15, ttlMs: 45_000 })
    expect(decide({ 'cache-control': 'max-age=60', age: '99999999999' })).toEqual({ storable: false, reason: 'stale' })
  })
})

describe('RFC 9111 §5.2.2.2 must-revalidate: "once the response has become stale, a cache MUST NOT reuse that response to satisfy another request until it has been successfully validated by the origin"', () => {
  it('must-revalidate, proxy-revalidate (§5.2.2.8) and s-maxage (§5.2.2.10) forbid serving stale', () => {
    for (const cc of ['max-age=60, must-revalidate', 'max-age=60, proxy-revalidate', 's-maxage=60']) {
      expect(decide({ 'cache-control': cc })).toMatchObject({ storable: true, mayServeStale: false })
    }
    expect(decide({ 'cache-control': 'max-age=60' })).toMatchObject({ storable: true, mayServeStale: true })
  })
})

describe('RFC 9213 targeted cache control: "the cache MUST select the first ... field with a valid, non-empty value and use its value to determine the caching policy for the response, and it MUST ignore the Cache-Control and Expires header fields in that response"', () => {
  const decideWith = (resHeaders: HeaderMap, targetedField?: string): Decision => evaluate(
    { method: 'GET', url: '/p', headers: { host: 'example.com' } },
    { status: 200, headers: { date: at(0), ...resHeaders } },
    { cacheTtlSec: 3600, now: NOW, ...(targetedField === undefined ? {} : { targetedField }) }
  )

  it('CDN-Cache-Control takes precedence over Cache-Control, both ways', () => {
    expect(decideWith({ 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' })).toMatchObject({ storable: true, ttlMs: 60_000 })
    expect(decideWith({ 'cache-control': 'public, max-age=600', 'cdn-cache-control': 'no-store' })).toEqual({ storable: false, reason: 'no-store' })
    expect(decideWith({ 'cache-control': 'max-age=600', 'cdn-cache-control': 'private' })).toEqual({ storable: false, reason: 'private' })
    expect(decideWith({ 'cache-control': 'private', 'cdn-cache-control': 'max-age=30, must-revalidate' })).toMatchObject({ storable: true, ttlMs: 30_000, mayServeStale: false })
  })

  it('Expires is ignored when the targeted field is used', () => {
    expect(decideWith({ expires: '0', 'cdn-cache-control': 'max-age=60' })).toMatchObject({ storable: true, ttlMs: 60_000 })
    // Without a lifetime in the targeted field, Expires does not supply one (heuristics may).
    expect(decideWith({ expires: at(600), 'cdn-cache-control': 'public' })).toEqual({ storable: false, reason: 'no-freshness' })
  })

  it('an invalid or empty targeted field is ignored: Cache-Control applies', () => {
    for (const bad of ['', ' ', 'Max-Age=60', 'max-age=60,,', 'max-age=(1 2)', 'max-age="a\\q"', 'max-age=60 x', '"quoted"']) {
      expect(decideWith({ 'cache-control': 'max-age=120', 'cdn-cache-control': bad })).toMatchObject({ storable: true, ttlMs: 120_000 })
    }
  })

  it('a valid Dictionary with parameters and booleans is read as directives', () => {
    expect(decideWith({ 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60;x=1, public=?1, no-store=?0' })).toMatchObject({ storable: true, ttlMs: 60_000 })
  })

  it('--cdn-cache-control-field names the field this cache obeys; CDN-Cache-Control is then an ordinary field; "" turns it off', () => {
    const h = { 'cache-control': 'max-age=120', 'cdn-cache-control': 'no-store', 'edge-cache-control': 'max-age=30' }
    expect(decideWith(h, 'edge-cache-control')).toMatchObject({ storable: true, ttlMs: 30_000 })
    expect(decideWith(h, '')).toMatchObject({ storable: true, ttlMs: 120_000 })
    expect(decideWith(h)).toEqual({ storable: false, reason: 'no-store' })
  })
})
