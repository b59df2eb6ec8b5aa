// The forwarding rules of the one request path: the header fields on the way up and down
// (headers.ts), the request-target as the target sees it, and the failover decisions
// (failover.ts). The path itself is exercised end to end in test/integration/proxy-*.test.ts.
import type { IncomingHttpHeaders } from 'node:http'
import { describe, expect, it } from 'vitest'
import pino from 'pino'
import { downstreamFields, upstreamHeaderList, upstreamTarget } from '../../../src/proxy/headers.js'
import { attemptFailed, type AttemptLog, type FailureContext } from '../../../src/proxy/failover.js'
import { Router, type RoutableTarget } from '../../../src/proxy/router.js'

function up (headers: IncomingHttpHeaders, trusted = false, client = '10.0.0.7'): string[] {
  const list = upstreamHeaderList(headers, client, 'http', trusted)
  const pairs: string[] = []
  for (let i = 0; i < list.length; i += 2) pairs.push(`${list[i]!}: ${list[i + 1]!}`)
  return pairs.sort()
}

function down (headers: Record<string, string | string[]>): string[] {
  const fields = downstreamFields(headers)
  const pairs: string[] = []
  for (let i = 0; i < fields.length; i += 2) pairs.push(`${fields[i]!}: ${fields[i + 1]!}`)
  return pairs.sort()
}

describe('request headers on the way up', () => {
  it('keeps end-to-end fields, leaves Host to the dispatcher, and adds X-Forwarded-* and Via', () => {
    expect(up({ host: 'site.example', 'user-agent': 'wrk', accept: '*/*' })).toEqual([
      'accept: */*', 'user-agent: wrk', 'via: 1.1 zkproxy', 'x-forwarded-for: 10.0.0.7', 'x-forwarded-host: site.example', 'x-forwarded-proto: http'
    ])
  })

  it('drops hop-by-hop fields', () => {
    expect(up({ host: 'a', connection: 'keep-alive', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-authorization': 'x', upgrade: 'h2c', expect: '100-continue', 'transfer-encoding': 'chunked' }))
      .toEqual(['via: 1.1 zkproxy', 'x-forwarded-for: 10.0.0.7', 'x-forwarded-host: a', 'x-forwarded-proto: http'])
  })

  it('drops the fields Connection names, ours among them (their values are then not taken from the client)', () => {
    expect(up({ host: 'a', connection: 'close, X-Secret, x-forwarded-for, Via', 'x-secret': 's', 'x-forwarded-for': '1.2.3.4', via: '1.0 other' }))
      .toEqual(['via: 1.1 zkproxy', 'x-forwarded-for: 10.0.0.7', 'x-forwarded-host: a', 'x-forwarded-proto: http'])
  })

  it('appends to a client X-Forwarded-For and Via; replaces -Proto and -Host unless the peer is trusted', () => {
    const h = { host: 'a', 'x-forwarded-for': '1.2.3.4, 5.6.7.8', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', via: '1.1 edge' }
    expect(up(h)).toEqual(['via: 1.1 edge, 1.1 zkproxy', 'x-forwarded-for: 1.2.3.4, 5.6.7.8, 10.0.0.7', 'x-forwarded-host: a', 'x-forwarded-proto: http'])
    expect(up(h, true)).toEqual(['via: 1.1 edge, 1.1 zkproxy', 'x-forwarded-for: 1.2.3.4, 5.6.7.8, 10.0.0.7', 'x-forwarded-host: evil.example', 'x-forwarded-proto: https'])
  })

  it('strips every other forwarding and identity field unless the peer is trusted; underscore spellings always', () => {
    const h = {
      host: 'a',
      forwarded: 'for=6.6.6.6;host=evil;proto=https',
      'x-forwarded-scheme': 'https',
      'x-forwarded-ssl': 'on',
      'x-forwarded-port': '666',
      'x-forwarded-prefix': '/evil',
      'x-forwarded-server': 'evil',
      'x-original-host': 'evil.example',
      'x-host': 'evil.example',
      'x-real-ip': '6.6.6.6',
      'true-client-ip': '6.6.6.6',
      x_forwarded_host: 'evil.example',
      x_real_ip: '6.6.6.6'
    }
    expect(up(h)).toEqual(['via: 1.1 zkproxy', 'x-forwarded-for: 10.0.0.7', 'x-forwarded-host: a', 'x-forwarded-proto: http'])
    const trusted = up(h, true)
    expect(trusted).toContain('forwarded: for=6.6.6.6;host=evil;proto=https')
    expect(trusted).toContain('x-forwarded-port: 666')
    expect(trusted).toContain('x-real-ip: 6.6.6.6')
    expect(trusted.some((f) => f.includes('_'))).toBe(false)
  })

  it('a request without Host (HTTP/1.0) gets no X-Forwarded-Host', () => {
    expect(up({ accept: 'text/html' })).toEqual(['accept: text/html', 'via: 1.1 zkproxy', 'x-forwarded-for: 10.0.0.7', 'x-forwarded-proto: http'])
  })

  it('keeps repeated fields as Node gives them', () => {
    expect(up({ host: 'a', cookie: 'a=1; b=2', 'x-multi': 'one, two', 'set-cookie': ['x=1', 'y=2'] })).toEqual([
      'cookie: a=1; b=2', 'set-cookie: x=1', 'set-cookie: y=2', 'via: 1.1 zkproxy', 'x-forwarded-for: 10.0.0.7', 'x-forwarded-host: a', 'x-multi: one, two', 'x-forwarded-proto: http'
    ].sort())
  })
})

describe('response headers on the way down', () => {
  it('passes end-to-end fields and appends Via', () => {
    expect(down({ 'content-type': 'text/plain', 'content-length': '5', 'cache-control': 'max-age=60' }))
      .toEqual(['cache-control: max-age=60', 'content-length: 5', 'content-type: text/plain', 'via: 1.1 zkproxy'])
  })

  it('drops hop-by-hop fields and those Connection names', () => {
    expect(down({ connection: 'keep-alive, X-Private', 'keep-alive': 'timeout=99', 'x-private': 's', 'transfer-encoding': 'chunked', 'x-kept': 'k' }))
      .toEqual(['via: 1.1 zkproxy', 'x-kept: k'])
  })

  it('repeated Connection lines all name fields to drop', () => {
    expect(down({ connection: ['x-a', 'x-b'], 'x-a': '1', 'x-b': '2', 'x-c': '3' })).toEqual(['via: 1.1 zkproxy', 'x-c: 3'])
  })

  it('extends an upstream Via and keeps Set-Cookie lines apart', () => {
    expect(down({ via: '1.1 origin-cache', 'set-cookie': ['a=1', 'b=2'] })).toEqual(['set-cookie: a=1', 'set-cookie: b=2', 'via: 1.1 origin-cache, 1.1 zkproxy'])
  })
})

describe('the request-target the target sees', () => {
  it.each([
    ['/plain/path?q=1&r=a%20b', '/plain/path?q=1&r=a%20b'],
    ['/a|b{c}?x="y"', '/a|b%7Bc%7D?x="y"'],
    ['/q?path=a\\b', '/q?path=a\\b'],
    ['/caf\u00e9?n=\u00e9', '/caf%C3%A9?n=%C3%A9'],
    ['/h#frag', '/h%23frag']
  ])('%s → %s', (sent, seen) => {
    expect(upstreamTarget(sent)).toBe(seen)
  })
})

describe('failover decisions', () => {
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
