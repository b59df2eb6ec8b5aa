// The session layer against a real standalone ZooKeeper: typed errors, re-armed watches across
// rapid changes, restarts and forced expiry, the ephemeral node keeper, and CAS under contention.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import pino from 'pino'
import { CreateMode, EphemeralNode, Perm, ZkSession, expireSession, updateWithRetry, watchChildren, watchData, type DataValue } from '../../src/zk/index.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import { ms, until, untilValue } from '../support/until.js'
import { closeAllSessions, connectSession, silentLogger, startSession, uniquePath } from '../support/zk-client.js'
import { freePort } from '../support/ports.js'

let zk: ZkCluster

beforeAll(async () => { zk = await startZooKeeper({ nodes: 1 }) })
afterAll(async () => { await zk?.stop() })
afterEach(async () => { await closeAllSessions() })

async function expire (s: ZkSession): Promise<void> {
  const id = s.sessionId
  const password = s.sessionPassword
  if (id === undefined || password === undefined) throw new Error('session not established')
  await expireSession(zk.connectString, { id, password })
  await until(() => s.state === 'connected' && s.sessionId !== id, { timeoutMs: ms(20_000), message: 'a new session after forced expiry' })
}

describe('typed errors', () => {
  it('translates ZooKeeper result codes into catalogue codes', async () => {
    const s = await connectSession(zk.connectString)
    const p = uniquePath()
    await expect(s.get(p)).rejects.toMatchObject({ code: 'ZKPROXY_ERR_ZK_NO_NODE', path: p })
    await s.create(p, Buffer.from('a'))
    await expect(s.create(p, Buffer.from('b'))).rejects.toMatchObject({ code: 'ZKPROXY_ERR_ZK_NODE_EXISTS' })
    await expect(s.set(p, Buffer.from('c'), 7)).rejects.toMatchObject({ code: 'ZKPROXY_ERR_ZK_BAD_VERSION' })
    await s.create(`${p}/child`, Buffer.alloc(0))
    await expect(s.delete(p, -1)).rejects.toMatchObject({ code: 'ZKPROXY_ERR_ZK_NOT_EMPTY' })
    expect(await s.exists(`${p}/none`)).toBeNull()
  })

  it('rejects at once, without touching the client, while there is no connection', async () => {
    const s = startSession(`127.0.0.1:${await freePort()}`)
    expect(s.state).toBe('connecting')
    await expect(s.get('/x')).rejects.toMatchObject({ code: 'ZKPROXY_ERR_ZK_CONNECTION_LOSS' })
    await expect(s.waitConnected(300)).rejects.toMatchObject({ code: 'ZKPROXY_ERR_ZK_CONNECTION_LOSS' })
    await s.close()
    expect(s.state).toBe('closed')
  })

  it('mkdirp creates missing parents and keeps existing ones', async () => {
    const s = await connectSession(zk.connectString)
    const p = uniquePath()
    await s.mkdirp(`${p}/a/b/c`)
    await s.mkdirp(`${p}/a/b/c`)
    expect(await s.children(`${p}/a/b`)).toEqual(['c'])
  })

  it('creates a missing chroot of the connect string, also again after it was removed and the session expired', async () => {
    const root = await connectSession(zk.connectString)
    const chroot = `${uniquePath()}/app/shop`
    const s = await connectSession(`${zk.connectString}${chroot}`)
    await s.create('/targets', Buffer.from('x'))
    expect((await root.get(`${chroot}/targets`)).data.toString()).toBe('x')
    // Someone removes the whole chroot; the next session creates it again.
    await s.delete('/targets', -1)
    await root.delete(chroot, -1)
    await expire(s)
    await s.create('/targets', Buffer.from('y'))
    expect((await root.get(`${chroot}/targets`)).data.toString()).toBe('y')
  })

  it('a chroot it may not create is logged with what to do, and the session still comes up', async () => {
    const root = await connectSession(zk.connectString)
    const locked = uniquePath()
    await root.create(locked, Buffer.alloc(0))
    // Anyone may read the parent, nobody may create under it.
    await root.setAcl(locked, 0, [{ perm: Perm.READ, scheme: 'world', auth: 'anyone' }])
    const lines: string[] = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(line) } })
    const s = await connectSession(`${zk.connectString}${locked}/app`, { logger })
    await expect(s.create('/targets', Buffer.alloc(0))).rejects.toMatchObject({ code: 'ZKPROXY_ERR_ZK_NO_NODE' })
    expect(lines.some(l => l.includes(`the ZooKeeper chroot ${locked}/app does not exist and could not be created`))).toBe(true)
    expect(await root.exists(`${locked}/app`)).toBeNull()
  })

  it('leaves a missing chroot alone when told to (read-only tools)', async () => {
    const root = await connectSession(zk.connectString)
    const chroot = uniquePath()
    const s = new ZkSession({ connect: `${zk.connectString}${chroot}`, sessionTimeoutMs: 4000, logger: silentLogger, createChroot: false }).start()
    try {
      await s.waitConnected(ms(10_000))
      await expect(s.create('/targets', Buffer.alloc(0))).rejects.toMatchObject({ code: 'ZKPROXY_ERR_ZK_NO_NODE' })
      expect(await root.exists(chroot)).toBeNull()
    } finally {
      await s.close()
    }
  })
})

