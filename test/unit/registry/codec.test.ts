import { describe, expect, it } from 'vitest'

import {
  decodeRevision,
  decodeTarget,
  defaultTargetName,
  encodeRevision,
  encodeTarget,
  MAX_REVISION_BYTES,
  MAX_ROUTES_PER_TARGET,
  MAX_TARGET_DATA_BYTES,
  validateTargetName
} from '../../../src/registry/codec.js'
import type { DecodedTarget, TargetData } from '../../../src/registry/codec.js'

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8')
const text = (value: string): Buffer => Buffer.from(value, 'utf8')

describe('decodeTarget: accepted forms', () => {
  const cases: Array<{ title: string, name: string, data: Buffer, target: DecodedTarget }> = [
    {
      title: 'full JSON form',
      name: '10.0.0.5:4000',
      data: json({ url: 'http://10.0.0.5:4000', requests: 123, revision: '9f2c1e0', startedAt: '2026-11-22T10:00:00.000Z' }),
      target: {
        name: '10.0.0.5:4000',
        origin: 'http://10.0.0.5:4000',
        url: 'http://10.0.0.5:4000',
        requests: 123,
        revision: '9f2c1e0',
        startedAt: '2026-11-22T10:00:00.000Z'
      }
    },
    {
      title: 'JSON without requests counts as 0',
      name: 'web-1',
      data: json({ url: 'https://app.example:8443' }),
      target: { name: 'web-1', origin: 'https://app.example:8443', url: 'https://app.example:8443', requests: 0 }
    },
    {
      title: 'a trailing "/" is reduced to the origin, the url is kept as written',
      name: 'a',
      data: json({ url: 'http://Host.Example:4000/', requests: 0 }),
      target: { name: 'a', origin: 'http://host.example:4000', url: 'http://Host.Example:4000/', requests: 0 }
    },
    {
      title: 'default port is dropped from the origin',
      name: 'a',
      data: json({ url: 'http://10.0.0.5:80', requests: 1 }),
      target: { name: 'a', origin: 'http://10.0.0.5', url: 'http://10.0.0.5:80', requests: 1 }
    },
    {
      title: 'IPv6 url',
      name: 'v6',
      data: json({ url: 'http://[::1]:4000', requests: 7 }),
      target: { name: 'v6', origin: 'http://[::1]:4000', url: 'http://[::1]:4000', requests: 7 }
    },
    {
      title: 'unknown fields are ignored (forward compatible)',
      name: 'a',
      data: json({ url: 'http://h:1', requests: 2, zone: 'eu-1' }),
      target: { name: 'a', origin: 'http://h:1', url: 'http://h:1', requests: 2 }
    },
    {
      title: 'surrounding whitespace',
      name: 'a',
      data: text(' \n{"url":"http://h:1","requests":3}\n'),
      target: { name: 'a', origin: 'http://h:1', url: 'http://h:1', requests: 3 }
    },
    {
      title: 'largest safe integer',
      name: 'a',
      data: json({ url: 'http://h:1', requests: Number.MAX_SAFE_INTEGER }),
      target: { name: 'a', origin: 'http://h:1', url: 'http://h:1', requests: Number.MAX_SAFE_INTEGER }
    },
    {
      title: 'bare integer with IPv4 host:port name',
      name: '10.0.0.5:4000',
      data: text('42'),
      target: { name: '10.0.0.5:4000', origin: 'http://10.0.0.5:4000', url: 'http://10.0.0.5:4000', requests: 42 }
    },
    {
      title: 'bare integer with a newline and a hostname',
      name: 'web.internal:8080',
      data: text('0\n'),
      target: { name: 'web.internal:8080', origin: 'http://web.internal:8080', url: 'http://web.internal:8080', requests: 0 }
    },
    {
      title: 'bare integer with an IPv6 name',
      name: '[::1]:4000',
      data: text('9'),
      target: { name: '[::1]:4000', origin: 'http://[::1]:4000', url: 'http://[::1]:4000', requests: 9 }
    },
    {
      title: 'bare integer with a full IPv6 name',
      name: '[2001:db8::5]:443',
      data: text('1'),
      target: { name: '[2001:db8::5]:443', origin: 'http://[2001:db8::5]:443', url: 'http://[2001:db8::5]:443', requests: 1 }
    }
  ]

  it.each(cases)('$title', ({ name, data, target }) => {
    expect(decodeTarget(name, data)).toStrictEqual({ ok: true, target })
  })

  it('parses routes, drops duplicates by canonical key, and treats an empty list as none', () => {
    const r = decodeTarget('a', json({ url: 'http://h:1', routes: ['Shop.Example.com', 'example.com/api/', 'shop.example.com', '*.example.com', 'example.com/api'] }))
    if (!r.ok) throw new Error(r.reason)
    expect(r.target.routes).toStrictEqual([
      { host: 'shop.example.com', wildcard: false, pathPrefix: '/', key: 'shop.example.com' },
      { host: 'example.com', wildcard: false, pathPrefix: '/api', key: 'example.com/api' },
      { host: 'example.com', wildcard: true, pathPrefix: '/', key: '*.example.com' }
    ])
    const none = decodeTarget('a', json({ url: 'http://h:1', routes: [] }))
    expect(none).toStrictEqual({ ok: true, target: { name: 'a', origin: 'http://h:1', url: 'http://h:1', requests: 0 } })
  })

  it('accepts data of exactly the size limit', () => {
    const base = JSON.stringify({ url: 'http://h:1', requests: 1 })
    const data = text(base + ' '.repeat(MAX_TARGET_DATA_BYTES - base.length))
    expect(data.length).toBe(MAX_TARGET_DATA_BYTES)
    expect(decodeTarget('a', data).ok).toBe(true)
  })
})

