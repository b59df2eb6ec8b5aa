// The response cache through the real proxy runtime, against a real ZooKeeper and a real
// origin that counts requests per URL. The origin's response is described by the query
// (`?cc=max-age=60&h=etag:"v1"&status=404`), so each test reads as the rule it checks.
// Rules: RFC 9111 §3 (storing), §4 (reuse, Vary, 304s, invalidation), §5.2 (Cache-Control),
// RFC 5861 (stale-if-error), and docs/cache.md.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import pino, { type Logger } from 'pino'
import { useZooKeeper } from '../support/suite.js'
import { ms, until, untilValue } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend, type Backend, type Handler } from '../support/backends.js'
import { readCount, registerTarget, startTestProxy, stopAllProxies } from '../support/proxy.js'
import { expireSession, type ZkSession } from '../../src/zk/index.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

const zkCluster = useZooKeeper()

type Headers = Record<string, string | string[] | undefined>
interface Reply { status: number, body: string, headers: Headers }

async function send (url: string, opts: { method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'PATCH', headers?: Record<string, string>, body?: string } = {}): Promise<Reply> {
  const r = await request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, ...(opts.body === undefined ? {} : { body: opts.body }) })
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers }
}

/**
 * The origin: `cc` → Cache-Control, `h=name:value` → any header (repeatable), `status`,
 * `size` → a body of that many bytes, `chunked=1` → no Content-Length, `echo=name` → the
 * body names the request's value of that header. A request header `x-want-status` overrides
 * the status (for unsafe requests to the very URL of a stored GET). The default body is `<url> #<n>`, n
 * counting the requests for that URL, so a test can tell which origin response it got.
 */
/** Holds the origin's first answer (released by calling `held[0]`); later requests are answered at once. */
function holdFirst (handler: Handler): { handler: Handler, held: Array<() => void> } {
  const held: Array<() => void> = []
  return {
    held,
    handler: (req, res, body) => {
      if (held.length === 0) held.push(() => { handler(req, res, body) })
      else handler(req, res, body)
    }
  }
}

function origin (): Handler {
  const counts = new Map<string, number>()
  return (req, res) => {
    const url = req.url ?? '/'
    const n = (counts.get(url) ?? 0) + 1
    counts.set(url, n)
    const q = new URL(url, 'http://origin').searchParams
    const cc = q.get('cc')
    if (cc !== null) res.setHeader('cache-control', cc)
    for (const h of q.getAll('h')) {
      const i = h.indexOf(':')
      res.setHeader(h.slice(0, i), h.slice(i + 1))
    }
    res.statusCode = Number(req.headers['x-want-status'] ?? q.get('status') ?? 200)
    const echo = q.get('echo')
    let body = q.has('size') ? 'x'.repeat(Number(q.get('size'))) : `${url} #${n}`
    if (echo !== null) body += ` ${echo}=${String(req.headers[echo] ?? '(none)')}`
    if (req.method === 'HEAD') { res.end(); return }
    if (q.get('chunked') === '1') {
      const half = Math.floor(body.length / 2)
      res.write(body.slice(0, half))
      res.end(body.slice(half))
      return
    }
    res.setHeader('content-length', Buffer.byteLength(body))
    res.end(body)
  }
}

/** Requests the origin saw for `path`, written as the test writes it (the client percent-encodes). */
function requests (backend: Backend, path: string): number {
  const u = new URL(path, 'http://origin')
  return backend.hits(u.pathname + u.search)
}

interface Setup {
  proxy: ProxyRuntime
  backend: Backend
  session: ZkSession
  targetsPath: string
  agePath: string
  url: (path: string) => string
}

async function setup (args: string[] = [], opts: { handler?: Handler, logger?: Logger, revision?: string } = {}): Promise<Setup> {
  const targetsPath = uniquePath('targets')
  const agePath = uniquePath('cacheAge')
  const backend = await startBackend('a', opts.handler ?? origin())
  const session = await connectSession(zkCluster().connectString, { sessionTimeoutMs: 10_000 })
  await registerTarget(session, targetsPath, 'a', backend.url)
  if (opts.revision !== undefined) await session.create(agePath, Buffer.from(opts.revision))
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', targetsPath, '--cache-age-path', agePath, ...args], opts.logger)
  await until(() => proxy.router.targets.length === 1, { message: 'proxy sees the target' })
  return { proxy, backend, session, targetsPath, agePath, url: (path) => `${proxy.url}${path}` }
}

/** A pino logger whose lines are kept as parsed objects (pino's sink() pattern). */
function capturingLogger (): { logger: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { logger: pino({ level: 'debug' }, sink), lines }
}

const FRESH = '?cc=max-age=60'
/** The access log is a line written at the end of a request, never another path: each rule holds with it on and off. */
const LOG_OFF_AND_ON: Array<[string, string[]]> = [['access log off', []], ['access log on', ['--access-log']]]

