// Who may write what in ZooKeeper (docs/security.md "ZooKeeper ACLs"), against a real server:
// replicas and a proxy run in ACL mode with digest identities, and an unauthenticated client
// (anyone who can reach port 2181) tries to register, rewrite, delete and re-ACL nodes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { nodeAcls, type RoleIdentities } from '../../src/registry/acl-policy.js'
import { publishPurge, purgeAcl } from '../../src/registry/purges.js'
import { decodeRevision, decodeTarget } from '../../src/registry/codec.js'
import { Registration } from '../../src/registry/registration.js'
import { aclEquals, CreateMode, digestId, Perm, ZkSession, type AclEntry } from '../../src/zk/index.js'
import { closeAllBackends, startBackend } from '../support/backends.js'
import { readCount, startTestProxy, stopAllProxies } from '../support/proxy.js'
import { ms, until } from '../support/until.js'
import { closeAllSessions, connectSession, silentLogger, trackSession, uniquePath } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

const REPLICA = 'replica:replica-secret'
const PROXY = 'proxy:proxy-secret'
const ids: RoleIdentities = { replicas: { scheme: 'digest', id: digestId(REPLICA) }, proxies: { scheme: 'digest', id: digestId(PROXY) } }
const acls = nodeAcls(ids)
const aclFlags = ['--zk-acl-replicas', `digest:${ids.replicas.id}`, '--zk-acl-proxies', `digest:${ids.proxies.id}`]
const OPEN: AclEntry[] = [{ scheme: 'world', auth: 'anyone', perm: Perm.ALL }]

let zk: ZkCluster
/** A chroot whose root is locked the way docs/security.md recommends. */
let zkConnect: string
const registrations: Registration[] = []

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
  const chroot = uniquePath('sec-acl')
  const admin = await connectSession(zk.connectString)
  await admin.mkdirp(chroot)
  await admin.setAcl(chroot, -1, [{ scheme: 'world', auth: 'anyone', perm: Perm.READ }, { scheme: 'digest', auth: ids.replicas.id, perm: Perm.ALL }, { scheme: 'digest', auth: ids.proxies.id, perm: Perm.CREATE }])
  zkConnect = `${zk.connectString}${chroot}`
})

afterEach(async () => {
  for (const r of registrations.splice(0)) await r.stop()
  await stopAllProxies()
  await closeAllBackends()
  await closeAllSessions()
})

afterAll(async () => { await zk?.stop() })

function paths (): { targets: string, cacheAge: string } {
  const p = uniquePath('app')
  return { targets: `${p}-targets`, cacheAge: `${p}-cacheAge` }
}

async function replicaSession (connect = zkConnect): Promise<ZkSession> {
  return await connectSession(connect, { auth: [{ scheme: 'digest', credential: REPLICA }] })
}

async function startReplica (session: ZkSession, p: { targets: string, cacheAge: string }, name: string, url: string, routes: string[] = []): Promise<Registration> {
  const r = new Registration({ session, targetsPath: p.targets, cacheAgePath: p.cacheAge, name, url, revision: 'rev-1', routes, logger: silentLogger, acls })
  registrations.push(r)
  r.start()
  await until(() => r.state === 'registered', { timeoutMs: ms(10_000), message: `${name} registered` })
  return r
}

async function codeOf (p: Promise<unknown>): Promise<string | undefined> {
  try { await p } catch (err) { return (err as { code?: string }).code }
  return undefined
}

const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o))