describe('decodeTarget: rejections', () => {
  const cases: Array<{ title: string, name: string, data: Buffer | null, reason: RegExp }> = [
    // name
    { title: 'empty name', name: '', data: text('1'), reason: /name is empty/ },
    { title: 'name with /', name: 'a/b', data: json({ url: 'http://h:1' }), reason: /contains '\/'/ },
    { title: 'name "."', name: '.', data: json({ url: 'http://h:1' }), reason: /reserved/ },
    { title: 'name ".."', name: '..', data: json({ url: 'http://h:1' }), reason: /reserved/ },
    { title: 'name with a control character', name: 'a\u0001', data: json({ url: 'http://h:1' }), reason: /non-printable/ },
    // size, encoding, syntax
    { title: 'null data', name: 'a', data: null, reason: /data is empty/ },
    { title: 'empty data', name: 'a', data: Buffer.alloc(0), reason: /data is empty/ },
    { title: 'whitespace only', name: 'a', data: text('  \n'), reason: /neither JSON nor a decimal integer/ },
    { title: 'data over 64 KiB', name: 'a', data: Buffer.alloc(MAX_TARGET_DATA_BYTES + 1, 0x20), reason: /over the 65536 byte limit/ },
    { title: 'invalid UTF-8', name: 'a', data: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), reason: /not valid UTF-8/ },
    { title: 'unparseable JSON', name: 'a', data: text('{"url":'), reason: /neither JSON nor a decimal integer/ },
    { title: 'JSON array', name: 'a', data: json(['http://h:1']), reason: /must be a JSON object/ },
    { title: 'JSON null', name: 'a', data: text('null'), reason: /must be a JSON object/ },
    { title: 'JSON string', name: 'a', data: json('http://h:1'), reason: /must be a JSON object/ },
    { title: 'negative bare number', name: 'h:1', data: text('-5'), reason: /must be a JSON object or a bare decimal integer/ },
    { title: 'bare number with exponent', name: 'h:1', data: text('1e3'), reason: /must be a JSON object or a bare decimal integer/ },
    // url
    { title: 'missing url', name: 'a', data: json({ requests: 1 }), reason: /"url" is missing or not a string/ },
    { title: 'url not a string', name: 'a', data: json({ url: 42 }), reason: /"url" is missing or not a string/ },
    { title: 'url not a URL', name: 'a', data: json({ url: '10.0.0.5:4000' }), reason: /not http or https|not a valid URL/ },
    { title: 'relative url', name: 'a', data: json({ url: '/x' }), reason: /not a valid URL/ },
    { title: 'ftp url', name: 'a', data: json({ url: 'ftp://h:21' }), reason: /not http or https/ },
    { title: 'file url', name: 'a', data: json({ url: 'file:///etc/passwd' }), reason: /not http or https/ },
    { title: 'url with user and password', name: 'a', data: json({ url: 'http://u:p@h:1' }), reason: /must not contain credentials/ },
    { title: 'url with user only', name: 'a', data: json({ url: 'http://u@h:1' }), reason: /must not contain credentials/ },
    { title: 'url with a path', name: 'a', data: json({ url: 'http://h:1/app' }), reason: /has a path/ },
    { title: 'url with a query', name: 'a', data: json({ url: 'http://h:1/?a=1' }), reason: /has a query/ },
    { title: 'url with an empty query', name: 'a', data: json({ url: 'http://h:1?' }), reason: /has a query/ },
    { title: 'url with a fragment', name: 'a', data: json({ url: 'http://h:1#top' }), reason: /has a fragment/ },
    { title: 'url with an empty fragment', name: 'a', data: json({ url: 'http://h:1/#' }), reason: /has a fragment/ },
    // requests
    { title: 'negative requests', name: 'a', data: json({ url: 'http://h:1', requests: -1 }), reason: /"requests" must be a non-negative safe integer/ },
    { title: 'fractional requests', name: 'a', data: json({ url: 'http://h:1', requests: 1.5 }), reason: /"requests" must be a non-negative safe integer/ },
    { title: 'requests as a string', name: 'a', data: json({ url: 'http://h:1', requests: '5' }), reason: /"requests" must be a non-negative safe integer/ },
    { title: 'requests null', name: 'a', data: json({ url: 'http://h:1', requests: null }), reason: /"requests" must be a non-negative safe integer/ },
    { title: 'requests beyond 2^53', name: 'a', data: text('{"url":"http://h:1","requests":9007199254740993}'), reason: /"requests" must be a non-negative safe integer/ },
    { title: 'bare count beyond 2^53', name: 'h:1', data: text('9007199254740993'), reason: /not a safe integer/ },
    // optional fields
    { title: 'revision not a string', name: 'a', data: json({ url: 'http://h:1', revision: 5 }), reason: /"revision" must be a string/ },
    { title: 'startedAt not a string', name: 'a', data: json({ url: 'http://h:1', startedAt: 0 }), reason: /"startedAt" must be a string/ },
    // routes: one bad route skips the whole target (it must not serve the default pool instead)
    { title: 'routes not an array', name: 'a', data: json({ url: 'http://h:1', routes: 'example.com' }), reason: /"routes" must be an array of strings/ },
    { title: 'routes null', name: 'a', data: json({ url: 'http://h:1', routes: null }), reason: /"routes" must be an array of strings/ },
    { title: 'a route not a string', name: 'a', data: json({ url: 'http://h:1', routes: ['example.com', 7] }), reason: /array of strings, got number/ },
    { title: 'a route with a port', name: 'a', data: json({ url: 'http://h:1', routes: ['example.com', 'example.com:80'] }), reason: /"example.com:80" has a port/ },
    { title: 'a route with a scheme', name: 'a', data: json({ url: 'http://h:1', routes: ['http://example.com'] }), reason: /has a scheme/ },
    { title: 'an empty route', name: 'a', data: json({ url: 'http://h:1', routes: [''] }), reason: /route is empty/ },
    { title: 'stripPrefix not a boolean', name: 'a', data: json({ url: 'http://h:1', routes: ['example.com/api'], stripPrefix: 'yes' }), reason: /"stripPrefix" must be true or false/ },
    { title: 'too many routes', name: 'a', data: json({ url: 'http://h:1', routes: Array.from({ length: MAX_ROUTES_PER_TARGET + 1 }, (_, i) => `h${i}.example.com`) }), reason: /over the 256 limit/ },
    // bare integer names
    { title: 'bare integer with a plain name', name: 'web-1', data: text('5'), reason: /needs a host:port znode name/ },
    { title: 'bare integer with port 0', name: 'h:0', data: text('5'), reason: /needs a host:port znode name/ },
    { title: 'bare integer with port over 65535', name: 'h:65536', data: text('5'), reason: /needs a host:port znode name/ },
    { title: 'bare integer with an unbracketed IPv6 name', name: '::1:4000', data: text('5'), reason: /needs a host:port znode name/ },
    { title: 'bare integer with a bad IPv6 literal', name: '[1:2:3]:4000', data: text('5'), reason: /needs a host:port znode name/ }
  ]

  it.each(cases)('$title', ({ name, data, reason }) => {
    const result = decodeTarget(name, data)
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.reason).toMatch(reason)
  })

  it('names the znode in every reason', () => {
    const result = decodeTarget('web-7', text('{'))
    expect(result).toMatchObject({ ok: false, reason: expect.stringContaining('web-7') })
  })

  it('does not echo credentials in the reason', () => {
    const result = decodeTarget('a', json({ url: 'http://admin:s3cret@h:1' }))
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.reason).not.toContain('s3cret')
  })

  it('never throws, whatever the bytes', () => {
    const samples = [Buffer.from([0]), Buffer.from('{"url":{}}'), Buffer.from('\u0000\u0000'), Buffer.from('[]'), Buffer.from('true')]
    for (const data of samples) {
      expect(() => decodeTarget('h:1', data)).not.toThrow()
    }
  })
})