for (const [name, extra] of LOG_OFF_AND_ON) {
  describe(`hits and misses (${name})`, () => {
    it('stores a fresh response: MISS then HIT with the same body and an Age, one origin request', async () => {
      const { url, backend } = await setup([...extra])
      const first = await send(url(`/page${FRESH}`))
      expect(first.status).toBe(200)
      expect(first.headers['x-cache']).toBe('MISS')
      const second = await send(url(`/page${FRESH}`))
      expect(second).toMatchObject({ status: 200, body: first.body })
      expect(second.headers['x-cache']).toBe('HIT')
      expect(Number(second.headers.age)).toBeGreaterThanOrEqual(0)
      expect(second.headers['content-length']).toBe(String(Buffer.byteLength(first.body)))
      expect(second.headers['x-served-by']).toBe('a')
      expect(requests(backend, `/page${FRESH}`)).toBe(1)
    })

    it('Age adds the time spent here to the upstream Age (RFC 9111 §4.2.3)', async () => {
      const { url } = await setup([...extra])
      const path = '/aged?cc=max-age=600&h=age:30'
      expect((await send(url(path))).headers.age).toBe('30')
      const hit = await send(url(path))
      expect(hit.headers['x-cache']).toBe('HIT')
      expect(Number(hit.headers.age)).toBeGreaterThanOrEqual(30)
      expect(Number(hit.headers.age)).toBeLessThanOrEqual(32)
    })

    it('answers HEAD from a stored GET without a body; a HEAD miss is not stored', async () => {
      const { url, backend } = await setup([...extra])
      const get = await send(url(`/h${FRESH}`))
      const head = await send(url(`/h${FRESH}`), { method: 'HEAD' })
      expect(head).toMatchObject({ status: 200, body: '' })
      expect(head.headers['x-cache']).toBe('HIT')
      expect(head.headers['content-length']).toBe(String(Buffer.byteLength(get.body)))
      expect(requests(backend, `/h${FRESH}`)).toBe(1)

      const headFirst = await send(url(`/h2${FRESH}`), { method: 'HEAD' })
      expect(headFirst.headers['x-cache']).toBe('MISS')
      expect((await send(url(`/h2${FRESH}`))).headers['x-cache']).toBe('MISS')
      expect((await send(url(`/h2${FRESH}`))).headers['x-cache']).toBe('HIT')
      expect(requests(backend, `/h2${FRESH}`)).toBe(2)
    })

    it('answers matching conditional requests with 304 from the stored response (RFC 9111 §4.3.2)', async () => {
      const { url, backend } = await setup([...extra])
      const path = `/c${FRESH}&h=etag:"v1"&h=last-modified:Tue, 01 Oct 2024 10:00:00 GMT`
      await send(url(path))
      const inm = await send(url(path), { headers: { 'if-none-match': 'W/"v0", "v1"' } })
      expect(inm).toMatchObject({ status: 304, body: '' })
      expect(inm.headers).toMatchObject({ etag: '"v1"', 'x-cache': 'HIT', 'cache-control': 'max-age=60' })
      expect(inm.headers.age).toBeDefined()
      const other = await send(url(path), { headers: { 'if-none-match': '"v2"' } })
      expect(other.status).toBe(200)
      expect(other.headers['x-cache']).toBe('HIT')
      const ims = await send(url(path), { headers: { 'if-modified-since': 'Wed, 02 Oct 2024 10:00:00 GMT' } })
      expect(ims.status).toBe(304)
      const older = await send(url(path), { headers: { 'if-modified-since': 'Mon, 30 Sep 2024 10:00:00 GMT' } })
      expect(older.status).toBe(200)
      const head = await send(url(path), { method: 'HEAD', headers: { 'if-none-match': '"v1"' } })
      expect(head.status).toBe(304)
      expect(requests(backend, path)).toBe(1)
    })

    it('keys on the downstream Host: another Host is another entry', async () => {
      const { url, backend } = await setup([...extra])
      const path = `/host${FRESH}&echo=x-forwarded-host`
      const a = await send(url(path), { headers: { host: 'a.example' } })
      const b = await send(url(path), { headers: { host: 'b.example' } })
      expect(a.body).toContain('x-forwarded-host=a.example')
      expect(b.body).toContain('x-forwarded-host=b.example')
      expect(b.headers['x-cache']).toBe('MISS')
      expect((await send(url(path), { headers: { host: 'A.example' } })).body).toBe(a.body)
      expect(requests(backend, path)).toBe(2)
    })

    it('unkeyed headers cannot poison an entry: a client X-Forwarded-Host never reaches the origin, X-Original-URL is not stored', async () => {
      const { url, backend } = await setup([...extra])
      const path = `/poison${FRESH}&echo=x-forwarded-host`
      const evil = await send(url(path), { headers: { host: 'site.example', 'x-forwarded-host': 'evil.example' } })
      expect(evil.body).toContain('x-forwarded-host=site.example')
      const victim = await send(url(path), { headers: { host: 'site.example' } })
      expect(victim.headers['x-cache']).toBe('HIT')
      expect(victim.body).not.toContain('evil')

      const rewrite = `/rewrite${FRESH}`
      await send(url(rewrite), { headers: { 'x-original-url': '/admin' } })
      expect((await send(url(rewrite))).headers['x-cache']).toBe('MISS')
      expect(requests(backend, rewrite)).toBe(2)
    })
  })

  describe(`what is not stored (${name})`, () => {
    it.each([
      ['no-store', '/ns?cc=no-store'],
      ['private', '/pv?cc=private, max-age=60'],
      ['no-cache (stored copies could never be served without revalidation)', '/nc?cc=no-cache, max-age=60'],
      ['Set-Cookie', `/sc${FRESH}&h=set-cookie:session=1`],
      ['Vary: *', `/vs${FRESH}&h=vary:*`],
      ['no explicit freshness and no Last-Modified', '/plain'],
      ['a status that is not stored', `/st${FRESH}&status=302&h=location:/x`]
    ])('%s', async (_name, path) => {
      const { url, backend } = await setup([...extra])
      const first = await send(url(path))
      const second = await send(url(path))
      expect(first.headers['x-cache']).toBe('MISS')
      expect(second.headers['x-cache']).toBe('MISS')
      expect(second.body).not.toBe(first.body)
      expect(requests(backend, path)).toBe(2)
    })

    it('a response to a request with Authorization only when it says public or s-maxage (RFC 9111 §3.5)', async () => {
      const { url, backend } = await setup([...extra])
      const auth = { authorization: 'Bearer secret' }
      await send(url(`/auth${FRESH}`), { headers: auth })
      expect((await send(url(`/auth${FRESH}`))).headers['x-cache']).toBe('MISS')
      expect(requests(backend, `/auth${FRESH}`)).toBe(2)

      const pub = '/authpub?cc=public, max-age=60'
      await send(url(pub), { headers: auth })
      expect((await send(url(pub))).headers['x-cache']).toBe('HIT')
      expect(requests(backend, pub)).toBe(1)
    })

    it('a 404 with max-age is stored; heuristic freshness from Last-Modified is used', async () => {
      const { url, backend } = await setup([...extra])
      await send(url('/gone?cc=max-age=60&status=404'))
      expect((await send(url('/gone?cc=max-age=60&status=404'))).headers['x-cache']).toBe('HIT')
      const lm = `/lm?h=last-modified:${new Date(Date.now() - 86_400_000).toUTCString()}`
      await send(url(lm))
      expect((await send(url(lm))).headers['x-cache']).toBe('HIT')
      expect(backend.hits()).toBe(2)
    })

    it('objects over --cache-max-object-bytes stream through whole and unstored, with or without Content-Length', async () => {
      const { url, backend } = await setup([...extra, '--cache-max-object-bytes', '1000'])
      for (const path of [`/big${FRESH}&size=50000`, `/bigchunked${FRESH}&size=50000&chunked=1`]) {
        const a = await send(url(path))
        const b = await send(url(path))
        expect(a.body.length).toBe(50_000)
        expect(b.body.length).toBe(50_000)
        expect(b.headers['x-cache']).toBe('MISS')
        expect(requests(backend, path)).toBe(2)
      }
      const small = `/small${FRESH}&size=900&chunked=1`
      await send(url(small))
      expect((await send(url(small))).headers['x-cache']).toBe('HIT')
    })

    it('--cache-ttl 0 turns the cache off', async () => {
      const { url, backend, proxy } = await setup([...extra, '--cache-ttl', '0'])
      expect(proxy.cache).toBeUndefined()
      const a = await send(url(`/off${FRESH}`))
      const b = await send(url(`/off${FRESH}`))
      expect(a.headers['x-cache']).toBeUndefined()
      expect(b.body).not.toBe(a.body)
      expect(requests(backend, `/off${FRESH}`)).toBe(2)
    })
  })

  describe(`variants, lifetime, bounds (${name})`, () => {
    it('keeps one variant per value of the headers named in Vary (RFC 9111 §4.1)', async () => {
      const { url, backend } = await setup([...extra])
      const path = `/v${FRESH}&h=vary:accept-encoding&echo=accept-encoding`
      const gzip = await send(url(path), { headers: { 'accept-encoding': 'gzip' } })
      const br = await send(url(path), { headers: { 'accept-encoding': 'br' } })
      const none = await send(url(path))
      expect(gzip.body).toContain('accept-encoding=gzip')
      expect(br.body).toContain('accept-encoding=br')
      expect(none.body).toContain('accept-encoding=(none)')
      expect(br.headers['x-cache']).toBe('MISS')
      const again = await send(url(path), { headers: { 'accept-encoding': 'gzip' } })
      expect(again).toMatchObject({ body: gzip.body })
      expect(again.headers['x-cache']).toBe('HIT')
      expect((await send(url(path), { headers: { 'accept-encoding': 'br' } })).body).toBe(br.body)
      expect((await send(url(path))).body).toBe(none.body)
      expect(requests(backend, path)).toBe(3)
    })

    it('a stored response expires after max-age, and --cache-ttl caps a longer max-age', async () => {
      for (const [args, path] of [[[], '/exp?cc=max-age=1'], [['--cache-ttl', '1'], '/cap?cc=max-age=3600']] as const) {
        const { url, backend } = await setup([...extra, ...args])
        const storedAt = Date.now()
        await send(url(path))
        let hits = 0
        await until(async () => {
          const r = await send(url(path))
          if (r.headers['x-cache'] === 'HIT') hits++
          return r.headers['x-cache'] === 'MISS'
        }, { timeoutMs: ms(5000), message: 'expiry' })
        expect(Date.now() - storedAt).toBeGreaterThanOrEqual(1000)
        expect(hits).toBeGreaterThan(0)
        expect(requests(backend, path)).toBe(2)
        await stopAllProxies()
      }
    })

    it('evicts the least recently used entry past --cache-max-entries', async () => {
      const { url, backend, proxy } = await setup([...extra, '--cache-max-entries', '2'])
      const p = (n: number): string => `/lru${n}${FRESH}`
      await send(url(p(1)))
      await send(url(p(2)))
      expect((await send(url(p(1)))).headers['x-cache']).toBe('HIT') // 1 is now more recent than 2
      await send(url(p(3))) // evicts 2
      expect((await send(url(p(1)))).headers['x-cache']).toBe('HIT')
      expect((await send(url(p(3)))).headers['x-cache']).toBe('HIT')
      expect((await send(url(p(2)))).headers['x-cache']).toBe('MISS')
      expect(requests(backend, p(2))).toBe(2)
      expect(proxy.cache?.stats()).toMatchObject({ entries: 2 })
      expect(proxy.cache?.stats().evictions).toBeGreaterThanOrEqual(2)
    })

    it('a request with Cache-Control: no-cache (or Pragma: no-cache) goes to the origin and refreshes the entry', async () => {
      const { url, backend } = await setup([...extra])
      const path = `/rl${FRESH}`
      const first = await send(url(path))
      const reload = await send(url(path), { headers: { 'cache-control': 'no-cache' } })
      expect(reload.headers['x-cache']).toBe('MISS')
      expect(reload.body).not.toBe(first.body)
      const after = await send(url(path))
      expect(after).toMatchObject({ body: reload.body })
      expect(after.headers['x-cache']).toBe('HIT')
      expect((await send(url(path), { headers: { pragma: 'no-cache' } })).headers['x-cache']).toBe('MISS')
      // no-store: forwarded, and its response is not stored (the previous entry stays).
      const noStore = await send(url(path), { headers: { 'cache-control': 'no-store' } })
      expect(noStore.headers['x-cache']).toBe('MISS')
      expect((await send(url(path))).body).not.toBe(noStore.body)
      expect(requests(backend, path)).toBe(4)
      // A browser reload's max-age=0 is not a bypass: a client cannot punch through to the origin.
      expect((await send(url(path), { headers: { 'cache-control': 'max-age=0' } })).headers['x-cache']).toBe('HIT')
      expect(requests(backend, path)).toBe(4)
    })
  })
}