describe('ZooKeeper ACLs', () => {
  it('an unauthenticated client cannot register a target, rewrite, delete or re-ACL one, nor change /cacheAge; it can read them', async () => {
    const p = paths()
    await startReplica(await replicaSession(), p, 'b', 'http://127.0.0.1:4000')
    const anon = await connectSession(zkConnect)
    const NO_AUTH = 'ZKPROXY_ERR_ZK_NO_AUTH'
    expect(await codeOf(anon.create(`${p.targets}/rogue`, json({ url: 'http://169.254.169.254' }), CreateMode.EPHEMERAL))).toBe(NO_AUTH)
    expect(await codeOf(anon.set(`${p.targets}/b`, json({ url: 'http://169.254.169.254', requests: 0 }), -1))).toBe(NO_AUTH)
    expect(await codeOf(anon.delete(`${p.targets}/b`, -1))).toBe(NO_AUTH)
    expect(await codeOf(anon.setAcl(`${p.targets}/b`, -1, OPEN))).toBe(NO_AUTH)
    expect(await codeOf(anon.setAcl(p.targets, -1, OPEN))).toBe(NO_AUTH)
    expect(await codeOf(anon.set(p.cacheAge, Buffer.from('evil'), -1))).toBe(NO_AUTH)
    expect(await codeOf(anon.delete(p.cacheAge, -1))).toBe(NO_AUTH)
    // Everyone may still read: `zkproxy status`, dashboards, other tools.
    const t = decodeTarget('b', (await anon.get(`${p.targets}/b`)).data)
    expect(t.ok && t.target.url).toBe('http://127.0.0.1:4000')
    expect(decodeRevision((await anon.get(p.cacheAge)).data)).toBe('rev-1')
  })

  it('the proxies\' identity may write counts but cannot register a target nor change /cacheAge', async () => {
    const p = paths()
    await startReplica(await replicaSession(), p, 'b', 'http://127.0.0.1:4000')
    const proxy = await connectSession(zkConnect, { auth: [{ scheme: 'digest', credential: PROXY }] })
    expect(await codeOf(proxy.create(`${p.targets}/rogue`, json({ url: 'http://127.0.0.1:4001' }), CreateMode.EPHEMERAL))).toBe('ZKPROXY_ERR_ZK_NO_AUTH')
    expect(await codeOf(proxy.set(p.cacheAge, Buffer.from('evil'), -1))).toBe('ZKPROXY_ERR_ZK_NO_AUTH')
    expect(await codeOf(proxy.set(`${p.targets}/b`, json({ url: 'http://127.0.0.1:4000', requests: 7 }), -1))).toBeUndefined()
  })

  it('a replica with routes registers in ACL mode: its routes pass the read-back check', async () => {
    const p = paths()
    const replica = await replicaSession()
    await startReplica(replica, p, 'routed', 'http://127.0.0.1:4000', ['Shop.example.com', 'example.com/api/'])
    const t = decodeTarget('routed', (await replica.get(`${p.targets}/routed`)).data)
    expect(t.ok && t.target.routes?.map(r => r.key)).toEqual(['shop.example.com', 'example.com/api'])
    expect(aclEquals((await replica.getAcl(`${p.targets}/routed`)).acl, acls.target)).toBe(true)
  })

  it('each node carries exactly the documented ACL', async () => {
    const p = paths()
    const replica = await replicaSession()
    await startReplica(replica, p, 'b', 'http://127.0.0.1:4000')
    await until(async () => aclEquals((await replica.getAcl(p.cacheAge)).acl, acls.cacheAge), { message: '/cacheAge secured' })
    expect(aclEquals((await replica.getAcl(p.targets)).acl, acls.targets)).toBe(true)
    expect(aclEquals((await replica.getAcl(`${p.targets}/b`)).acl, acls.target)).toBe(true)
  })

  it('the proxy still routes in ACL mode, writes counts, and announces itself under a proxies-only ACL', async () => {
    const p = paths()
    const backend = await startBackend('b')
    await startReplica(await replicaSession(), p, 'b', backend.url)
    const proxy = await startTestProxy(zkConnect, ['--targets-path', p.targets, '--cache-age-path', p.cacheAge, '--cache-ttl', '0', '--count-flush-ms', '50', '--zk-auth', `digest:${PROXY}`, ...aclFlags])
    await until(() => proxy.router.targets.length === 1, { message: 'target admitted' })
    for (let i = 0; i < 5; i++) expect((await fetch(`${proxy.url}/x`)).status).toBe(200)
    expect(backend.hits()).toBe(5)
    const observer = await connectSession(zkConnect)
    await until(async () => await readCount(observer, `${p.targets}/b`) >= 5, { message: 'counts flushed' })
    await until(async () => (await observer.exists(`/proxies/${proxy.id}`)) !== null, { message: 'proxy announced' })
    expect(aclEquals((await observer.getAcl('/proxies')).acl, acls.proxies, { maskDigest: true })).toBe(true)
  })

  it('a target whose ACL is still open (the create → setAcl window) gets no traffic until the replicas\' ACL is on it', async () => {
    const p = paths()
    const [good, windowed] = [await startBackend('good'), await startBackend('windowed')]
    await startReplica(await replicaSession(), p, 'good', good.url)
    const proxy = await startTestProxy(zkConnect, ['--targets-path', p.targets, '--cache-ttl', '0', '--zk-auth', `digest:${PROXY}`, ...aclFlags])
    await until(() => proxy.router.targets.length === 1)
    // A node made the way the `zookeeper` client makes every node: with the open ACL.
    const replica = await replicaSession()
    await replica.create(`${p.targets}/windowed`, json({ url: windowed.url, requests: 0 }), CreateMode.EPHEMERAL)
    const reason = (): string | undefined => proxy.targets.snapshot?.rejected.find(r => r.name === 'windowed')?.reason
    await until(() => /lets anyone rewrite it/.test(reason() ?? ''), { timeoutMs: ms(10_000), message: 'open ACL rejected after the grace period' })
    for (let i = 0; i < 10; i++) await fetch(`${proxy.url}/w`)
    expect(windowed.hits()).toBe(0)
    await replica.setAcl(`${p.targets}/windowed`, 0, acls.target)
    await until(() => proxy.router.targets.length === 2, { timeoutMs: ms(10_000), message: 'admitted once its ACL is set' })
    await until(async () => { await fetch(`${proxy.url}/w`); return windowed.hits() > 0 }, { message: 'traffic to the secured target' })
  })

  it.each([
    ['rewrites its url', async (anon: ZkSession, path: string) => { await anon.set(path, json({ url: 'http://169.254.169.254', requests: 0 }), -1) }],
    ['replaces its ACL', async (anon: ZkSession, path: string) => { await anon.setAcl(path, 0, OPEN) }]
  ])('an attacker who %s between create and setAcl gets the node deleted and re-created by the replica', async (_name, attack) => {
    const p = paths()
    const anon = await connectSession(zkConnect)
    let attacked = false
    // The race made deterministic: the attacker acts right before the replica's setAcl.
    class RacedSession extends ZkSession {
      override async setAcl (path: string, version: number, acl: AclEntry[]): Promise<void> {
        if (!attacked && path === `${p.targets}/b`) { attacked = true; await attack(anon, path) }
        await super.setAcl(path, version, acl)
      }
    }
    const raced = trackSession(new RacedSession({ connect: zkConnect, sessionTimeoutMs: 4000, logger: silentLogger, auth: [{ scheme: 'digest', credential: REPLICA }] }).start())
    await raced.waitConnected(ms(10_000))
    await startReplica(raced, p, 'b', 'http://127.0.0.1:4000')
    expect(attacked).toBe(true)
    const t = decodeTarget('b', (await raced.get(`${p.targets}/b`)).data)
    expect(t.ok && t.target.url).toBe('http://127.0.0.1:4000')
    expect(aclEquals((await raced.getAcl(`${p.targets}/b`)).acl, acls.target)).toBe(true)
  })

  it('a rogue target created while the targets path was still open is purged when a replica secures the path', async () => {
    // A root the operator left open (ZooKeeper's default): anyone may create the targets path first.
    const openRoot = uniquePath('sec-open')
    const anonRoot = await connectSession(zk.connectString)
    await anonRoot.mkdirp(openRoot)
    const connect = `${zk.connectString}${openRoot}`
    const anon = await connectSession(connect)
    await anon.mkdirp('/targets')
    await anon.create('/targets/rogue', json({ url: 'http://127.0.0.1:1', requests: 0 }), CreateMode.EPHEMERAL)
    // Dressed up with the replicas' ACL (ids are public: anyone can read an ACL).
    await anon.setAcl('/targets/rogue', 0, acls.target)
    await startReplica(await replicaSession(connect), { targets: '/targets', cacheAge: '/cacheAge' }, 'b', 'http://127.0.0.1:4000')
    expect(await anon.exists('/targets/rogue')).toBeNull()
    expect(await anon.exists('/targets/b')).not.toBeNull()
  })
})

