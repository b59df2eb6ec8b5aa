import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'

import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createStaticServer } from '../../../src/replica/static-server.js'

const NAME = 'replica-test:4001'
// Outside files carry markers so a leak is detected whatever the status code says.
const OUTSIDE_MARKER = 'OUTSIDE-THE-SERVED-FOLDER'

let base: string
let site: string
let app: FastifyInstance

// base/
//   package.json, outside/secret.txt, outside/index.html   (must never be served)
//   site/                                                   (the served folder)
beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'zkproxy-static-'))
  site = path.join(base, 'site')
  const outside = path.join(base, 'outside')
  await mkdir(path.join(site, 'docs'), { recursive: true })
  await mkdir(path.join(site, 'empty'))
  await mkdir(path.join(site, 'trap'))
  await mkdir(outside)

  await writeFile(path.join(base, 'package.json'), JSON.stringify({ name: OUTSIDE_MARKER }))
  await writeFile(path.join(outside, 'secret.txt'), OUTSIDE_MARKER)
  await writeFile(path.join(outside, 'index.html'), `<p>${OUTSIDE_MARKER}</p>`)

  await writeFile(path.join(site, 'index.html'), '<!doctype html><title>home</title>')
  await writeFile(path.join(site, 'style.css'), 'body { color: red }')
  await writeFile(path.join(site, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>')
  await writeFile(path.join(site, 'app.js'), 'console.log(1)')
  await writeFile(path.join(site, 'data.json'), '{"a":1}')
  await writeFile(path.join(site, 'docs', 'index.html'), '<!doctype html><title>docs</title>')
  await writeFile(path.join(site, '.env'), 'SECRET=1')

  await symlink(path.join(outside, 'secret.txt'), path.join(site, 'leak.txt'))
  await symlink('../outside', path.join(site, 'leakdir'))
  await symlink(path.join(outside, 'index.html'), path.join(site, 'trap', 'index.html'))
  await symlink('style.css', path.join(site, 'alias.css'))

  app = createStaticServer({ dir: site, name: NAME, maxAgeSec: 120, logger: pino({ level: 'silent' }) })
  await app.listen({ host: '127.0.0.1', port: 0 })
})

afterAll(async () => {
  await app.close()
  await rm(base, { recursive: true, force: true })
})

describe('files', () => {
  const types: Array<[string, string]> = [
    ['/index.html', 'text/html; charset=utf-8'],
    ['/style.css', 'text/css; charset=utf-8'],
    ['/logo.svg', 'image/svg+xml'],
    ['/app.js', 'application/javascript; charset=utf-8'],
    ['/data.json', 'application/json; charset=utf-8']
  ]

  it.each(types)('%s is served as %s', async (url, type) => {
    const res = await app.inject({ url })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe(type)
  })

  it('sends validators, caching headers and x-served-by', async () => {
    const res = await app.inject({ url: '/style.css' })
    expect(res.body).toBe('body { color: red }')
    expect(res.headers['cache-control']).toBe('public, max-age=120')
    expect(res.headers.etag).toMatch(/^W\/".+"$/)
    expect(Date.parse(String(res.headers['last-modified']))).not.toBeNaN()
    expect(res.headers['content-length']).toBe('19')
    expect(res.headers['x-served-by']).toBe(NAME)
  })

  it('uses maxAgeSec for Cache-Control', async () => {
    const other = createStaticServer({ dir: site, name: 'x', maxAgeSec: 0, logger: pino({ level: 'silent' }) })
    try {
      const res = await other.inject({ url: '/style.css' })
      expect(res.headers['cache-control']).toBe('public, max-age=0')
    } finally {
      await other.close()
    }
  })

  it('serves index.html for / and for a folder with a trailing slash', async () => {
    const root = await app.inject({ url: '/' })
    expect(root.statusCode).toBe(200)
    expect(root.body).toContain('<title>home</title>')
    const docs = await app.inject({ url: '/docs/' })
    expect(docs.statusCode).toBe(200)
    expect(docs.body).toContain('<title>docs</title>')
  })

  it('redirects a folder without a trailing slash so relative links resolve', async () => {
    const res = await app.inject({ url: '/docs?x=1' })
    expect(res.statusCode).toBe(301)
    expect(res.headers.location).toBe('/docs/?x=1')
    expect(res.headers['x-served-by']).toBe(NAME)
  })

  it('follows a symlink that stays inside the folder', async () => {
    const res = await app.inject({ url: '/alias.css' })
    expect(res.statusCode).toBe(200)
    expect(res.body).toBe('body { color: red }')
  })

  it('answers HEAD with the headers and no body', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/style.css' })
    expect(res.statusCode).toBe(200)
    expect(res.body).toBe('')
    expect(res.headers['content-length']).toBe('19')
    expect(res.headers['content-type']).toBe('text/css; charset=utf-8')
    expect(res.headers.etag).toBeDefined()
    expect(res.headers['cache-control']).toBe('public, max-age=120')
    expect(res.headers['x-served-by']).toBe(NAME)
  })
})