describe('the access log changes no answer', () => {
  it('a GET miss is passed on and stored the same way with the access log on and off', async () => {
    // Repeated fields, a Connection-named field, an upstream X-Cache and Via: every header rule.
    const handler: Handler = (_req, res) => {
      // setHeader: the test backend already set a field, and writeHead would then merge a
      // raw list through setHeader, keeping one line per name.
      res.setHeader('Link', ['</a.css>; rel=preload', '</b.js>; rel=preload'])
      for (const [name, value] of [['Cache-Control', 'public, max-age=60'], ['Connection', 'x-hop'], ['X-Hop', 'secret'],
        ['X-Cache', 'HIT from upstream'], ['Via', '1.1 upstream'], ['Content-Length', '4']] as const) res.setHeader(name, value)
      res.end('body')
    }
    const seen = async (args: string[]): Promise<Reply[]> => {
      const { url } = await setup(args, { handler })
      return [await send(url('/same')), await send(url('/same'))]
    }
    const comparable = (r: Reply): Reply => {
      const { date: _d, age: _a, connection: _c, 'keep-alive': _k, ...headers } = r.headers
      return { ...r, headers }
    }
    const quiet = (await seen([])).map(comparable)
    const logged = (await seen(['--access-log'])).map(comparable)
    expect(quiet).toEqual(logged)
    expect(quiet[0]!.headers).toMatchObject({ 'x-cache': 'MISS', via: '1.1 upstream, 1.1 zkproxy', link: ['</a.css>; rel=preload', '</b.js>; rel=preload'] })
    expect(quiet[0]!.headers['x-hop']).toBeUndefined()
    expect(quiet[1]!.headers['x-cache']).toBe('HIT')
  })
})

