// The cache stage's pure helpers: the prepared heads a hit writes (cache-respond.ts) and the
// copy of a body a miss stores (cache-fetch.ts). The request flow itself is proved end to end in
// test/integration/cache.test.ts, against a real origin and a real ZooKeeper.
import type { ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { PreparedResponse } from '../../../src/proxy/cache-respond.js'
import { joinChunks } from '../../../src/proxy/cache-fetch.js'
import { fakeClock, request, storedEntry } from '../cache/fixtures.js'

interface Written { status: number, fields: string[], body: Buffer | undefined }

/** The two calls a prepared response makes, recorded (the field list is copied: it is reused). */
function fakeResponse (): { res: ServerResponse, written: Written[] } {
  const written: Written[] = []
  const res = {
    writeHead (status: number, fields: string[]) { written.push({ status, fields: [...fields], body: undefined }) },
    end (body?: Buffer) { written.at(-1)!.body = body }
  }
  return { res: res as unknown as ServerResponse, written }
}

function field (fields: string[], name: string): string[] {
  const values: string[] = []
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) values.push(fields[i + 1]!)
  return values
}

describe('PreparedResponse', () => {
  const clock = fakeClock()
  const entry = storedEntry(request('/a'), clock.now(), {
    headers: {
      'Content-Type': 'text/plain',
      age: '7',
      'content-length': '999',
      'x-cache': 'MISS',
      'transfer-encoding': 'chunked',
      link: ['</a.css>; rel=preload', '</b.js>; rel=preload'],
      etag: '"v1"',
      via: '1.1 zkproxy'
    },
    body: 'hello'
  })

  it('writes the stored fields, its own Content-Length, Age and X-Cache: HIT', () => {
    const { res, written } = fakeResponse()
    new PreparedResponse(entry).writeHit(res, 12, false)
    const [w] = written
    expect(w?.status).toBe(200)
    expect(w?.body?.toString()).toBe('hello')
    const fields = w!.fields
    expect(field(fields, 'content-type')).toEqual(['text/plain'])
    expect(field(fields, 'content-length')).toEqual(['5'])
    expect(field(fields, 'age')).toEqual(['12'])
    expect(field(fields, 'x-cache')).toEqual(['HIT'])
    expect(field(fields, 'link')).toEqual(['</a.css>; rel=preload', '</b.js>; rel=preload'])
    expect(field(fields, 'transfer-encoding')).toEqual([])
  })

  it('rewrites only the Age slot from one hit to the next, and HEAD gets no body', () => {
    const { res, written } = fakeResponse()
    const prepared = new PreparedResponse(entry)
    prepared.writeHit(res, 1, false)
    prepared.writeHit(res, 2, true)
    prepared.writeHit(res, 2, false)
    expect(written.map(w => field(w.fields, 'age')[0])).toEqual(['1', '2', '2'])
    expect(written.map(w => w.body?.length)).toEqual([5, undefined, 5])
    expect(written[1]!.fields.length).toBe(written[0]!.fields.length)
  })

  it('computes Age from the upstream Age at store time and the time resident here (RFC 9111 §4.2.3)', () => {
    const aged = storedEntry(request('/b'), clock.now(), { headers: { age: '30' } })
    const prepared = new PreparedResponse(aged)
    expect(prepared.ageAt(clock.now())).toBe(30)
    expect(prepared.ageAt(clock.now() + 2500)).toBe(32)
  })

  it('a 304 carries the RFC 9110 §15.4.5 fields, Via, Age and X-Cache, and no body', () => {
    const { res, written } = fakeResponse()
    new PreparedResponse(entry).writeNotModified(res, 3)
    const w = written[0]!
    expect(w.status).toBe(304)
    expect(w.body).toBeUndefined()
    expect(field(w.fields, 'etag')).toEqual(['"v1"'])
    expect(field(w.fields, 'via')).toEqual(['1.1 zkproxy'])
    expect(field(w.fields, 'age')).toEqual(['3'])
    expect(field(w.fields, 'x-cache')).toEqual(['HIT'])
    expect(field(w.fields, 'content-type')).toEqual([])
    expect(field(w.fields, 'content-length')).toEqual([])
  })

  it('a stale answer says so: X-Cache: STALE and Warning 110', () => {
    const { res, written } = fakeResponse()
    new PreparedResponse(entry).writeStale(res, 90, false)
    const w = written[0]!
    expect(field(w.fields, 'x-cache')).toEqual(['STALE'])
    expect(field(w.fields, 'warning')).toEqual(['110 - "Response is Stale"'])
    expect(field(w.fields, 'age')).toEqual(['90'])
    expect(w.body?.toString()).toBe('hello')
  })

  it('a stored 204 has no Content-Length (RFC 9110 §8.6)', () => {
    const { res, written } = fakeResponse()
    new PreparedResponse(storedEntry(request('/c'), clock.now(), { status: 204, body: '' })).writeHit(res, 0, false)
    expect(field(written[0]!.fields, 'content-length')).toEqual([])
  })
})

describe('joinChunks', () => {
  it('joins the chunks into memory of its own (not a view into a pool or a socket buffer)', () => {
    const socketBuffer = Buffer.from('xxabcdexx')
    const body = joinChunks([socketBuffer.subarray(2, 4), socketBuffer.subarray(4, 7)], 5)
    expect(body.toString()).toBe('abcde')
    expect(body.buffer.byteLength).toBe(5)
  })

  it('an empty body is a body', () => {
    expect(joinChunks([], 0).length).toBe(0)
  })
})