describe('conditional requests', () => {
  it('answers If-None-Match with 304, x-served-by and no body', async () => {
    const first = await app.inject({ url: '/index.html' })
    const etag = String(first.headers.etag)
    const res = await app.inject({ url: '/index.html', headers: { 'if-none-match': etag } })
    expect(res.statusCode).toBe(304)
    expect(res.body).toBe('')
    expect(res.headers.etag).toBe(etag)
    expect(res.headers['cache-control']).toBe('public, max-age=120')
    expect(res.headers['x-served-by']).toBe(NAME)
  })

  it('answers If-Modified-Since with 304', async () => {
    const first = await app.inject({ url: '/index.html' })
    const res = await app.inject({ url: '/index.html', headers: { 'if-modified-since': String(first.headers['last-modified']) } })
    expect(res.statusCode).toBe(304)
    expect(res.headers['x-served-by']).toBe(NAME)
  })

  it('sends the file again for a stale ETag', async () => {
    const res = await app.inject({ url: '/index.html', headers: { 'if-none-match': 'W/"stale"' } })
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain('home')
  })
})

describe('not found', () => {
  it.each(['/missing.html', '/docs/missing', '/empty/', '/empty'])('%s is a small JSON 404 with x-served-by', async (url) => {
    const res = await app.inject({ url })
    // `/empty` first redirects to `/empty/`, which has no index file.
    const final = res.statusCode === 301 ? await app.inject({ url: String(res.headers.location) }) : res
    expect(final.statusCode).toBe(404)
    expect(final.json()).toStrictEqual({ error: 'not_found', message: 'Not Found' })
    expect(final.headers['x-served-by']).toBe(NAME)
  })

  it('does not serve dotfiles', async () => {
    const res = await app.inject({ url: '/.env' })
    expect(res.statusCode).toBe(404)
    expect(res.body).not.toContain('SECRET')
  })

  it('404s other methods too, with x-served-by', async () => {
    const res = await app.inject({ method: 'POST', url: '/index.html' })
    expect(res.statusCode).toBe(404)
    expect(res.headers['x-served-by']).toBe(NAME)
  })
})

