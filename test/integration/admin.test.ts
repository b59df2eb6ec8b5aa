// The admin listener against a real ZooKeeper and real upstreams: health before and after the
// first view (and while ZooKeeper is unreachable), the target list with an ejection, the
// Prometheus text after traffic, the SSE feed, and that none of it is on the public listener.
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { ms, until, untilValue } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend } from '../support/backends.js'
import { readCount, registerTarget, startTestProxy } from '../support/proxy.js'
import { freePort } from '../support/ports.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'
import { CreateMode, type ZkSession } from '../../src/zk/index.js'

const zkCluster = useZooKeeper()

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, text: string }

async function get (url: string): Promise<Answer> {
  const r = await request(url)
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() }
}
async function json<T = unknown> (url: string): Promise<{ status: number, body: T }> {
  const a = await get(url)
  return { status: a.status, body: JSON.parse(a.text) as T }
}

function adminUrl (p: ProxyRuntime): string {
  if (p.admin === undefined) throw new Error('the proxy has no admin listener')
  return p.admin.url
}

async function startWithAdmin (connect: string, path: string, extra: string[] = []): Promise<ProxyRuntime> {
  return await startTestProxy(connect, ['--targets-path', path, '--admin', '127.0.0.1:0', ...extra])
}

/** One sample's value from Prometheus text, e.g. sample(text, 'zkproxy_requests_total', { target: 'a', code: '2xx' }). */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(x => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3])
  }
  return undefined
}

interface Row { name: string, url: string, requests: number, inFlight: number, ejected: boolean, ejectedUntil: string | null, failing: boolean, drained: boolean, revision: string | null, startedAt: string | null, routes: string[] }

async function registerFull (s: ZkSession, path: string, name: string, url: string, revision: string, startedAt: string): Promise<void> {
  await s.mkdirp(path)
  await s.create(`${path}/${name}`, Buffer.from(JSON.stringify({ url, requests: 0, revision, startedAt })), CreateMode.EPHEMERAL)
}

describe('GET /healthz', () => {
  it('answers 503 with the reason while there is no view of the targets (no ZooKeeper)', async () => {
    const nowhere = `127.0.0.1:${await freePort()}`
    const proxy = await startWithAdmin(nowhere, uniquePath('targets'))
    const h = await get(`${adminUrl(proxy)}/healthz`)
    expect(h.status).toBe(503)
    expect(h.headers['cache-control']).toBe('no-store')
    const body = JSON.parse(h.text) as { status: string, view: boolean, reasons: string[] }
    expect(body).toMatchObject({ status: 'unavailable', view: false })
    expect(body.reasons.join(' ')).toMatch(/no view of the targets/)
  })

  it('is 200 "degraded" with a view but no target, and 200 "ok" once a target is registered', async () => {
    const path = uniquePath('targets')
    const proxy = await startWithAdmin(zkCluster().connectString, path)
    const admin = adminUrl(proxy)
    const empty = await untilValue(async () => {
      const r = await json<{ status: string, reasons: string[] }>(`${admin}/healthz`)
      return r.status === 200 ? r.body : undefined
    }, { message: 'healthz 200 after the first view' })
    expect(empty.status).toBe('degraded')
    expect(empty.reasons.join(' ')).toMatch(/no target/)

    const b = await startBackend('a')
    await registerTarget(await connectSession(zkCluster().connectString), path, 'a', b.url)
    await until(async () => (await json<{ status: string }>(`${admin}/healthz`)).body.status === 'ok', { message: 'healthz ok' })
    expect((await json(`${admin}/healthz`)).body).toMatchObject({ status: 'ok', degraded: false, zookeeper: 'connected', view: true, targets: 1, routable: 1, reasons: [] })
  })

  it('stays 200 (degraded, "zookeeper": "suspended") while ZooKeeper is unreachable: static stability', async () => {
    const path = uniquePath('targets')
    const b = await startBackend('a')
    await registerTarget(await connectSession(zkCluster().connectString), path, 'a', b.url)
    const proxy = await startWithAdmin(zkCluster().connectString, path)
    const admin = adminUrl(proxy)
    await until(async () => (await json<{ status: string }>(`${admin}/healthz`)).body.status === 'ok', { message: 'healthz ok' })
    zkCluster().pauseNode(0)
    try {
      const h = await untilValue(async () => {
        const r = await json<{ zookeeper: string }>(`${admin}/healthz`)
        return r.body.zookeeper === 'suspended' ? r : undefined
      }, { timeoutMs: ms(15_000), message: 'session suspended' })
      expect(h.status).toBe(200)
      expect(h.body).toMatchObject({ status: 'degraded', degraded: true, zookeeper: 'suspended', view: true })
      expect((await get(`${proxy.url}/still-served`)).status).toBe(200)
    } finally {
      zkCluster().resumeNode(0)
    }
    // The registering session may have expired with the pause (its target then left): only
    // the proxy's own connection is checked here.
    await until(async () => (await json<{ zookeeper: string }>(`${admin}/healthz`)).body.zookeeper === 'connected', { timeoutMs: ms(20_000), message: 'connected again' })
  })
})