for (const [name, extra] of LOG_OFF_AND_ON) {
  describe(`coalescing (${name})`, () => {
    it('a burst of 100 concurrent misses for one URL makes exactly one origin request', async () => {
      const held: Array<() => void> = []
      const handler = origin()
      const { url, backend, proxy } = await setup([...extra], { handler: (req, res, body) => { held.push(() => { handler(req, res, body) }) } })
      const path = `/burst${FRESH}`
      const burst = Array.from({ length: 100 }, async () => await send(url(path)))
      // Hold the origin's answer until all 99 others are waiting on the first: no timing luck.
      await until(() => held.length === 1 && proxy.cache?.stats().coalesced === 99, { message: '99 waiters' })
      held[0]!()
      const replies = await Promise.all(burst)
      expect(requests(backend, path)).toBe(1)
      expect(new Set(replies.map(r => r.body)).size).toBe(1)
      expect(replies.every(r => r.status === 200)).toBe(true)
      expect(replies.filter(r => r.headers['x-cache'] === 'MISS')).toHaveLength(1)
    })

    it('waiters send their own requests when the shared response is not storable', async () => {
      const { handler, held } = holdFirst(origin())
      const { url, backend, proxy } = await setup([...extra], { handler })
      const path = '/mine?cc=private, max-age=60'
      const burst = Array.from({ length: 10 }, async () => await send(url(path)))
      await until(() => held.length === 1 && proxy.cache?.stats().coalesced === 9, { message: '9 waiters' })
      held[0]!()
      const replies = await Promise.all(burst)
      expect(requests(backend, path)).toBe(10)
      expect(new Set(replies.map(r => r.body)).size).toBe(10) // nobody got someone else's private response
    })
  })

  describe(`coalescing, the edges (${name})`, () => {
    it('waiters whose Vary differs from the first response coalesce again per variant', async () => {
      const { handler, held } = holdFirst(origin())
      const { url, backend, proxy } = await setup([...extra], { handler })
      const path = `/enc${FRESH}&h=vary:accept-encoding&echo=accept-encoding`
      const burst = Array.from({ length: 10 }, async (_, i) => await send(url(path), { headers: { 'accept-encoding': i % 2 === 0 ? 'gzip' : 'br' } }))
      await until(() => held.length === 1 && proxy.cache?.stats().coalesced === 9, { message: '9 waiters' })
      held[0]!()
      const replies = await Promise.all(burst)
      replies.forEach((r, i) => { expect(r.body).toContain(`accept-encoding=${i % 2 === 0 ? 'gzip' : 'br'}`) })
      expect(requests(backend, path)).toBe(2)
    })

    it('a leader whose client goes away does not strand the waiters', async () => {
      const { handler, held } = holdFirst(origin())
      const { url, backend, proxy } = await setup([...extra], { handler })
      const path = `/gone-leader${FRESH}`
      const abort = new AbortController()
      const leader = request(url(path), { signal: abort.signal })
      await until(() => held.length === 1, { message: 'leader upstream' })
      const waiters = Array.from({ length: 5 }, async () => await send(url(path)))
      await until(() => proxy.cache?.stats().coalesced === 5, { message: '5 waiters' })
      abort.abort()
      await expect(leader).rejects.toThrow()
      const replies = await Promise.all(waiters)
      expect(replies.every(r => r.status === 200)).toBe(true)
      expect(requests(backend, path)).toBe(6) // the lost leader + each waiter on its own
      held[0]!()
    })

    it('a response requested before a revision change is passed on but not stored', async () => {
      const { handler, held } = holdFirst(origin())
      const { url, proxy, session, agePath } = await setup([...extra], { revision: 'old', handler })
      const path = `/race${FRESH}`
      const inFlight = send(url(path))
      await until(() => held.length === 1, { message: 'miss upstream' })
      await session.set(agePath, Buffer.from('new'), -1)
      await until(() => proxy.cache?.stats().clears === 1, { message: 'cleared' })
      held[0]!()
      const old = await inFlight
      expect(old.status).toBe(200)
      expect(old.headers['x-cache']).toBe('MISS')
      expect((await send(url(path))).headers['x-cache']).toBe('MISS')
      expect((await send(url(path))).headers['x-cache']).toBe('HIT')
    })

    it('a URL whose response was not storable is remembered: its concurrent misses go upstream at once, until it is storable again', async () => {
      let cacheable = false
      let holding = false
      const held: Array<() => void> = []
      const { url, backend, proxy } = await setup([...extra], {
        handler: (req, res) => {
          const answer = (): void => {
            res.setHeader('cache-control', cacheable ? 'max-age=60' : 'no-store')
            res.end(`#${backend.hits('/dyn')}`)
          }
          if (holding) held.push(answer)
          else answer()
        }
      })
      expect((await send(url('/dyn'))).headers['x-cache']).toBe('MISS')
      await until(() => proxy.cache?.stats().uncacheableKeys === 1, { message: 'remembered as not storable' })
      // Five at once, all held at the origin: none of them waits for another (no coalescing).
      holding = true
      const burst = Array.from({ length: 5 }, async () => await send(url('/dyn')))
      await until(() => held.length === 5, { message: 'all five reached the origin' })
      expect(proxy.cache?.stats().coalesced).toBe(0)
      holding = false
      for (const release of held) release()
      expect((await Promise.all(burst)).every(r => r.status === 200 && r.headers['x-cache'] === 'MISS')).toBe(true)
      // The URL becomes cacheable: the next response is stored and the memory ends.
      cacheable = true
      expect((await send(url('/dyn'))).headers['x-cache']).toBe('MISS')
      expect(proxy.cache?.stats().uncacheableKeys).toBe(0)
      expect((await send(url('/dyn'))).headers['x-cache']).toBe('HIT')
      expect(requests(backend, '/dyn')).toBe(7)
    })

    it('answers shaped by the request (a 304 to a conditional miss) and responses requested before a clear are not remembered', async () => {
      let holdNext = false
      const held: Array<() => void> = []
      const { url, proxy, session, agePath } = await setup([...extra], {
        revision: 'r1',
        handler: (req, res) => {
          if (req.url === '/cond') {
            res.setHeader('etag', '"v1"')
            res.setHeader('cache-control', 'max-age=60')
            if (req.headers['if-none-match'] === '"v1"') res.statusCode = 304
            res.end(res.statusCode === 304 ? undefined : 'v1')
            return
          }
          const answer = (): void => { res.setHeader('cache-control', 'no-store'); res.end('old') }
          if (holdNext) held.push(answer)
          else answer()
        }
      })
      expect((await send(url('/cond'), { headers: { 'if-none-match': '"v1"' } })).status).toBe(304)
      expect(proxy.cache?.stats().uncacheableKeys).toBe(0)
      // A no-store answer to a request sent before the revision changed: old content's verdict.
      holdNext = true
      const before = send(url('/old'))
      await until(() => held.length === 1, { message: 'held at the origin' })
      await session.set(agePath, Buffer.from('r2'), -1)
      await until(() => proxy.cache?.stats().clears === 1, { message: 'cleared' })
      held[0]!()
      expect((await before).body).toBe('old')
      expect(proxy.cache?.stats().uncacheableKeys).toBe(0)
    })

    it('stores a field named like an Object property (constructor) as sent', async () => {
      const { url } = await setup([...extra], {
        handler: (_req, res) => {
          res.setHeader('cache-control', 'max-age=60')
          res.setHeader('constructor', 'x')
          res.end('ok')
        }
      })
      const miss = await send(url('/proto'))
      const hit = await send(url('/proto'))
      expect(hit.headers['x-cache']).toBe('HIT')
      for (const r of [miss, hit]) expect(r.headers.constructor).toBe('x')
    })

    it('an upstream 5xx does not stop coalescing for its URL', async () => {
      let failing = true
      const { handler, held } = holdFirst((_req, res) => {
        res.statusCode = failing ? 503 : 200
        res.setHeader('cache-control', 'max-age=60')
        res.end(failing ? 'down' : 'up')
      })
      const { url, backend, proxy } = await setup([...extra], { handler })
      // The first answer is held: the other four wait for it, then fetch on their own (503 is not stored).
      const outage = Array.from({ length: 5 }, async () => await send(url('/busy')))
      await until(() => held.length === 1 && proxy.cache?.stats().coalesced === 4, { message: '4 waiters' })
      held[0]!()
      expect((await Promise.all(outage)).map(r => r.status)).toEqual([503, 503, 503, 503, 503])
      expect(proxy.cache?.stats().uncacheableKeys).toBe(0)
      failing = false
      expect((await send(url('/busy'))).body).toBe('up')
      expect(requests(backend, '/busy')).toBe(6)
    })
  })
}

