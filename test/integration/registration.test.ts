// Replica registration against a real standalone ZooKeeper: the round trip, start-up before
// ZooKeeper, a server restart, forced expiry, its own old node after a partition, a name held by
// someone else, fair starting counts, the content revision in /cacheAge, and revision.ts.
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino, { type Logger } from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { decodeTarget, type DecodedTarget } from '../../src/registry/codec.js'
import { Registration, type RevisionEvent } from '../../src/registry/registration.js'
import { contentRevision } from '../../src/registry/revision.js'
import { CreateMode, ZkSession, expireSession, updateWithRetry } from '../../src/zk/index.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import { ms, until, untilValue } from '../support/until.js'
import { closeAllSessions, connectSession, silentLogger, uniquePath } from '../support/zk-client.js'

let zk: ZkCluster
const registrations: Registration[] = []
const ownSessions: ZkSession[] = []
const tempDirs: string[] = []

beforeAll(async () => { zk = await startZooKeeper({ nodes: 1 }) })
afterAll(async () => { await zk?.stop() })
afterEach(async () => {
  for (const r of registrations.splice(0)) await r.stop()
  for (const s of ownSessions.splice(0)) await s.close()
  await closeAllSessions()
  for (const d of tempDirs.splice(0)) await rm(d, { recursive: true, force: true })
})

/** This test's own roots, so tests sharing the server never see each other's targets. */
function roots (): { targets: string, cacheAge: string } {
  const base = uniquePath('reg')
  return { targets: `${base}/targets`, cacheAge: `${base}/cacheAge` }
}

function register (session: ZkSession, r: { targets: string, cacheAge: string }, name: string, opts: { revision?: string, logger?: Logger } = {}): Registration {
  const reg = new Registration({
    session,
    targetsPath: r.targets,
    cacheAgePath: r.cacheAge,
    name,
    url: `http://127.0.0.1:${4000 + registrations.length}`,
    revision: opts.revision ?? 'rev-1',
    logger: opts.logger ?? silentLogger
  })
  registrations.push(reg)
  return reg.start()
}

async function readTarget (s: ZkSession, path: string): Promise<DecodedTarget & { owner: string, czxid: number }> {
  const { data, stat } = await s.get(path)
  const name = path.slice(path.lastIndexOf('/') + 1)
  const r = decodeTarget(name, data)
  if (!r.ok) throw new Error(r.reason)
  return { ...r.target, owner: stat.ephemeralOwner, czxid: stat.czxid }
}

async function setCount (s: ZkSession, path: string, requests: number): Promise<void> {
  await updateWithRetry(s, path, (data) => Buffer.from(JSON.stringify({ ...JSON.parse(data.toString()) as object, requests })))
}

async function expire (s: ZkSession): Promise<string> {
  const id = s.sessionId
  const password = s.sessionPassword
  if (id === undefined || password === undefined) throw new Error('session not established')
  await expireSession(zk.connectString, { id, password })
  return id
}

/** A logger whose lines the test can count (one line per state change, not per retry). */
function capture (): { logger: Logger, lines: Array<{ msg: string }> } {
  const lines: Array<{ msg: string }> = []
  const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as { msg: string }) } })
  return { logger, lines }
}

