import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { MAX_HEADER_FIELDS, checkRequest, hasDotSegment, validHost } from '../../../src/proxy/request-guard.js'

/** The fields of Node's request that checkRequest reads (the raw header list, the version, the url). */
function req (rawHeaders: string[], url = '/', minor = 1): IncomingMessage {
  return { rawHeaders, url, httpVersionMajor: 1, httpVersionMinor: minor } as unknown as IncomingMessage
}

describe('checkRequest', () => {
  it('passes a plain request', () => {
    expect(checkRequest(req(['Host', 'a', 'Accept', '*/*']))).toBeUndefined()
  })

  it.each([
    ['Host', 'host'], ['HOST', 'Host'], ['hOsT', 'host']
  ])('refuses two Host lines however they are spelled (%s, %s)', (first, second) => {
    expect(checkRequest(req([first, 'a', second, 'b']))?.message).toMatch(/more than one Host/)
  })

  it('does not count other four-letter fields as Host', () => {
    expect(checkRequest(req(['Host', 'a', 'Date', 'x', 'Hose', 'y']))).toBeUndefined()
  })

  it('refuses Transfer-Encoding on HTTP/1.0 and codings other than chunked', () => {
    expect(checkRequest(req(['Host', 'a', 'Transfer-Encoding', 'chunked'], '/', 0))?.message).toMatch(/HTTP\/1\.0/)
    expect(checkRequest(req(['Host', 'a', 'transfer-encoding', 'gzip', 'Transfer-Encoding', 'chunked']))?.code).toBe('ZKPROXY_ERR_PROXY_NOT_IMPLEMENTED')
    expect(checkRequest(req(['Host', 'a', 'TRANSFER-ENCODING', 'Chunked']))).toBeUndefined()
  })

  it.each([
    'example.com', 'Example.COM:9000', '127.0.0.1:80', '[::1]:8080', '[2001:db8::1]', 'xn--bcher-kva.example', 'a_b.example', ''
  ])('accepts the Host %j', (host) => {
    expect(validHost(host)).toBe(true)
    expect(checkRequest(req(['Host', host]))).toBeUndefined()
  })

  it.each([
    'user@evil.com', 'user@evil.com/x y', 'a.com/x', 'a b', 'a.com:99999', 'a.com:80x', 'a.com:1:2', '[::1', 'a\\b', 'a?b', 'a#b'
  ])('refuses the Host %j with 400 (RFC 9112 §3.2)', (host) => {
    expect(validHost(host)).toBe(false)
    expect(checkRequest(req(['Host', host]))?.message).toMatch(/invalid Host/)
  })

  it('refuses a backslash in the path, not in the query', () => {
    expect(checkRequest(req(['Host', 'a'], '/a\\b'))?.message).toMatch(/backslash/)
    expect(checkRequest(req(['Host', 'a'], '/a?b=\\'))).toBeUndefined()
  })

  it('refuses dot-segments, also percent-encoded', () => {
    expect(checkRequest(req(['Host', 'a'], '/a/../b'))?.message).toMatch(/dot-segments/)
    expect(hasDotSegment('/a/%2E%2e/b')).toBe(true)
    expect(hasDotSegment('/a/b.txt?x=/../')).toBe(false)
  })

  it(`refuses more than ${MAX_HEADER_FIELDS} header fields`, () => {
    const raw = Array.from({ length: MAX_HEADER_FIELDS + 1 }, (_, i) => [`x-${i}`, 'v']).flat()
    expect(checkRequest(req(raw))?.code).toBe('ZKPROXY_ERR_PROXY_TOO_MANY_HEADERS')
  })
})