describe('GET /healthz while draining', () => {
  it('says 503 unavailable ("the proxy is stopping") as soon as SIGTERM starts the drain', async () => {
    const path = uniquePath('targets')
    let release: (() => void) | undefined
    const b = await startBackend('a', (_req, res) => { release = () => { res.end('done') } })
    await registerTarget(await connectSession(zkCluster().connectString), path, 'a', b.url)
    const proxy = await startWithAdmin(zkCluster().connectString, path, ['--drain-ms', '5000'])
    const admin = adminUrl(proxy)
    await until(async () => (await json<{ status: string }>(`${admin}/healthz`)).body.status === 'ok', { message: 'healthz ok' })
    const held = get(`${proxy.url}/held`)
    await until(() => release !== undefined, { message: 'a request in flight' })
    const stopped = proxy.stop()
    const h = await json<{ status: string, reasons: string[] }>(`${admin}/healthz`)
    expect(h.status).toBe(503)
    expect(h.body).toMatchObject({ status: 'unavailable', reasons: ['the proxy is stopping'] })
    release!()
    expect((await held).text).toBe('done')
    await stopped
  })
})

describe('GET /targets', () => {
  it('lists every target with its count, revision and start time, and shows a refused target as ejected', async () => {
    const path = uniquePath('targets')
    const a = await startBackend('a')
    const s = await connectSession(zkCluster().connectString)
    const startedAt = '2026-01-02T03:04:05.000Z'
    await registerFull(s, path, 'a', a.url, 'rev-a', startedAt)
    await registerFull(s, path, 'dead', `http://127.0.0.1:${await freePort()}`, 'rev-d', startedAt)
    const proxy = await startWithAdmin(zkCluster().connectString, path, ['--cache-ttl', '0'])
    const admin = adminUrl(proxy)
    await until(() => proxy.router.targets.length === 2, { message: 'two targets' })

    const before = await json<Row[]>(`${admin}/targets`)
    expect(before.status).toBe(200)
    expect(before.body).toEqual([
      { name: 'a', url: a.url, requests: 0, inFlight: 0, tunnels: 0, ejected: false, ejectedUntil: null, failing: false, drained: false, revision: 'rev-a', startedAt, routes: [], stripPrefix: false },
      expect.objectContaining({ name: 'dead', ejected: false, revision: 'rev-d' })
    ])

    // Least-used alternates between the two, so the dead one is tried within two requests;
    // the client never sees its refusal (failover), the admin API does.
    const rows = await untilValue(async () => {
      expect((await get(`${proxy.url}/x`)).status).toBe(200)
      const r = (await json<Row[]>(`${admin}/targets`)).body
      return r.find(t => t.name === 'dead')?.ejected === true ? r : undefined
    }, { message: 'dead target ejected' })
    const dead = rows.find(t => t.name === 'dead')!
    expect(Date.parse(dead.ejectedUntil ?? '')).toBeGreaterThan(Date.now() - 1000)
    expect(rows.find(t => t.name === 'a')).toMatchObject({ ejected: false, ejectedUntil: null, failing: false })
    expect(dead).toMatchObject({ failing: true, drained: false })
    expect(rows.reduce((n, t) => n + t.requests, 0)).toBeGreaterThanOrEqual(1)

    const m = (await get(`${admin}/metrics`)).text
    expect(sample(m, 'zkproxy_ejections_total', { target: 'dead' })).toBe(1)
    expect(sample(m, 'zkproxy_failovers_total', { target: 'dead', stage: 'connect' })).toBeGreaterThanOrEqual(1)
    expect(sample(m, 'zkproxy_targets', { state: 'ejected' })).toBe(1)
    expect(sample(m, 'zkproxy_target_ejected', { target: 'dead' })).toBe(1)
  })
})