describe('Registration', () => {
  it('registers url, count 0, revision and start time, and stop() deletes the node', async () => {
    const s = await connectSession(zk.connectString)
    const observer = await connectSession(zk.connectString)
    const r = roots()
    const reg = register(s, r, 'web-1')
    await until(() => reg.state === 'registered', { message: 'registered' })
    const t = await readTarget(observer, reg.path)
    expect(t).toMatchObject({ name: 'web-1', url: reg.url, requests: 0, revision: 'rev-1', owner: s.sessionId })
    expect(new Date(t.startedAt ?? '').getTime()).toBeGreaterThan(Date.now() - 60_000)
    await reg.stop()
    expect(reg.state).toBe('stopped')
    expect(await observer.exists(reg.path)).toBeNull()
    expect(s.state).toBe('connected')
  })

  it('starts while ZooKeeper is down, logs once, and completes when it comes back', async () => {
    await zk.stopNode(0)
    const { logger, lines } = capture()
    const s = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 4000, logger, backoff: { initialMs: 50, maxMs: 1000 } }).start()
    ownSessions.push(s)
    const r = roots()
    const reg = register(s, r, 'early', { logger })
    expect(reg.state).toBe('pending')
    // Restarting the JVM takes a while: that is the window in which nothing may repeat.
    await zk.startNode(0)
    const whileDown = lines.length
    expect(whileDown, JSON.stringify(lines)).toBeLessThanOrEqual(2)
    await until(() => reg.state === 'registered', { timeoutMs: ms(20_000), message: 'registered after ZooKeeper came up' })
    const observer = await connectSession(zk.connectString)
    expect((await readTarget(observer, reg.path)).owner).toBe(s.sessionId)
    expect((await observer.get(r.cacheAge)).data.toString()).toBe('rev-1')
  })

  it('keeps the same node (same owner) across a ZooKeeper restart shorter than the session timeout', async () => {
    const s = await connectSession(zk.connectString, { sessionTimeoutMs: 10_000 })
    const reg = register(s, roots(), 'steady')
    await until(() => reg.state === 'registered')
    const observer0 = await connectSession(zk.connectString)
    const before = await readTarget(observer0, reg.path)
    await zk.stopNode(0)
    await until(() => s.state === 'suspended', { message: 'suspended while ZooKeeper is down' })
    expect(reg.state).toBe('registered')
    await zk.startNode(0)
    await until(() => s.state === 'connected', { timeoutMs: ms(20_000), message: 'reconnected' })
    const observer = await connectSession(zk.connectString)
    const after = await readTarget(observer, reg.path)
    expect(after.owner).toBe(before.owner)
    expect(after.czxid).toBe(before.czxid)
    expect(reg.state).toBe('registered')
  })

  it('re-creates the node after forced expiry: same name, new owner, count kept, revision not rewritten', async () => {
    const s = await connectSession(zk.connectString)
    const observer = await connectSession(zk.connectString)
    const r = roots()
    const reg = register(s, r, 'phoenix')
    await until(() => reg.state === 'registered')
    const revisionStat = await untilValue(async () => await observer.exists(r.cacheAge) ?? undefined)
    await setCount(observer, reg.path, 42)
    await until(() => reg.requests === 42, { message: 'registration saw the proxies\' count' })
    const oldOwner = await expire(s)
    const t = await untilValue(async () => {
      const v = await readTarget(observer, reg.path)
      return v.owner === s.sessionId && v.owner !== oldOwner ? v : undefined
    }, { timeoutMs: ms(20_000), message: 'node owned by the new session' })
    expect(t).toMatchObject({ name: 'phoenix', url: reg.url, requests: 42 })
    await until(() => reg.state === 'registered')
    expect((await observer.exists(r.cacheAge))?.mzxid).toBe(revisionStat.mzxid)
  })

  it('re-created after expiry, it continues its own count exactly even when the others moved past it', async () => {
    const s = await connectSession(zk.connectString)
    const observer = await connectSession(zk.connectString)
    const r = roots()
    const reg = register(s, r, 'behind')
    await until(() => reg.state === 'registered')
    await setCount(observer, reg.path, 10)
    await until(() => reg.requests === 10)
    // Joined later, so the floor read at our first creation did not include it.
    await observer.create(`${r.targets}/ahead`, Buffer.from(JSON.stringify({ url: 'http://127.0.0.1:4999', requests: 500 })), CreateMode.EPHEMERAL)
    const oldOwner = await expire(s)
    const t = await untilValue(async () => {
      const v = await readTarget(observer, reg.path)
      return v.owner === s.sessionId && v.owner !== oldOwner ? v : undefined
    }, { timeoutMs: ms(20_000), message: 're-created node' })
    // The count is a ledger of requests routed: lifting it to 500 would count requests nobody routed.
    expect(t.requests).toBe(10)
  })

  it('two replicas joining beside one at 100000 both start at 100000 (undecodable targets ignored)', async () => {
    const observer = await connectSession(zk.connectString)
    const r = roots()
    await observer.mkdirp(r.targets)
    await observer.create(`${r.targets}/old`, Buffer.from(JSON.stringify({ url: 'http://127.0.0.1:4100', requests: 100_000 })), CreateMode.EPHEMERAL)
    await observer.create(`${r.targets}/junk`, Buffer.from('not a target'), CreateMode.EPHEMERAL)
    const [a, b] = await Promise.all([connectSession(zk.connectString), connectSession(zk.connectString)])
    const regs = [register(a, r, 'new-a'), register(b, r, 'new-b')]
    await until(() => regs.every(x => x.state === 'registered'), { message: 'both registered' })
    for (const reg of regs) expect((await readTarget(observer, reg.path)).requests).toBe(100_000)
  })

  it('restarted after stop() (health flapping), it comes back with the count it had', async () => {
    const s = await connectSession(zk.connectString)
    const observer = await connectSession(zk.connectString)
    const reg = register(s, roots(), 'flappy')
    await until(() => reg.state === 'registered')
    await setCount(observer, reg.path, 5)
    await until(() => reg.requests === 5)
    await reg.stop()
    expect(await observer.exists(reg.path)).toBeNull()
    reg.start()
    await until(() => reg.state === 'registered', { message: 'registered again' })
    expect((await readTarget(observer, reg.path)).requests).toBe(5)
  })

  it('after a partition longer than the session timeout, replaces the node its old session left', async () => {
    // SIGSTOP freezes the server's clock too: the old session and its node are still there
    // when it resumes, but the client has given the session up and opened a new one.
    const s = await connectSession(zk.connectString, { sessionTimeoutMs: 2000 })
    const reg = register(s, roots(), 'partitioned')
    await until(() => reg.state === 'registered')
    const observer0 = await connectSession(zk.connectString)
    await setCount(observer0, reg.path, 7)
    await until(() => reg.requests === 7)
    const oldId = s.sessionId
    zk.pauseNode(0)
    try {
      await until(() => s.state === 'expired' || s.state === 'connecting', { timeoutMs: ms(15_000), message: 'session given up' })
      expect(reg.state).toBe('pending')
    } finally {
      zk.resumeNode(0)
    }
    const observer = await connectSession(zk.connectString)
    const t = await untilValue(async () => {
      const v = await readTarget(observer, reg.path)
      return v.owner === s.sessionId && s.sessionId !== oldId ? v : undefined
    }, { timeoutMs: ms(20_000), message: 'node owned by the new session' })
    expect(t.requests).toBe(7)
    await until(() => reg.state === 'registered')
  })

  it('waits while another live session holds the name and takes it when that node goes', async () => {
    const s = await connectSession(zk.connectString)
    const squatter = await connectSession(zk.connectString)
    const r = roots()
    await squatter.mkdirp(r.targets)
    await squatter.create(`${r.targets}/taken`, Buffer.from(JSON.stringify({ url: 'http://127.0.0.1:4200', requests: 3 })), CreateMode.EPHEMERAL)
    const reg = register(s, r, 'taken')
    await until(() => reg.state === 'conflict', { message: 'conflict reported' })
    await squatter.close()
    await until(() => reg.state === 'registered', { message: 'taken over' })
    expect((await readTarget(s, reg.path)).url).toBe(reg.url)
  })

  it('writes /cacheAge once per start; an equal revision is not rewritten, a new one is', async () => {
    const observer = await connectSession(zk.connectString)
    const r = roots()
    const events: RevisionEvent[] = []
    const start = async (name: string, revision: string): Promise<void> => {
      const expected = events.length + 1
      const reg = register(await connectSession(zk.connectString), r, name, { revision })
      reg.on('revision', (ev: RevisionEvent) => { events.push(ev) })
      await until(() => events.length === expected, { message: `revision event from ${name}` })
    }
    await start('one', 'rev-A')
    const first = await observer.get(r.cacheAge)
    expect(first.data.toString()).toBe('rev-A')
    await start('two', 'rev-A')
    expect((await observer.exists(r.cacheAge))?.mzxid).toBe(first.stat.mzxid)
    await start('three', 'rev-B')
    expect((await observer.get(r.cacheAge)).data.toString()).toBe('rev-B')
    expect(events).toEqual([{ revision: 'rev-A', changed: true }, { revision: 'rev-A', changed: false }, { revision: 'rev-B', changed: true }])
    // An older revision still carried by a live target is not new to the fleet: it does not set
    // /cacheAge back (every proxy would clear again).
    const atB = await observer.get(r.cacheAge)
    await start('four', 'rev-A')
    expect(events.at(-1)).toEqual({ revision: 'rev-A', changed: false })
    expect((await observer.exists(r.cacheAge))?.mzxid).toBe(atB.stat.mzxid)
  })

  it('without a revision: the node carries none and /cacheAge is neither created nor written', async () => {
    const observer = await connectSession(zk.connectString)
    const r = roots()
    const s = await connectSession(zk.connectString)
    const reg = new Registration({ session: s, targetsPath: r.targets, cacheAgePath: r.cacheAge, name: 'plain', url: 'http://127.0.0.1:1', revision: undefined, logger: silentLogger }).start()
    await until(() => reg.state === 'registered', { message: 'registered' })
    const data = JSON.parse((await observer.get(reg.path)).data.toString()) as Record<string, unknown>
    expect(data).not.toHaveProperty('revision')
    expect(await observer.exists(r.cacheAge)).toBeNull()
    // And beside a published revision, it leaves it alone.
    await observer.create(r.cacheAge, Buffer.from('rev-A'))
    const before = await observer.get(r.cacheAge)
    await reg.stop()
    const again = new Registration({ session: s, targetsPath: r.targets, cacheAgePath: r.cacheAge, name: 'plain2', url: 'http://127.0.0.1:1', revision: undefined, logger: silentLogger }).start()
    await until(() => again.state === 'registered', { message: 'registered again' })
    expect((await observer.exists(r.cacheAge))?.mzxid).toBe(before.stat.mzxid)
  })

  it('refuses a bad name, a URL that is not an origin, and an empty revision', async () => {
    const s = await connectSession(zk.connectString)
    const base = { session: s, targetsPath: '/t', cacheAgePath: '/c', revision: 'r', logger: silentLogger }
    expect(() => new Registration({ ...base, name: 'a/b', url: 'http://127.0.0.1:1' })).toThrow(expect.objectContaining({ code: 'ZKPROXY_ERR_CONFIG_INVALID' }))
    expect(() => new Registration({ ...base, name: 'ok', url: 'http://127.0.0.1:1/path' })).toThrow(/has a path/)
    expect(() => new Registration({ ...base, name: 'ok', url: 'ftp://127.0.0.1:1' })).toThrow(/not http/)
    expect(() => new Registration({ ...base, name: 'ok', url: 'http://127.0.0.1:1', revision: ' ' })).toThrow(/revision/)
  })
})