describe('re-armed watches', () => {
  it('delivers the current value first, then every change, also for a node that does not exist yet', async () => {
    const s = await connectSession(zk.connectString)
    const p = uniquePath()
    const seen: Array<string | null> = []
    const w = watchData(s, p, v => { seen.push(v === null ? null : v.data.toString()) }, silentLogger)
    await until(() => seen.length === 1)
    expect(seen).toEqual([null])
    await s.create(p, Buffer.from('one'))
    await until(() => seen.at(-1) === 'one', { message: 'creation seen' })
    await s.set(p, Buffer.from('two'), -1)
    await until(() => seen.at(-1) === 'two', { message: 'change seen' })
    await s.delete(p, -1)
    await until(() => seen.at(-1) === null, { message: 'deletion seen' })
    w.close()
  })

  it('sees the final value of 50 rapid changes', async () => {
    const s = await connectSession(zk.connectString)
    const writer = await connectSession(zk.connectString)
    const p = uniquePath()
    await writer.create(p, Buffer.from('0'))
    let last: DataValue | null = null
    const w = watchData(s, p, v => { last = v }, silentLogger)
    await until(() => last !== null)
    for (let i = 1; i <= 50; i++) await writer.set(p, Buffer.from(String(i)), -1)
    await until(() => (last as DataValue | null)?.data.toString() === '50', { message: 'value 50' })
    w.close()
  })

  it('children watch tracks additions and removals, and the parent appearing later', async () => {
    const s = await connectSession(zk.connectString)
    const p = uniquePath()
    let kids: string[] | null | undefined
    const w = watchChildren(s, p, c => { kids = c }, silentLogger)
    await until(() => kids === null, { message: 'missing parent reported as null' })
    await s.create(p, Buffer.alloc(0))
    await until(() => Array.isArray(kids) && kids.length === 0, { message: 'empty parent' })
    await s.create(`${p}/b`, Buffer.alloc(0))
    await s.create(`${p}/a`, Buffer.alloc(0))
    await until(() => kids?.join() === 'a,b', { message: 'two children' })
    await s.delete(`${p}/a`, -1)
    await until(() => kids?.join() === 'b', { message: 'one child left' })
    w.close()
  })

  it('keeps working across a server restart, and delivers a change made while it was away', async () => {
    const s = await connectSession(zk.connectString, { sessionTimeoutMs: 10_000 })
    const p = uniquePath()
    await s.create(p, Buffer.from('before'))
    let value: string | null | undefined
    const w = watchData(s, p, v => { value = v?.data.toString() ?? null }, silentLogger)
    await until(() => value === 'before')
    await zk.stopNode(0)
    await until(() => s.state === 'suspended', { message: 'suspended while ZooKeeper is down' })
    await zk.startNode(0)
    // Another client changes the node; our watch (re-registered by the client on reconnect,
    // and re-read by us) must see it.
    const writer = await connectSession(zk.connectString)
    await writer.set(p, Buffer.from('after'), -1)
    await until(() => value === 'after', { timeoutMs: ms(20_000), message: 'change after restart' })
    expect(s.state).toBe('connected')
    await writer.set(p, Buffer.from('again'), -1)
    await until(() => value === 'again', { message: 'watch still armed' })
    w.close()
  })

  it('keeps working across a forced session expiry (new handle, watches re-armed)', async () => {
    const s = await connectSession(zk.connectString)
    const writer = await connectSession(zk.connectString)
    const p = uniquePath()
    await writer.create(p, Buffer.from('v1'))
    let value: string | null | undefined
    const w = watchData(s, p, v => { value = v?.data.toString() ?? null }, silentLogger)
    await until(() => value === 'v1')
    const states: string[] = []
    s.on('state', st => { states.push(st) })
    await expire(s)
    expect(states).toContain('expired')
    await writer.set(p, Buffer.from('v2'), -1)
    await until(() => value === 'v2', { message: 'change after expiry' })
    await writer.set(p, Buffer.from('v3'), -1)
    await until(() => value === 'v3', { message: 'watch re-armed on the new session' })
    w.close()
  })
})