describe('a failure after a head, with the access log on and off', () => {
  it('a target failing after its head, before any body byte: the stale copy is served, access log on or off', async () => {
    let failing = false
    const handler: Handler = (_req, res) => {
      if (!failing) {
        res.setHeader('cache-control', 'max-age=1')
        res.end('stored')
        return
      }
      // The head goes out, then the connection is cut before any body byte.
      res.writeHead(200, { 'content-length': '10' })
      res.flushHeaders()
      setImmediate(() => { res.socket?.destroy() })
    }
    const answers: Reply[] = []
    for (const extra of [[], ['--access-log']]) {
      const { url } = await setup([...extra, '--stale-if-error', '60'], { handler })
      failing = false
      await send(url('/cut'))
      failing = true
      answers.push(await untilValue(async () => {
        const r = await send(url('/cut'))
        return r.headers['x-cache'] === 'HIT' ? undefined : r
      }, { timeoutMs: ms(5000), message: 'entry expired' }))
    }
    // Both times the failed target's head was held back: the client never saw it.
    expect(answers.map(r => [r.status, r.headers['x-cache'], r.body])).toEqual([[200, 'STALE', 'stored'], [200, 'STALE', 'stored']])
  })
})

describe('failover after a head, with the cache on', () => {
  it('a miss settled by its first target\'s head stores nothing from the target it fails over to', async () => {
    // Whichever target gets the first GET sends a no-store head and cuts the connection before
    // any body byte: the miss is settled (not storable) and fails over to the other target,
    // whose storable answer is held while a POST invalidates the URL.
    let gets = 0
    const held: Array<() => void> = []
    const handler: Handler = (req, res) => {
      if (req.method === 'POST') { res.end('posted'); return }
      gets++
      if (gets === 1) {
        res.writeHead(200, { 'cache-control': 'no-store', 'content-length': '10' })
        res.flushHeaders()
        setImmediate(() => { res.socket?.destroy() })
        return
      }
      const n = gets
      const answer = (): void => { res.setHeader('cache-control', 'max-age=60'); res.end(`answer ${n}`) }
      if (n === 2) held.push(answer)
      else answer()
    }
    const { url, session, targetsPath, proxy } = await setup([], { handler })
    const second = await startBackend('b', handler)
    await registerTarget(session, targetsPath, 'b', second.url)
    await until(() => proxy.router.targets.length === 2, { message: 'two targets' })
    const miss = send(url('/flaky'))
    await until(() => held.length === 1, { message: 'failed over, answer held' })
    expect((await send(url('/flaky'), { method: 'POST', body: 'x' })).status).toBe(200)
    held[0]!()
    expect((await miss).body).toBe('answer 2')
    // Not stored: the POST invalidated the URL while that answer was on its way.
    const next = await send(url('/flaky'))
    expect(next).toMatchObject({ body: 'answer 3', headers: { 'x-cache': 'MISS' } })
  })
})

