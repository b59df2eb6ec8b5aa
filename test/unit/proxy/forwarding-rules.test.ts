// The two forwarding paths share their rules: the raw path's header functions must give what
// reply-from plus headers.ts give the fastify path, and both paths decide failover with
// failover.ts. Both paths are also exercised end to end (test/integration/proxy-*.test.ts).
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import pino from 'pino'
import { downstreamRawHeaders, downstreamResponseHeaders, upstreamHeaderList, upstreamRequestHeaders } from '../../../src/proxy/headers.js'
import { attemptFailed, type AttemptLog, type FailureContext } from '../../../src/proxy/failover.js'
import { Router, type RoutableTarget } from '../../../src/proxy/router.js'

function fakeRequest (headers: IncomingHttpHeaders, remoteAddress = '10.0.0.7'): IncomingMessage {
  return { headers, socket: { remoteAddress } } as unknown as IncomingMessage
}

/** What the fastify path sends: reply-from drops Connection and the names it lists, sets Host; then ours. */
function viaFastifyPath (headers: IncomingHttpHeaders, trusted: boolean): Array<[string, string]> {
  const copy: IncomingHttpHeaders = { ...headers }
  const connection = copy.connection
  if (typeof connection === 'string') {
    for (const name of connection.split(',').map(n => n.trim().toLowerCase()).filter(n => n !== '')) delete copy[name]
  }
  delete copy.connection
  delete copy.host // reply-from sets the target's; undici does the same on the raw path
  const out = upstreamRequestHeaders(fakeRequest(headers), copy, 'http', trusted)
  return Object.entries(out).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, String(x)])).sort()
}

function viaRawPath (headers: IncomingHttpHeaders, trusted: boolean): Array<[string, string]> {
  const list = upstreamHeaderList(fakeRequest(headers), 'http', trusted)
  const pairs: Array<[string, string]> = []
  for (let i = 0; i < list.length; i += 2) pairs.push([list[i]!, list[i + 1]!])
  return pairs.sort()
}