describe('healthz', () => {
  it('answers 200 with status and name, never cached', async () => {
    const res = await app.inject({ url: '/healthz' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toStrictEqual({ status: 'ok', name: NAME })
    expect(res.headers['cache-control']).toBe('no-store')
    expect(res.headers['x-served-by']).toBe(NAME)
  })
})

describe('logging', () => {
  it('writes no per-request log lines', async () => {
    const records: Array<Record<string, unknown>> = []
    const logger = pino({ level: 'trace' }, { write: (line: string) => { records.push(JSON.parse(line) as Record<string, unknown>) } })
    const other = createStaticServer({ dir: site, name: 'x', maxAgeSec: 1, logger })
    try {
      await other.inject({ url: '/index.html' })
      await other.inject({ url: '/missing' })
      await other.inject({ url: '/healthz' })
      // fastify's request logs are the ones carrying a request id, `req` or `res`.
      expect(records.filter((r) => 'reqId' in r || 'req' in r || 'res' in r)).toStrictEqual([])
    } finally {
      await other.close()
    }
  })
})

describe('x-served-by with a non-ASCII name', () => {
  it('percent-encodes the header and keeps the name in /healthz', async () => {
    const other = createStaticServer({ dir: site, name: 'réplica-1', maxAgeSec: 1, logger: pino({ level: 'silent' }) })
    try {
      const res = await other.inject({ url: '/healthz' })
      expect(res.headers['x-served-by']).toBe('r%C3%A9plica-1')
      expect(res.json()).toMatchObject({ name: 'réplica-1' })
    } finally {
      await other.close()
    }
  })
})

describe('construction', () => {
  it('throws when the folder does not exist', () => {
    expect(() => createStaticServer({ dir: path.join(base, 'nope'), name: 'x', maxAgeSec: 1, logger: pino({ level: 'silent' }) }))
      .toThrow(/ENOENT/)
  })

  it('refuses a negative max-age', () => {
    expect(() => createStaticServer({ dir: site, name: 'x', maxAgeSec: -1, logger: pino({ level: 'silent' }) }))
      .toThrow(RangeError)
  })
})

interface RawResponse { status: number, headers: Map<string, string>, body: string }

/**
 * Sends `target` verbatim in the request line: an HTTP client library would normalize
 * `/../` and friends before they ever reached the server, hiding the bug under test.
 */
async function rawGet (target: string): Promise<RawResponse> {
  const { port } = app.server.address() as AddressInfo
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('end', () => { resolve(Buffer.concat(chunks).toString('latin1')) })
    socket.on('error', reject)
    socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
  })
  const split = raw.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = raw.slice(0, split).split('\r\n')
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: raw.slice(split + 4) }
}

describe('path traversal over a real socket', () => {
  const attempts = [
    '/../package.json',
    '/%2e%2e/package.json',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/..%2fpackage.json',
    '/..%2f..%2fetc/passwd',
    '/..%5cpackage.json',
    '/docs/../../package.json',
    '/%252e%252e/package.json',
    '/a/%00',
    '/index.html%00.css',
    '/%zz',
    '//etc/passwd',
    '///etc/passwd',
    '/%2fetc/passwd',
    '/leak.txt',
    '/leakdir/secret.txt',
    '/leakdir/',
    '/trap/',
    '/trap/index.html'
  ]

  it.each(attempts)('GET %s gets 400 or 404 and nothing from outside', async (target) => {
    const res = await rawGet(target)
    expect([400, 404]).toContain(res.status)
    expect(res.body).not.toContain(OUTSIDE_MARKER)
    expect(res.body).not.toMatch(/root:.*:0:0:/)
    expect(res.headers.get('x-served-by')).toBe(NAME)
  })

  it('an absolute-form request URI serves only from the folder', async () => {
    const res = await rawGet('http://127.0.0.1/etc/passwd')
    expect([400, 404]).toContain(res.status)
    expect(res.body).not.toMatch(/root:.*:0:0:/)
  })

  it('still serves files normally over the socket', async () => {
    const res = await rawGet('/style.css')
    expect(res.status).toBe(200)
    expect(res.body).toBe('body { color: red }')
    expect(res.headers.get('x-served-by')).toBe(NAME)
  })

  it('answers a malformed request with 400 and x-served-by', async () => {
    const res = await rawGet('/ bad path')
    expect(res.status).toBe(400)
    expect(res.headers.get('x-served-by')).toBe(NAME)
  })
})
