// Where a rogue registration may send traffic (docs/security.md "Target address policy"):
// whoever can write under the targets path picks the proxy's upstreams, so --allow-targets
// (default: private and loopback addresses, and the name localhost) decides which are used.
// No test sends a byte anywhere but loopback: a refused target is never connected to.
import pino, { type Logger } from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CreateMode, type ZkSession } from '../../src/zk/index.js'
import { closeAllBackends, startBackend, type Backend } from '../support/backends.js'
import { registerTarget, startTestProxy, stopAllProxies } from '../support/proxy.js'
import { until } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

let zk: ZkCluster
let writer: ZkSession

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
})

afterEach(async () => {
  await stopAllProxies()
  await closeAllBackends()
  await closeAllSessions()
})

afterAll(async () => { await zk?.stop() })

interface Setup { proxy: ProxyRuntime, good: Backend, targets: string, warnings: Array<Record<string, unknown>> }

/** A proxy with one good loopback target; rogue ones are added by each test. */
async function setup (args: string[] = []): Promise<Setup> {
  writer = await connectSession(zk.connectString)
  const targets = uniquePath('targets')
  const good = await startBackend('good')
  await registerTarget(writer, targets, 'good', good.url)
  const warnings: Array<Record<string, unknown>> = []
  const logger: Logger = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(JSON.parse(line) as Record<string, unknown>) } })
  const proxy = await startTestProxy(zk.connectString, ['--targets-path', targets, '--cache-ttl', '0', ...args], logger)
  await until(() => proxy.targets.snapshot !== undefined)
  return { proxy, good, targets, warnings }
}

async function rejected (s: Setup, name: string): Promise<string> {
  let reason: string | undefined
  await until(() => (reason = s.proxy.targets.snapshot?.rejected.find(r => r.name === name)?.reason) !== undefined, { message: `${name} rejected` })
  return reason!
}

/** Every request is answered by the good target: none went anywhere else. */
async function allGoToGood (s: Setup, n = 10): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${s.proxy.url}/p${i}`)
    expect(r.status).toBe(200)
    expect(r.headers.get('x-served-by')).toBe('good')
  }
  expect(s.proxy.router.targets.map(t => t.name)).toEqual(['good'])
}

describe('target address policy', () => {
  it.each([
    ['169.254.169.254 (cloud metadata)', 'http://169.254.169.254'],
    ['169.254.170.2 (ECS task credentials)', 'http://169.254.170.2:80'],
    ['the IPv4-mapped IPv6 spelling of 169.254.169.254', 'http://[::ffff:169.254.169.254]'],
    ['fd00:ec2::254 (AWS metadata over IPv6, inside the private fc00::/7)', 'http://[fd00:ec2::254]'],
    ['0.0.0.0 (this host)', 'http://0.0.0.0:22'],
    ['a public address', 'http://8.8.8.8'],
    ['a host name', 'http://metadata.google.internal'],
    ['a decimal-integer spelling of 169.254.169.254', 'http://2852039166']
  ])('a rogue registration pointing at %s gets no traffic', async (_what, url) => {
    const s = await setup()
    await writer.create(`${s.targets}/rogue`, Buffer.from(JSON.stringify({ url, requests: 0 })), CreateMode.EPHEMERAL)
    expect(await rejected(s, 'rogue')).toMatch(/never a target|outside --allow-targets|not in --allow-targets/)
    await allGoToGood(s)
  })

  it('a rogue registration at the proxy\'s own admin listener gets no traffic (admin routes stay off the public listener)', async () => {
    const s = await setup(['--admin', '127.0.0.1:0'])
    const admin = s.proxy.admin!.url
    await writer.create(`${s.targets}/rogue`, Buffer.from(JSON.stringify({ url: admin, requests: 0 })), CreateMode.EPHEMERAL)
    expect(await rejected(s, 'rogue')).toMatch(/own listener/)
    await allGoToGood(s)
  })

  it('a rogue registration with a non-http scheme or a path gets no traffic', async () => {
    const s = await setup()
    await writer.create(`${s.targets}/gopher`, Buffer.from(JSON.stringify({ url: 'gopher://127.0.0.1:70', requests: 0 })), CreateMode.EPHEMERAL)
    await writer.create(`${s.targets}/path`, Buffer.from(JSON.stringify({ url: 'http://127.0.0.1:80/admin', requests: 0 })), CreateMode.EPHEMERAL)
    expect(await rejected(s, 'gopher')).toMatch(/not http or https/)
    expect(await rejected(s, 'path')).toMatch(/has a path/)
    await allGoToGood(s)
  })

  it('is warned about once per znode version, not on every re-read', async () => {
    const s = await setup()
    const path = `${s.targets}/rogue`
    await writer.create(path, Buffer.from(JSON.stringify({ url: 'http://169.254.169.254', requests: 0 })), CreateMode.EPHEMERAL)
    await rejected(s, 'rogue')
    // Other targets changing make the proxy rebuild its view (and re-check every target).
    for (let i = 1; i <= 5; i++) await writer.set(`${s.targets}/good`, Buffer.from(JSON.stringify({ url: s.good.url, requests: i })), -1)
    await until(() => s.proxy.router.targets[0]?.requests === 5)
    const ignored = (): number => s.warnings.filter(w => w['msg'] === 'target ignored' && w['target'] === 'rogue').length
    expect(ignored()).toBe(1)
    await writer.set(path, Buffer.from(JSON.stringify({ url: 'http://169.254.169.254', requests: 1 })), -1)
    await until(() => ignored() === 2, { message: 'a warning for the new version' })
  })

  it('--allow-targets replaces the default: a loopback target outside the list gets no traffic', async () => {
    const s = await setup(['--allow-targets', '10.0.0.0/8'])
    expect(await rejected(s, 'good')).toMatch(/outside --allow-targets/)
    expect((await fetch(`${s.proxy.url}/`)).status).toBe(503)
    expect(s.good.hits()).toBe(0)
  })

  it('a host name listed in --allow-targets is routed to (by name, without resolving it first)', async () => {
    const s = await setup(['--allow-targets', 'private,*.test.invalid,localhost'])
    const other = await startBackend('by-name')
    await writer.create(`${s.targets}/by-name`, Buffer.from(JSON.stringify({ url: `http://localhost:${other.port}`, requests: 0 })), CreateMode.EPHEMERAL)
    await until(() => s.proxy.router.targets.length === 2, { message: 'localhost target admitted' })
    await until(async () => { await fetch(`${s.proxy.url}/n`); return other.hits() > 0 }, { message: 'traffic by name' })
  })
})