describe('request headers: the raw path sends what the fastify path sends', () => {
  const cases: Array<[string, IncomingHttpHeaders]> = [
    ['plain', { host: 'site.example', 'user-agent': 'wrk', accept: '*/*' }],
    ['hop-by-hop fields', { host: 'a', connection: 'keep-alive', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-authorization': 'x', upgrade: 'h2c', expect: '100-continue' }],
    ['Connection names fields, ours among them', { host: 'a', connection: 'close, X-Secret, x-forwarded-for, Via', 'x-secret': 's', 'x-forwarded-for': '1.2.3.4', via: '1.0 other' }],
    ['client X-Forwarded-* and Via', { host: 'a', 'x-forwarded-for': '1.2.3.4, 5.6.7.8', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', via: '1.1 edge' }],
    ['no Host (HTTP/1.0)', { accept: 'text/html' }],
    ['repeated cookies and fields Node joins', { host: 'a', cookie: 'a=1; b=2', 'x-multi': 'one, two' }]
  ]
  for (const [name, headers] of cases) {
    for (const trusted of [false, true]) {
      it(`${name}${trusted ? ' (trusted peer)' : ''}`, () => {
        expect(viaRawPath(headers, trusted)).toEqual(viaFastifyPath(headers, trusted))
      })
    }
  }
})

describe('response headers: the raw path passes on what the fastify path passes on', () => {
  const raw = (...pairs: string[]): Buffer[] => pairs.map(p => Buffer.from(p, 'latin1'))
  const asObject = (pairs: Buffer[]): Record<string, string | string[]> => {
    // undici's parsed form, which reply-from hands to rewriteHeaders: lower-case names, repeats as arrays.
    const out: Record<string, string | string[]> = {}
    for (let i = 0; i < pairs.length; i += 2) {
      const k = pairs[i]!.toString('latin1').toLowerCase()
      const v = pairs[i + 1]!.toString('latin1')
      const prev = out[k]
      out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
    }
    return out
  }
  const sortedPairs = (fields: string[]): string[] => {
    const pairs: string[] = []
    for (let i = 0; i < fields.length; i += 2) pairs.push(`${fields[i]!}: ${fields[i + 1]!}`)
    return pairs.sort()
  }
  const fromObject = (h: Record<string, unknown>): string[] =>
    Object.entries(h).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map(x => `${k}: ${String(x)}`)).sort()

  const cases: Array<[string, Buffer[]]> = [
    ['plain', raw('Content-Type', 'text/plain', 'Content-Length', '5', 'Cache-Control', 'max-age=60')],
    ['hop-by-hop and Connection-named', raw('Connection', 'keep-alive, X-Private', 'Keep-Alive', 'timeout=99', 'X-Private', 's', 'Transfer-Encoding', 'chunked', 'X-Kept', 'k')],
    ['an upstream Via is extended', raw('Via', '1.1 origin-cache', 'Content-Length', '0')],
    ['several Set-Cookie lines stay separate', raw('Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '0')]
  ]
  for (const [name, pairs] of cases) {
    it(name, () => {
      expect(sortedPairs(downstreamRawHeaders(pairs))).toEqual(fromObject(downstreamResponseHeaders(asObject(pairs)) as Record<string, unknown>))
    })
  }

  it('repeated Connection lines all name fields to drop', () => {
    const fields = downstreamRawHeaders(raw('Connection', 'x-a', 'Connection', 'x-b', 'X-A', '1', 'X-B', '2', 'X-C', '3'))
    expect(sortedPairs(fields)).toEqual(['via: 1.1 zkproxy', 'x-c: 3'])
    expect(fromObject(downstreamResponseHeaders(asObject(raw('Connection', 'x-a', 'Connection', 'x-b', 'X-A', '1', 'X-B', '2', 'X-C', '3'))) as Record<string, unknown>))
      .toEqual(['via: 1.1 zkproxy', 'x-c: 3'])
  })
})

describe('failover decisions (shared by both paths)', () => {
  const target = (name: string): RoutableTarget =>
    ({ name, origin: `http://127.0.0.1:${name === 'a' ? 1 : 2}`, url: '', generation: name, requests: 0, revision: undefined, startedAt: undefined })
  function setup (): { ctx: FailureContext, router: Router } {
    const router = new Router({ countFor: () => ({ total: 0, pending: 0 }), random: () => 0, clock: () => 0 })
    router.update([target('a'), target('b')])
    return { ctx: { router, attempts: 3, log: pino({ level: 'silent' }), hooks: undefined }, router }
  }
  const err = (code: string): Error => Object.assign(new Error(code), { code })

  it('a refused connection fails over to the other target, whatever the method, and ejects the first', () => {
    const { ctx, router } = setup()
    const a = router.targets[0]!
    const tries: AttemptLog = { n: 1, tried: undefined }
    const out = attemptFailed(ctx, a, err('ECONNREFUSED'), tries, 'POST', true, false)
    expect(out.stage).toBe('connect')
    expect(out.next?.name).toBe('b')
    expect(router.isEjected(a)).toBe(true)
  })

  it('a reset after sending is retried for GET but not for POST (RFC 9110 §9.2.2)', () => {
    const { ctx, router } = setup()
    const a = router.targets[0]!
    expect(attemptFailed(ctx, a, err('ECONNRESET'), { n: 1, tried: undefined }, 'GET', true, false).next?.name).toBe('b')
    expect(attemptFailed(ctx, a, err('ECONNRESET'), { n: 1, tried: undefined }, 'POST', true, false).next).toBeUndefined()
  })

  it('never after a byte went to the client, never past --attempts, never with a streamed body, never on a timeout', () => {
    const { ctx, router } = setup()
    const a = router.targets[0]!
    expect(attemptFailed(ctx, a, err('ECONNREFUSED'), { n: 1, tried: undefined }, 'GET', true, true).next).toBeUndefined()
    expect(attemptFailed(ctx, a, err('ECONNREFUSED'), { n: 3, tried: undefined }, 'GET', true, false).next).toBeUndefined()
    expect(attemptFailed(ctx, a, err('ECONNREFUSED'), { n: 1, tried: undefined }, 'PUT', false, false).next).toBeUndefined()
    const timeout = attemptFailed(ctx, a, err('UND_ERR_HEADERS_TIMEOUT'), { n: 1, tried: undefined }, 'GET', true, false)
    expect(timeout).toEqual({ stage: 'timeout', next: undefined })
  })

  it('never to a target already tried', () => {
    const { ctx, router } = setup()
    const [a, b] = router.targets
    const tries: AttemptLog = { n: 1, tried: undefined }
    expect(attemptFailed(ctx, a!, err('ECONNREFUSED'), tries, 'GET', true, false).next?.name).toBe('b')
    tries.n++
    expect(attemptFailed(ctx, b!, err('ECONNREFUSED'), tries, 'GET', true, false).next).toBeUndefined()
  })
})