describe('encodeTarget', () => {
  it('writes keys in a fixed order whatever the input order', () => {
    const a = encodeTarget({ startedAt: 's', revision: 'r', requests: 1, url: 'http://h:1' })
    const b = encodeTarget({ url: 'http://h:1', requests: 1, revision: 'r', startedAt: 's' })
    expect(a.toString('utf8')).toBe('{"url":"http://h:1","requests":1,"revision":"r","startedAt":"s"}')
    expect(a.equals(b)).toBe(true)
  })

  it('writes routes after the other fields, as given, and none at all for an empty list', () => {
    expect(encodeTarget({ url: 'http://h:1', requests: 2, revision: 'r', routes: ['Shop.example.com', 'example.com/api/'] }).toString('utf8'))
      .toBe('{"url":"http://h:1","requests":2,"revision":"r","routes":["Shop.example.com","example.com/api/"]}')
    expect(encodeTarget({ url: 'http://h:1', requests: 0, routes: [] }).toString('utf8')).toBe('{"url":"http://h:1","requests":0}')
  })

  it('reads and writes stripPrefix only when true', () => {
    const on = decodeTarget('a', json({ url: 'http://h:1', routes: ['example.com/api'], stripPrefix: true }))
    expect(on.ok && on.target.stripPrefix).toBe(true)
    const off = decodeTarget('a', json({ url: 'http://h:1', stripPrefix: false }))
    expect(off).toStrictEqual({ ok: true, target: { name: 'a', origin: 'http://h:1', url: 'http://h:1', requests: 0 } })
    expect(encodeTarget({ url: 'http://h:1', requests: 0, routes: ['example.com/api'], stripPrefix: true }).toString('utf8'))
      .toBe('{"url":"http://h:1","requests":0,"routes":["example.com/api"],"stripPrefix":true}')
    expect(encodeTarget({ url: 'http://h:1', requests: 0, stripPrefix: false }).toString('utf8')).toBe('{"url":"http://h:1","requests":0}')
  })

  it('writes the routes of a decoded target in their canonical form', () => {
    const decoded = decodeTarget('a', json({ url: 'http://h:1', requests: 4, routes: ['Example.com/api/'] }))
    if (!decoded.ok) throw new Error(decoded.reason)
    expect(encodeTarget(decoded.target).toString('utf8')).toBe('{"url":"http://h:1","requests":4,"routes":["example.com/api"]}')
  })

  it('omits absent optional fields', () => {
    expect(encodeTarget({ url: 'http://h:1', requests: 0 }).toString('utf8')).toBe('{"url":"http://h:1","requests":0}')
  })

  it('leaves out the name and origin of a decoded target', () => {
    const decoded = decodeTarget('a', json({ url: 'http://h:1/', requests: 4 }))
    if (!decoded.ok) throw new Error(decoded.reason)
    expect(JSON.parse(encodeTarget(decoded.target).toString('utf8'))).toStrictEqual({ url: 'http://h:1/', requests: 4 })
  })

  const roundTrips: TargetData[] = [
    { url: 'http://10.0.0.5:4000', requests: 123, revision: '9f2c1e0', startedAt: '2026-11-22T10:00:00.000Z' },
    { url: 'https://[2001:db8::1]:8443', requests: 0 },
    { url: 'http://h:1', requests: Number.MAX_SAFE_INTEGER, revision: 'ünïcødé ✓' },
    { url: 'http://h:2', requests: 9, revision: 'r', startedAt: 's', routes: ['shop.example.com', '*.example.com/static'] }
  ]

  it.each(roundTrips)('round trips $url', (data) => {
    const decoded = decodeTarget('n', encodeTarget(data))
    if (!decoded.ok) throw new Error(decoded.reason)
    const { name, origin, routes, ...rest } = decoded.target
    expect(name).toBe('n')
    expect(origin).toBe(new URL(data.url).origin)
    const { routes: written, ...fields } = data
    expect(rest).toStrictEqual(fields)
    expect(routes?.map(r => r.key)).toStrictEqual(written)
    // Decoding then encoding again gives the same bytes (stable for compare-and-set rewrites).
    expect(encodeTarget(decoded.target).equals(encodeTarget(data))).toBe(true)
  })

  it('turns a bare-integer target into the JSON form', () => {
    const decoded = decodeTarget('10.0.0.5:4000', text('42'))
    if (!decoded.ok) throw new Error(decoded.reason)
    expect(encodeTarget({ ...decoded.target, requests: 43 }).toString('utf8')).toBe('{"url":"http://10.0.0.5:4000","requests":43}')
  })
})