describe('unsafe methods (RFC 9111 §4.4)', () => {
  it('POST passes through untouched and its success invalidates the stored GET', async () => {
    const { url, backend } = await setup()
    const path = `/doc${FRESH}`
    await send(url(path))
    expect((await send(url(path))).headers['x-cache']).toBe('HIT')
    const post = await send(url(path), { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } })
    expect(post.status).toBe(200)
    expect(post.headers['x-cache']).toBeUndefined()
    expect(backend.seen.at(-1)).toMatchObject({ method: 'POST', url: path })
    expect(backend.seen.at(-1)?.body.toString()).toBe('payload')
    const after = await send(url(path))
    expect(after.headers['x-cache']).toBe('MISS')
    expect(backend.seen.filter(s => s.method === 'GET' && s.url === path)).toHaveLength(2)
  })

  it('a GET answered after a POST to its URL succeeded is passed on but not stored', async () => {
    const { handler, held } = holdFirst(origin())
    const { url } = await setup([], { handler })
    const path = `/write-race${FRESH}`
    const inFlight = send(url(path))
    await until(() => held.length === 1, { message: 'GET upstream' })
    expect((await send(url(path), { method: 'POST', body: 'new' })).status).toBe(200)
    held[0]!()
    expect((await inFlight).headers['x-cache']).toBe('MISS')
    expect((await send(url(path))).headers['x-cache']).toBe('MISS')
    expect((await send(url(path))).headers['x-cache']).toBe('HIT')
  })

  it('invalidates Location and Content-Location on the same host, and not after an error response', async () => {
    const { url } = await setup()
    const target = `/item${FRESH}`
    await send(url(target))
    await send(url('/items?h=location:' + encodeURIComponent(target)), { method: 'PUT', body: 'x' })
    expect((await send(url(target))).headers['x-cache']).toBe('MISS')
    const described = `/described${FRESH}`
    await send(url(described))
    await send(url('/forms?h=content-location:' + encodeURIComponent(described)), { method: 'POST', body: 'x' })
    expect((await send(url(described))).headers['x-cache']).toBe('MISS')
    // Another host's URL is never touched (RFC 9111 §4.4).
    const foreign = `/foreign${FRESH}`
    await send(url(foreign))
    await send(url('/forms?h=location:' + encodeURIComponent(`http://elsewhere.example${foreign}`)), { method: 'POST', body: 'x' })
    expect((await send(url(foreign))).headers['x-cache']).toBe('HIT')

    const kept = `/kept${FRESH}`
    await send(url(kept))
    expect((await send(url(kept), { method: 'DELETE', headers: { 'x-want-status': '500' } })).status).toBe(500)
    expect((await send(url(kept), { method: 'PATCH', body: 'x', headers: { 'x-want-status': '404' } })).status).toBe(404)
    expect((await send(url(kept))).headers['x-cache']).toBe('HIT')
    expect((await send(url(kept), { method: 'DELETE' })).status).toBe(200)
    expect((await send(url(kept))).headers['x-cache']).toBe('MISS')
  })
})

