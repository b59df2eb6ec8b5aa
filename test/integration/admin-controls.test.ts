// The admin listener's controls against a real ZooKeeper and real upstreams: draining or
// ejecting a target moves this proxy's traffic off it at once (and undrain brings it back),
// the /targets rows say so, and a request without the action header, for an unknown target or
// with a bad duration changes nothing.
import { describe, expect, it } from 'vitest'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { ms, until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { startBackend, type Backend } from '../support/backends.js'
import { registerTarget, startTestProxy } from '../support/proxy.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

const zkCluster = useZooKeeper()

interface Row { name: string, ejected: boolean, ejectedUntil: string | null, drained: boolean, failing: boolean }

async function setUp (): Promise<{ proxy: ProxyRuntime, admin: string, a: Backend, b: Backend }> {
  const path = uniquePath('targets')
  const session = await connectSession(zkCluster().connectString)
  const a = await startBackend('a')
  const b = await startBackend('b')
  await registerTarget(session, path, 'a', a.url)
  await registerTarget(session, path, 'b', b.url)
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--admin', '127.0.0.1:0', '--cache-ttl', '0'])
  const admin = proxy.admin?.url ?? ''
  await until(() => proxy.router.targets.length === 2, { timeoutMs: ms(10_000), message: 'both targets seen' })
  return { proxy, admin, a, b }
}

async function post (url: string, action?: string): Promise<{ status: number, body: unknown }> {
  const r = await request(url, { method: 'POST', headers: action === undefined ? {} : { 'x-zkproxy-action': action } })
  return { status: r.statusCode, body: await r.body.json() }
}

async function send (proxyUrl: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await request(`${proxyUrl}/x/${i}`)
    expect(r.statusCode).toBe(200)
    await r.body.dump()
  }
}

describe('POST /targets/:name/(drain|undrain|eject)', () => {
  it('drain sends this proxy\'s requests elsewhere until undrain', async () => {
    const { proxy, admin, a, b } = await setUp()
    const drained = await post(`${admin}/targets/a/drain`, 'drain')
    expect(drained).toEqual({ status: 200, body: expect.objectContaining({ name: 'a', drained: true, ejected: false, failing: false }) })
    await send(proxy.url, 10)
    expect(a.hits()).toBe(0)
    expect(b.hits()).toBe(10)
    const m = await (await request(`${admin}/metrics`)).body.text()
    expect(m).toContain('zkproxy_targets{state="drained"} 1')
    expect(m).toContain('zkproxy_targets{state="ejected"} 0')
    expect(m).toContain('zkproxy_target_drained{target="a"} 1')
    expect(await post(`${admin}/targets/a/undrain`, 'undrain')).toEqual({ status: 200, body: expect.objectContaining({ name: 'a', drained: false }) })
    await send(proxy.url, 10)
    // Least-used: a, behind by 10, gets the next ones.
    expect(a.hits()).toBe(10)
  })

  it('eject sets a target aside for ?seconds (default 60)', async () => {
    const { proxy, admin, a, b } = await setUp()
    const before = Date.now()
    const r = await post(`${admin}/targets/a/eject`, 'eject')
    expect(r.status).toBe(200)
    const row = r.body as Row
    expect(row.ejected).toBe(true)
    const left = Date.parse(row.ejectedUntil ?? '') - before
    expect(left).toBeGreaterThan(59_000)
    expect(left).toBeLessThan(61_000 + ms(1000))
    await send(proxy.url, 6)
    expect(a.hits()).toBe(0)
    expect(b.hits()).toBe(6)
    const rows = await (await request(`${admin}/targets`)).body.json() as Row[]
    expect(rows.find(x => x.name === 'a')).toMatchObject({ ejected: true, drained: false })
  })

  it('refuses without the action header (403), an unknown target (404) and bad seconds (400), changing nothing', async () => {
    const { proxy, admin } = await setUp()
    expect(await post(`${admin}/targets/a/drain`)).toEqual({ status: 403, body: expect.objectContaining({ error: 'missing_action_header' }) })
    expect(await post(`${admin}/targets/a/drain`, 'eject')).toMatchObject({ status: 403 })
    expect(await post(`${admin}/targets/nobody/eject`, 'eject')).toEqual({ status: 404, body: expect.objectContaining({ error: 'no_target' }) })
    for (const s of ['0', '3601', 'abc', '1.5']) {
      expect(await post(`${admin}/targets/a/eject?seconds=${s}`, 'eject')).toEqual({ status: 400, body: expect.objectContaining({ error: 'bad_seconds' }) })
    }
    const a = proxy.router.byName('a')!
    expect(proxy.router.isEjected(a)).toBe(false)
    // Not on the public listener: there every path belongs to the backends.
    const pub = await request(`${proxy.url}/targets/a/drain`, { method: 'POST', headers: { 'x-zkproxy-action': 'drain' } })
    await pub.body.dump()
    expect(proxy.router.isEjected(a)).toBe(false)
  })
})