describe('routes on the admin listener', () => {
  it('GET /targets shows each target\'s routes, GET /routes the pools, /metrics the route info and pool sizes', async () => {
    const path = uniquePath('targets')
    const s = await connectSession(zkCluster().connectString)
    await s.mkdirp(path)
    const create = async (name: string, routes?: string[]): Promise<void> => {
      const b = await startBackend(name)
      await s.create(`${path}/${name}`, Buffer.from(JSON.stringify({ url: b.url, requests: 0, ...(routes === undefined ? {} : { routes }) })), CreateMode.EPHEMERAL)
    }
    await create('shop-1', ['Shop.Example.com'])
    await create('shop-2', ['shop.example.com', 'example.com/api/'])
    await create('site')
    const proxy = await startWithAdmin(zkCluster().connectString, path)
    const admin = adminUrl(proxy)
    await until(() => proxy.router.targets.length === 3, { message: 'three targets' })

    const rows = (await json<Row[]>(`${admin}/targets`)).body
    expect(rows.map(r => [r.name, r.routes])).toEqual([
      ['shop-1', ['shop.example.com']],
      ['shop-2', ['shop.example.com', 'example.com/api']],
      ['site', []]
    ])
    expect((await json(`${admin}/routes`)).body).toEqual([
      { route: '(default)', targets: ['site'], routable: 1 },
      { route: 'example.com/api', targets: ['shop-2'], routable: 1 },
      { route: 'shop.example.com', targets: ['shop-1', 'shop-2'], routable: 2 }
    ])
    const m = (await get(`${admin}/metrics`)).text
    expect(sample(m, 'zkproxy_target_route_info', { target: 'shop-2', route: 'example.com/api' })).toBe(1)
    expect(sample(m, 'zkproxy_target_route_info', { target: 'site', route: '(default)' })).toBe(1)
    expect(sample(m, 'zkproxy_target_route_info', { target: 'site', route: 'shop.example.com' })).toBeUndefined()
    expect(sample(m, 'zkproxy_pool_targets', { route: 'shop.example.com', state: 'routable' })).toBe(2)
    expect(sample(m, 'zkproxy_pool_targets', { route: 'shop.example.com', state: 'ejected' })).toBe(0)
  })
})