describe('ZooKeeper and the cache', () => {
  it('hits never reach a backend nor change a count in ZooKeeper', async () => {
    const { url, backend, session, targetsPath } = await setup(['--count-flush-ms', '20'])
    await send(url(`/count${FRESH}`))
    await until(async () => (await readCount(session, `${targetsPath}/a`)) === 1, { message: 'miss counted' })
    for (let i = 0; i < 50; i++) expect((await send(url(`/count${FRESH}`))).headers['x-cache']).toBe('HIT')
    // A second miss is flushed after the hits: the count is 2, not 52.
    await send(url(`/other${FRESH}`))
    await until(async () => (await readCount(session, `${targetsPath}/a`)) === 2, { message: 'second miss counted' })
    expect(backend.hits()).toBe(2)
  })

  it('/cacheAge rewritten 20 times rapidly clears the cache and the last revision is the one kept', async () => {
    const { logger, lines } = capturingLogger()
    const { url, session, agePath, proxy } = await setup([], { logger, revision: 'r0' })
    await until(() => lines.some(l => l['path'] === agePath && l['revision'] === 'r0'), { message: 'first read' })
    await send(url(`/rev${FRESH}`))
    expect((await send(url(`/rev${FRESH}`))).headers['x-cache']).toBe('HIT')
    for (let i = 1; i <= 20; i++) await session.set(agePath, Buffer.from(`r${i}`), -1)
    const changes = (): Array<Record<string, unknown>> => lines.filter(l => l['path'] === agePath && l['previous'] !== undefined)
    await until(() => changes().at(-1)?.['revision'] === 'r20', { message: 'r20 seen' })
    // No live target carries these revisions (written by hand): after a short wait for a target
    // that does, everything is cleared; a newer value supersedes a pending one.
    await until(() => proxy.cache?.stats().clears === 1, { message: 'cleared once, for the last revision' })
    expect((await send(url(`/rev${FRESH}`))).headers['x-cache']).toBe('MISS')
    // Every change seen was to a new revision, in order (a level-triggered watch may merge some).
    const seen = changes().map(l => Number(String(l['revision']).slice(1)))
    expect(seen).toEqual([...seen].sort((a, b) => a - b))
  })

  it('the same revision written again keeps the entries', async () => {
    const { logger, lines } = capturingLogger()
    const { url, session, agePath, proxy } = await setup([], { logger, revision: 'same' })
    await until(() => lines.some(l => l['path'] === agePath && l['revision'] === 'same'), { message: 'first read' })
    await send(url(`/keep${FRESH}`))
    const stat = await session.set(agePath, Buffer.from('same'), -1)
    await until(() => lines.some(l => l['path'] === agePath && l['revision'] === 'same' && l['version'] === stat.version), { message: 'rewrite seen' })
    expect((await send(url(`/keep${FRESH}`))).headers['x-cache']).toBe('HIT')
    expect(proxy.cache?.stats().clears).toBe(0)
    // A different revision does clear it.
    await session.set(agePath, Buffer.from('next'), -1)
    await until(async () => (await send(url(`/keep${FRESH}`))).headers['x-cache'] === 'MISS', { message: 'cleared by next' })
  })

  it('invalidation still works after the proxy session is forcibly expired', async () => {
    const { url, session, agePath, proxy } = await setup([], { revision: 'before' })
    await send(url(`/exp${FRESH}`))
    const id = proxy.session.sessionId!
    await expireSession(zkCluster().connectString, { id, password: proxy.session.sessionPassword! })
    // Written while the proxy may still be reconnecting: the re-read on the new session sees it.
    await session.set(agePath, Buffer.from('after-expiry'), -1)
    await until(() => proxy.session.state === 'connected' && proxy.session.sessionId !== id, { timeoutMs: ms(20_000), message: 'new session' })
    await until(async () => (await send(url(`/exp${FRESH}`))).headers['x-cache'] === 'MISS', { message: 'cleared after expiry' })
    await send(url(`/exp${FRESH}`))
    expect((await send(url(`/exp${FRESH}`))).headers['x-cache']).toBe('HIT')
    await session.set(agePath, Buffer.from('again'), -1)
    await until(async () => (await send(url(`/exp${FRESH}`))).headers['x-cache'] === 'MISS', { message: 'cleared by the re-armed watch' })
  })

  it('serves hits while ZooKeeper is down', async () => {
    const { url, backend, proxy } = await setup(['--session-timeout-ms', '10000'])
    await send(url(`/outage${FRESH}`))
    await zkCluster().stopNode(0)
    try {
      await until(() => proxy.session.state === 'suspended', { message: 'proxy sees the outage' })
      for (let i = 0; i < 20; i++) expect((await send(url(`/outage${FRESH}`))).headers['x-cache']).toBe('HIT')
      expect(backend.hits()).toBe(1)
    } finally {
      await zkCluster().startNode(0)
    }
  })
})