describe('revision codec', () => {
  const decodes: Array<{ title: string, data: Buffer | null, revision: string | undefined }> = [
    { title: 'git commit', data: text('9f2c1e0'), revision: '9f2c1e0' },
    { title: 'trimmed', data: text('  9f2c1e0\n'), revision: '9f2c1e0' },
    { title: 'timestamp', data: text('2026-11-22T10:00:00.000Z'), revision: '2026-11-22T10:00:00.000Z' },
    { title: 'null (no data)', data: null, revision: undefined },
    { title: 'empty', data: Buffer.alloc(0), revision: undefined },
    { title: 'whitespace only', data: text(' \n\t'), revision: undefined },
    { title: 'exactly 1 KiB', data: text('r'.repeat(MAX_REVISION_BYTES)), revision: 'r'.repeat(MAX_REVISION_BYTES) },
    { title: 'over 1 KiB', data: text('r'.repeat(MAX_REVISION_BYTES + 1)), revision: undefined },
    { title: 'over 1 KiB in UTF-8 bytes', data: text('é'.repeat(513)), revision: undefined },
    { title: 'not UTF-8', data: Buffer.from([0xc3, 0x28]), revision: undefined }
  ]

  it.each(decodes)('decodeRevision: $title', ({ data, revision }) => {
    expect(decodeRevision(data)).toBe(revision)
  })

  it.each(['9f2c1e0', '2026-11-22T10:00:00.000Z', 'v1.2.3+build.7', 'ünïcødé'])('round trips %s', (rev) => {
    expect(decodeRevision(encodeRevision(rev))).toBe(rev)
  })

  it('encodeRevision trims, like decodeRevision', () => {
    expect(encodeRevision(' abc \n').toString('utf8')).toBe('abc')
  })

  it('encodeRevision refuses what decodeRevision could not read back', () => {
    expect(() => encodeRevision('')).toThrow(RangeError)
    expect(() => encodeRevision('   ')).toThrow(RangeError)
    expect(() => encodeRevision('r'.repeat(MAX_REVISION_BYTES + 1))).toThrow(/over the 1024 byte limit/)
  })
})