describe('ephemeral node keeper', () => {
  it('creates the node with parents, re-creates it after expiry with a new owner, deletes it on stop', async () => {
    const s = await connectSession(zk.connectString)
    const observer = await connectSession(zk.connectString)
    const p = `${uniquePath()}/targets/me`
    const node = new EphemeralNode(s, p, { data: () => Buffer.from('hello'), logger: silentLogger }).start()
    await until(() => node.state === 'registered', { message: 'registered' })
    const first = await observer.exists(p)
    expect(first?.ephemeralOwner).toBe(s.sessionId)
    const states: string[] = []
    node.on('state', (st: string) => { states.push(st) })
    await expire(s)
    await until(async () => (await observer.exists(p))?.ephemeralOwner === s.sessionId, { timeoutMs: ms(20_000), message: 're-created by the new session' })
    expect((await observer.exists(p))?.ephemeralOwner).not.toBe(first?.ephemeralOwner)
    // Not 'registered' while the node was gone with the old session.
    await until(() => node.state === 'registered', { message: 'registered again' })
    expect(states).toEqual(['pending', 'registered'])
    await node.stop()
    expect(await observer.exists(p)).toBeNull()
  })

  it('re-creates the node when someone deletes it while the session lives', async () => {
    const s = await connectSession(zk.connectString)
    const other = await connectSession(zk.connectString)
    const p = `${uniquePath()}/n`
    const node = new EphemeralNode(s, p, { data: () => Buffer.from('x'), logger: silentLogger }).start()
    await until(() => node.state === 'registered')
    const states: string[] = []
    node.on('state', (st: string) => { states.push(st) })
    await other.delete(p, -1)
    await until(async () => (await other.exists(p))?.ephemeralOwner === s.sessionId, { message: 're-created after deletion' })
    await until(() => node.state === 'registered', { message: 'registered again' })
    expect(states).toEqual(['pending', 'registered'])
    await node.stop()
  })

  it('waits while another session holds the name, and takes it when that node goes', async () => {
    const s = await connectSession(zk.connectString)
    const squatter = await connectSession(zk.connectString)
    const p = `${uniquePath()}/n`
    await squatter.mkdirp(p.slice(0, p.lastIndexOf('/')))
    await squatter.create(p, Buffer.from('theirs'), CreateMode.EPHEMERAL)
    const node = new EphemeralNode(s, p, { data: () => Buffer.from('mine'), logger: silentLogger }).start()
    await until(() => node.state === 'conflict', { message: 'conflict reported' })
    await squatter.close()
    await until(() => node.state === 'registered', { message: 'taken over after the other session closed' })
    expect((await s.get(p)).data.toString()).toBe('mine')
    await node.stop()
  })

  it('replaces a node left by its own earlier session after a partition longer than the session timeout', async () => {
    // SIGSTOP freezes the server's clock too, so the old session is still alive when it
    // resumes: the client has given it up (lost) and its new session finds the old node.
    const s = await connectSession(zk.connectString, { sessionTimeoutMs: 2000 })
    const p = `${uniquePath()}/n`
    const node = new EphemeralNode(s, p, { data: last => last ?? Buffer.from('first'), logger: silentLogger }).start()
    await until(() => node.state === 'registered')
    const oldId = s.sessionId
    zk.pauseNode(0)
    try {
      await until(() => s.state === 'expired' || s.state === 'connecting', { timeoutMs: ms(15_000), message: 'session given up while partitioned' })
    } finally {
      zk.resumeNode(0)
    }
    const observer = await connectSession(zk.connectString)
    await until(async () => {
      const stat = await observer.exists(p)
      return stat !== null && stat.ephemeralOwner === s.sessionId && s.sessionId !== oldId
    }, { timeoutMs: ms(20_000), message: 'node owned by the new session' })
    await node.stop()
  })
})