describe('GET /metrics', () => {
  it('exports the key families with values that match the traffic', async () => {
    const path = uniquePath('targets')
    const cachedBody = 'cached body'
    const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
      if (req.url === '/cached') res.setHeader('cache-control', 'public, max-age=60')
      res.end(req.url === '/cached' ? cachedBody : 'dynamic')
    }
    const [a, b] = await Promise.all([startBackend('a', handler), startBackend('b', handler)])
    const s = await connectSession(zkCluster().connectString)
    await registerTarget(s, path, 'a', a.url)
    await registerTarget(s, path, 'b', b.url)
    const proxy = await startWithAdmin(zkCluster().connectString, path, ['--count-flush-ms', '50'])
    const admin = adminUrl(proxy)
    await until(() => proxy.router.targets.length === 2, { message: 'two targets' })

    for (let i = 0; i < 20; i++) expect((await get(`${proxy.url}/p${i}`)).status).toBe(200)
    for (let i = 0; i < 3; i++) expect((await get(`${proxy.url}/cached`)).text).toBe(cachedBody)
    // 20 dynamic requests and one cache miss reached the backends; two cached answers did not.
    expect(a.hits() + b.hits()).toBe(21)
    await until(() => proxy.counter.stats.writes > 0, { message: 'counts flushed' })

    const r = await get(`${admin}/metrics`)
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(r.headers['cache-control']).toBe('no-store')
    const m = r.text
    const twoXX = (t: string): number => sample(m, 'zkproxy_requests_total', { target: t, code: '2xx' }) ?? 0
    expect(twoXX('a') + twoXX('b')).toBe(21)
    expect(twoXX('a')).toBe(a.hits())
    expect(m).toContain('# TYPE zkproxy_request_duration_seconds histogram')
    const durations = (sample(m, 'zkproxy_request_duration_seconds_count', { target: 'a' }) ?? 0) + (sample(m, 'zkproxy_request_duration_seconds_count', { target: 'b' }) ?? 0)
    expect(durations).toBe(21)
    expect(sample(m, 'zkproxy_request_duration_seconds_bucket', { target: 'a', le: '+Inf' })).toBe(a.hits())
    expect(sample(m, 'zkproxy_cache_hits_total')).toBe(2)
    expect(sample(m, 'zkproxy_cache_misses_total')).toBe(21)
    expect(sample(m, 'zkproxy_cache_entries')).toBe(1)
    expect(sample(m, 'zkproxy_cache_size_bytes')).toBeGreaterThanOrEqual(cachedBody.length)
    // The 20 dynamic responses carry no freshness: remembered as not storable.
    expect(sample(m, 'zkproxy_cache_uncacheable_keys')).toBe(20)
    expect(sample(m, 'zkproxy_cache_evictions_total')).toBe(0)
    expect(sample(m, 'zkproxy_zookeeper_session_state', { state: 'connected' })).toBe(1)
    expect(sample(m, 'zkproxy_zookeeper_session_state', { state: 'suspended' })).toBe(0)
    expect(sample(m, 'zkproxy_zookeeper_reconnects_total')).toBe(0)
    expect(sample(m, 'zkproxy_targets', { state: 'routable' })).toBe(2)
    expect(sample(m, 'zkproxy_targets_view')).toBe(1)
    expect(sample(m, 'zkproxy_target_requests', { target: 'a' })).toBe(a.hits())
    expect(sample(m, 'zkproxy_target_in_flight_requests', { target: 'a' })).toBe(0)
    expect(sample(m, 'zkproxy_count_flushes_total')).toBeGreaterThanOrEqual(1)
    expect(sample(m, 'zkproxy_count_writes_total')).toBeGreaterThanOrEqual(1)
    expect(sample(m, 'zkproxy_count_conflicts_total')).toBe(0)
    expect(sample(m, 'zkproxy_failovers_total')).toBeUndefined()
    expect(sample(m, 'zkproxy_process_resident_memory_bytes')).toBeGreaterThan(0)
    // Every family follows zkproxy_<noun>_<unit|total> and has help text.
    for (const line of m.split('\n').filter(l => l.startsWith('# HELP '))) expect(line).toMatch(/^# HELP zkproxy_\w+ \S/)
  })
})