describe('defaultTargetName', () => {
  const cases: Array<[string, number, string]> = [
    ['127.0.0.1', 4001, '127.0.0.1:4001'],
    ['web.internal', 80, 'web.internal:80'],
    ['::1', 4000, '[::1]:4000'],
    ['2001:db8::5', 443, '[2001:db8::5]:443'],
    ['[::1]', 4000, '[::1]:4000']
  ]

  it.each(cases)('%s + %d → %s', (host, port, name) => {
    expect(defaultTargetName(host, port)).toBe(name)
    expect(validateTargetName(name)).toBeUndefined()
  })

  it('gives a name that decodes as the bare integer form', () => {
    const decoded = decodeTarget(defaultTargetName('::1', 4000), text('3'))
    expect(decoded).toMatchObject({ ok: true, target: { origin: 'http://[::1]:4000' } })
  })

  it.each([-1, 65536, 1.5, Number.NaN])('refuses port %d', (port) => {
    expect(() => defaultTargetName('h', port)).toThrow(RangeError)
  })
})

describe('validateTargetName', () => {
  it.each(['h:1', 'web-1', '[::1]:4000', 'replica_ä', 'a'.repeat(255), '...', '.hidden', 'é'.repeat(255)])('accepts %j', (name) => {
    expect(validateTargetName(name)).toBeUndefined()
  })

  const rejects: Array<[string, RegExp]> = [
    ['', /empty/],
    ['/', /contains '\/'/],
    ['a/b', /contains '\/'/],
    ['.', /reserved/],
    ['..', /reserved/],
    ['a'.repeat(256), /longer than 255/],
    ['a b', /whitespace/],
    ['a\tb', /whitespace/],
    ['a\nb', /whitespace/],
    ['a\u0000b', /non-printable/],
    ['a\u007fb', /non-printable/],
    ['a\u0085b', /non-printable/],
    ['a\u00a0b', /whitespace/],
    ['a\u2028b', /whitespace/],
    ['a\ufeffb', /non-printable/],
    ['a\ue000b', /non-printable/],
    ['a\ufffeb', /non-printable/],
    // ZooKeeper refuses every surrogate, so even a well-formed emoji.
    ['a\u{1F600}b', /non-printable/]
  ]

  it.each(rejects)('rejects %j', (name, reason) => {
    expect(validateTargetName(name)).toMatch(reason)
  })
})