describe('compare-and-set', () => {
  it('loses no increment under 4 concurrent writers', async () => {
    const p = uniquePath()
    const writers = await Promise.all([0, 1, 2, 3].map(async () => await connectSession(zk.connectString)))
    await writers[0]!.create(p, Buffer.from('0'))
    let conflicts = 0
    await Promise.all(writers.map(async w => {
      for (let i = 0; i < 50; i++) {
        const r = await updateWithRetry(w, p, data => Buffer.from(String(Number(data.toString()) + 1)))
        conflicts += r?.conflicts ?? 0
      }
    }))
    expect((await writers[0]!.get(p)).data.toString()).toBe('200')
    // Not asserted (timing-dependent), but it shows the retry path was taken.
    console.info(`CAS: 200 increments, ${conflicts} BadVersion conflicts retried`)
  })
})

describe('reconnecting after a leader kill', () => {
  it('resumes the same session within a few seconds, whatever the session timeout', async () => {
    // Measured before the fix: the C client waited on a connection whose handshake no server
    // answered for two thirds of the session timeout (10 s with this one); now a fresh
    // connection resumes the session after 1.5 s.
    const ensemble = await startZooKeeper({ nodes: 3 })
    try {
      const leader = await ensemble.leader()
      // A session held by the leader (the client picks a server at random): `cons` lists each
      // server's connections with their session ids.
      const s = await untilValue(async () => {
        const candidate = await connectSession(ensemble.connectString, { sessionTimeoutMs: 30_000 })
        const cons = await ensemble.fourLetter(leader, 'cons')
        if (cons.includes(`sid=0x${candidate.sessionId ?? '?'}`)) return candidate
        await candidate.close()
        return undefined
      }, { timeoutMs: ms(20_000), intervalMs: 0, message: 'a session on the leader' })
      const id = s.sessionId
      const p = uniquePath()
      await s.create(p, Buffer.from('mine'), CreateMode.EPHEMERAL)
      const t0 = Date.now()
      await ensemble.killNode(leader)
      await until(() => s.state !== 'connected', { timeoutMs: ms(5000), intervalMs: 5, message: 'disconnected by the leader kill' })
      await until(() => s.state === 'connected', { timeoutMs: ms(20_000), intervalMs: 20, message: 'connected again' })
      const tookMs = Date.now() - t0
      console.info(`leader kill: session back after ${tookMs} ms`)
      expect(s.sessionId).toBe(id)
      expect((await s.get(p)).data.toString()).toBe('mine')
      expect(tookMs).toBeLessThan(ms(8000))
    } finally {
      await closeAllSessions()
      await ensemble.stop()
    }
  })
})