for (const [name, extra] of LOG_OFF_AND_ON) {
  describe(`stale-if-error (RFC 5861) (${name})`, () => {
    it('serves the stored response past its freshness, with a Warning, when the only target is gone', async () => {
      const { url, backend, proxy, session, targetsPath } = await setup([...extra, '--stale-if-error', '60'])
      const path = '/s?cc=max-age=1'
      const stored = await send(url(path))
      await backend.close() // the znode stays: every attempt is refused
      const stale = await untilValue(async () => {
        const r = await send(url(path))
        return r.headers['x-cache'] === 'STALE' ? r : undefined
      }, { timeoutMs: ms(5000), message: 'stale after expiry' })
      expect(stale).toMatchObject({ status: 200, body: stored.body })
      expect(stale.headers.warning).toBe('110 - "Response is Stale"')
      expect(Number(stale.headers.age)).toBeGreaterThanOrEqual(1)
      // No stored response: the error stands.
      expect((await send(url('/never?cc=max-age=1'))).status).toBe(502)
      // The target's znode gone too (503 no_targets): still served stale.
      await session.delete(`${targetsPath}/a`, -1)
      await until(() => proxy.router.targets.length === 0, { message: 'target removed' })
      expect((await send(url(path))).headers['x-cache']).toBe('STALE')
      expect((await send(url(path), { method: 'HEAD' })).headers['x-cache']).toBe('STALE')
    })

    it('stale-while-revalidate (RFC 5861 §3): while one request revalidates, the others get the stale copy at once', async () => {
      const handler = origin()
      let hold: (() => void) | undefined
      let held = 0
      const { url } = await setup([...extra], {
        handler: (req, res, body) => {
          // The second origin request (the revalidation) waits until the test lets it go.
          if (req.url?.startsWith('/swr') === true && ++held === 2) { hold = () => { handler(req, res, body) }; return }
          handler(req, res, body)
        }
      })
      const path = '/swr?cc=max-age=1, stale-while-revalidate=30'
      const storedBy = Date.now()
      const first = await send(url(path))
      expect(first.headers['x-cache']).toBe('MISS')
      // Expired (max-age=1): the next request revalidates, and waits for the origin ...
      await until(() => Date.now() - storedBy > 1100, { timeoutMs: ms(5000), intervalMs: 50, message: 'the entry to expire' })
      const revalidation = send(url(path))
      await until(() => hold !== undefined, { message: 'the revalidation to reach the origin' })
      // ... and meanwhile every other request is answered from the stale copy, without waiting.
      const during = await send(url(path))
      expect(during).toMatchObject({ status: 200, body: first.body })
      expect(during.headers['x-cache']).toBe('STALE')
      hold!()
      const fresh = await revalidation
      expect(fresh.body).toContain('#2')
      expect((await send(url(path))).headers['x-cache']).toBe('HIT')
    })

    it('serves stale on an upstream 5xx, but not without --stale-if-error nor for must-revalidate', async () => {
      let failing = false
      const handler = origin()
      const { url } = await setup([...extra, '--stale-if-error', '60'], {
        handler: (req, res, body) => {
          if (!failing) { handler(req, res, body); return }
          res.statusCode = 503
          res.end('down')
        }
      })
      const ok = '/f?cc=max-age=1'
      const strict = '/g?cc=max-age=1, must-revalidate'
      await send(url(ok))
      await send(url(strict))
      failing = true
      await until(async () => (await send(url(ok))).headers['x-cache'] === 'STALE', { timeoutMs: ms(5000), message: 'stale on 503' })
      // must-revalidate (RFC 9111 §5.2.2.2): once expired, the origin's error is the answer.
      const strictReply = await untilValue(async () => {
        const r = await send(url(strict))
        return r.headers['x-cache'] === 'HIT' ? undefined : r
      }, { timeoutMs: ms(5000), message: 'strict entry expired' })
      expect(strictReply.status).toBe(503)

      const off = await setup([...extra])
      await send(off.url(ok))
      await off.backend.close()
      await until(async () => (await send(off.url(ok))).status === 502, { timeoutMs: ms(5000), message: '502 without --stale-if-error' })
    })
  })
}