describe('content revision', () => {
  it('takes --revision first, then the folder\'s git commit, then a hash of the folder\'s content; none without a folder', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'zkproxy-rev-'))
    const plain = await mkdtemp(join(tmpdir(), 'zkproxy-norev-'))
    const copy = await mkdtemp(join(tmpdir(), 'zkproxy-norev-'))
    tempDirs.push(repo, plain, copy)
    const git = (...args: string[]): string => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim()
    git('init', '-q')
    await writeFile(join(repo, 'index.html'), 'hi')
    git('add', '.')
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'site')
    expect(await contentRevision({ revision: ' v42 ', dir: repo })).toEqual({ revision: 'v42', source: 'flag' })
    expect(await contentRevision({ dir: repo })).toEqual({ revision: git('rev-parse', '--short', 'HEAD'), source: 'git' })
    expect(await contentRevision({})).toEqual({ revision: undefined, source: 'none' })
    expect(await contentRevision({ revision: ' ' })).toEqual({ revision: undefined, source: 'none' })

    // Same files (written in another order, at another time, in another folder): same revision.
    await mkdir(join(plain, 'css'))
    await writeFile(join(plain, 'index.html'), '<h1>v1</h1>')
    await writeFile(join(plain, 'css', 'site.css'), 'h1{}')
    await mkdir(join(copy, 'css'))
    await writeFile(join(copy, 'css', 'site.css'), 'h1{}')
    await writeFile(join(copy, 'index.html'), '<h1>v1</h1>')
    const first = await contentRevision({ revision: '', dir: plain })
    expect(first.source).toBe('content')
    expect(first.revision).toMatch(/^sha256-[0-9a-f]{16}$/)
    expect(await contentRevision({ dir: copy })).toEqual(first)
    expect(await contentRevision({ dir: plain })).toEqual(first)
    // One byte changed, or a file renamed: another revision.
    await writeFile(join(copy, 'index.html'), '<h1>v2</h1>')
    const changed = await contentRevision({ dir: copy })
    expect(changed.revision).not.toBe(first.revision)
    await writeFile(join(copy, 'index.html'), '<h1>v1</h1>')
    expect(await contentRevision({ dir: copy })).toEqual(first)
    await rename(join(copy, 'css', 'site.css'), join(copy, 'css', 'main.css'))
    expect((await contentRevision({ dir: copy })).revision).not.toBe(first.revision)
  })
})