describe('fleet-wide purges in ACL mode', () => {
  it('the proxies\' identity locks the purge root; an unauthenticated client can neither publish nor delete purges', async () => {
    const purgePath = `${uniquePath('app')}-purges`
    const proxySession = await connectSession(zkConnect, { auth: [{ scheme: 'digest', credential: PROXY }] })
    const sequence = await publishPurge(proxySession, purgePath, { host: 'a.test' }, { acl: purgeAcl(ids), logger: silentLogger })
    expect(aclEquals((await proxySession.getAcl(purgePath)).acl, purgeAcl(ids))).toBe(true)
    const anon = await connectSession(zkConnect)
    expect(await codeOf(anon.create(`${purgePath}/purge-`, Buffer.from('{}'), CreateMode.PERSISTENT_SEQUENTIAL))).toBe('ZKPROXY_ERR_ZK_NO_AUTH')
    expect(await codeOf(anon.delete(`${purgePath}/purge-${String(sequence).padStart(10, '0')}`, -1))).toBe('ZKPROXY_ERR_ZK_NO_AUTH')
    expect(await codeOf(publishPurge(anon, purgePath, {}))).toBe('ZKPROXY_ERR_ZK_NO_AUTH')
    expect(await anon.children(purgePath)).toHaveLength(1)
  })
})