describe('--admin off', () => {
  it('records no metrics at all (nothing could read them), and still forwards, caches and counts', async () => {
    const path = uniquePath('targets')
    const a = await startBackend('a', (req, res) => {
      if (req.url === '/cached') res.setHeader('cache-control', 'public, max-age=60')
      res.end('body')
    })
    const s = await connectSession(zkCluster().connectString)
    await registerTarget(s, path, 'a', a.url)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--count-flush-ms', '50'])
    expect(proxy.admin).toBeUndefined()
    expect(proxy.metrics).toBeUndefined()
    await until(() => proxy.router.targets.length === 1, { message: 'one target' })
    for (let i = 0; i < 3; i++) expect((await get(`${proxy.url}/cached`)).text).toBe('body')
    expect((await get(`${proxy.url}/other`)).status).toBe(200)
    expect(a.hits()).toBe(2)
    expect(proxy.cache?.stats().entries).toBe(1)
    await until(async () => await readCount(s, `${path}/a`) === 2, { message: 'count of 2 flushed' })
  })
})

describe('isolation from the public listener', () => {
  it('forwards /metrics, /healthz and / on the public listener to a backend; admin answers only on its own port', async () => {
    const path = uniquePath('targets')
    const a = await startBackend('a')
    await registerTarget(await connectSession(zkCluster().connectString), path, 'a', a.url)
    const proxy = await startWithAdmin(zkCluster().connectString, path)
    await until(() => proxy.router.targets.length === 1, { message: 'one target' })
    expect(new URL(adminUrl(proxy)).port).not.toBe(new URL(proxy.url).port)
    expect(new URL(adminUrl(proxy)).hostname).toBe('127.0.0.1')
    for (const p of ['/metrics', '/healthz', '/targets', '/events']) {
      const r = await get(`${proxy.url}${p}`)
      expect(r.status).toBe(200)
      expect(r.headers['x-served-by']).toBe('a')
      expect(r.text).toBe(`hello from a ${p}`)
      expect(a.hits(p)).toBe(1)
    }
  })
})

describe('GET / and GET /events', () => {
  it('serves one self-contained page with a strict content security policy', async () => {
    const proxy = await startWithAdmin(zkCluster().connectString, uniquePath('targets'))
    const r = await get(`${adminUrl(proxy)}/`)
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toMatch(/^text\/html/)
    expect(r.headers['cache-control']).toBe('no-store')
    expect(String(r.headers['content-security-policy'])).toMatch(/default-src 'none'; script-src 'sha256-/)
    expect(r.text).toContain('<script>')
    // Nothing is loaded from anywhere else.
    expect(r.text).not.toMatch(/\b(src|href)="(https?:)?\/\//)
  })

  it('pushes the whole state at once and again within a second of a target registering; closing the proxy ends the stream', async () => {
    const path = uniquePath('targets')
    const proxy = await startWithAdmin(zkCluster().connectString, path)
    await until(() => proxy.router.hasView, { message: 'first view' })
    const res = await request(`${adminUrl(proxy)}/events`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/)
    const states: Array<{ id: string, targets: Array<{ name: string }> }> = []
    let buffered = ''
    const reading = (async () => {
      for await (const chunk of res.body) {
        buffered += (chunk as Buffer).toString('utf8')
        let i: number
        while ((i = buffered.indexOf('\n\n')) >= 0) {
          const frame = buffered.slice(0, i)
          buffered = buffered.slice(i + 2)
          const data = frame.split('\n').filter(l => l.startsWith('data: ')).map(l => l.slice(6)).join('\n')
          if (data !== '') states.push(JSON.parse(data) as typeof states[number])
        }
      }
    })()
    await until(() => states.length > 0, { message: 'first state' })
    expect(states[0]).toMatchObject({ id: proxy.id, targets: [] })

    const b = await startBackend('a')
    await registerTarget(await connectSession(zkCluster().connectString), path, 'a', b.url)
    await until(() => states.at(-1)?.targets.length === 1, { timeoutMs: ms(1000), intervalMs: 10, message: 'pushed within 1 s' })

    await proxy.stop()
    await reading // the stream ends instead of holding the shutdown
  })
})
