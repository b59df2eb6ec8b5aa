// Proves the real-ZooKeeper harness in test/support: start-up, four-letter words, node control
// (kill, stop, pause, restart), leader election in an ensemble, and that nothing is left behind.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { freePorts } from '../support/ports.js'
import { spawnTracked, trackedProcesses } from '../support/processes.js'
import { until, untilValue, ms } from '../support/until.js'
import { findZooKeeper, fourLetterWord, startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

// These tests are about the local harness itself, so they never use an external ensemble.
const savedZkConnect = process.env['ZK_CONNECT']
delete process.env['ZK_CONNECT']
afterAll(() => {
  if (savedZkConnect !== undefined) process.env['ZK_CONNECT'] = savedZkConnect
})

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function mode (srvr: string): string | undefined {
  return /^Mode: (\S+)/m.exec(srvr)?.[1]
}

/** ruok with a short deadline, for probing a node that may be paused or down. */
async function answers (zk: ZkCluster, i: number): Promise<boolean> {
  try {
    return await fourLetterWord(zk.nodeConnectString(i), 'ruok', 300) === 'imok'
  } catch {
    return false
  }
}

// Clusters a single test starts are stopped after it, pass or fail.
const perTest: ZkCluster[] = []
afterEach(async () => {
  await Promise.all(perTest.splice(0).map(async (zk) => await zk.stop()))
})

describe('support helpers', () => {
  it('until resolves once the condition holds and names the message on timeout', async () => {
    let n = 0
    await until(() => ++n >= 3, { intervalMs: 1 })
    expect(n).toBe(3)
    await expect(until(() => false, { timeoutMs: 50, message: 'the moon' })).rejects.toThrow(/timed out .* waiting for the moon/)
    await expect(until(async () => { throw new Error('boom') }, { timeoutMs: 50 })).rejects.toThrow(/last error: boom/)
    expect(await untilValue(() => (++n >= 5 ? 'done' : undefined), { intervalMs: 1 })).toBe('done')
    expect(ms(1000)).toBeGreaterThanOrEqual(1000)
  })

  it('freePorts gives distinct ports', async () => {
    const ports = await freePorts(6)
    expect(new Set(ports).size).toBe(6)
  })

  it('spawnTracked captures output, stops with a grace and forgets exited processes', async () => {
    const p = spawnTracked(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000); console.log("ready")'])
    expect(trackedProcesses()).toContain(p)
    await p.waitForOutput(/ready/)
    // It ignores SIGTERM, so stop() has to escalate to SIGKILL after the grace.
    expect(await p.stop('SIGTERM', 200)).toBeNull()
    expect(p.exitInfo?.signal).toBe('SIGKILL')
    expect(trackedProcesses()).not.toContain(p)
    expect(isAlive(p.pid)).toBe(false)
  })
})

describe('findZooKeeper', () => {
  it('finds this machine\'s installation', () => {
    const found = findZooKeeper()
    if ('error' in found) throw new Error(found.error)
    expect(found.classpath).toMatch(/zookeeper/)
  })

  it('explains how to install when nothing is there', () => {
    const none = findZooKeeper({ PATH: process.env['PATH'] }, { debianHome: '/nonexistent/zk', debianJars: '/nonexistent/java', otherHomes: [] })
    expect(none).toEqual({ error: expect.stringMatching(/^No ZooKeeper installation found \(looked in .*\)\. Install it with `apt-get install -y zookeeper`.*ZOOKEEPER_HOME or ZK_CONNECT\.$/) })
    const badHome = findZooKeeper({ ...process.env, ZOOKEEPER_HOME: '/nonexistent/zk' })
    expect(badHome).toEqual({ error: expect.stringMatching(/ZOOKEEPER_HOME=\/nonexistent\/zk/) })
  })
})

describe('standalone server', () => {
  let zk: ZkCluster
  beforeAll(async () => {
    zk = await startZooKeeper()
  })
  afterAll(async () => {
    await zk?.stop()
  })

  it('serves on a loopback port and leads itself', async () => {
    expect(zk.size).toBe(1)
    expect(zk.external).toBe(false)
    expect(zk.connectString).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(zk.nodeConnectString(0)).toBe(zk.connectString)
    expect(await zk.fourLetter(0, 'ruok')).toBe('imok')
    expect(mode(await zk.fourLetter(0, 'srvr'))).toBe('standalone')
    expect(await zk.leader()).toBe(0)
    const mntr = await zk.mntr(0)
    expect(mntr['zk_server_state']).toBe('standalone')
    expect(Number(mntr['zk_znode_count'])).toBeGreaterThan(0)
    expect(zk.pids()).toHaveLength(1)
    expect(isAlive(zk.pids()[0] ?? -1)).toBe(true)
  })

  it('comes back on the same port with the same data after a kill', async () => {
    const before = zk.pids()
    const znodes = (await zk.mntr(0))['zk_znode_count']
    await zk.killNode(0)
    expect(zk.pids()).toEqual([])
    expect(isAlive(before[0] ?? -1)).toBe(false)
    expect(await answers(zk, 0)).toBe(false)
    await zk.startNode(0)
    expect(zk.pids()).toHaveLength(1)
    expect(zk.pids()).not.toEqual(before)
    expect(await zk.fourLetter(0, 'ruok')).toBe('imok')
    expect((await zk.mntr(0))['zk_znode_count']).toBe(znodes)
  })

  it('stops gracefully with SIGTERM and restarts', async () => {
    const [pid] = zk.pids()
    await zk.stopNode(0)
    expect(isAlive(pid ?? -1)).toBe(false)
    await zk.startNode(0)
    expect(mode(await zk.fourLetter(0, 'srvr'))).toBe('standalone')
  })

  it('goes silent while paused and answers again when resumed', async () => {
    zk.pauseNode(0)
    try {
      expect(await answers(zk, 0)).toBe(false)
      expect(isAlive(zk.pids()[0] ?? -1)).toBe(true)
      expect(() => zk.pauseNode(0)).toThrow(/paused/)
    } finally {
      zk.resumeNode(0) // the next tests need it answering, even if an expectation failed
    }
    await until(async () => await answers(zk, 0), { timeoutMs: ms(5000), message: 'the resumed node to answer ruok' })
  })

  it('rejects restarting a node that runs', async () => {
    await expect(zk.startNode(0)).rejects.toThrow(/already running/)
  })

  it('is reachable through ZK_CONNECT as an external cluster without node control', async () => {
    process.env['ZK_CONNECT'] = `${zk.connectString}/harness`
    let ext: ZkCluster
    try {
      ext = await startZooKeeper()
    } finally {
      delete process.env['ZK_CONNECT']
    }
    expect(ext.external).toBe(true)
    expect(ext.size).toBe(1)
    expect(ext.connectString).toBe(`${zk.connectString}/harness`)
    expect(ext.nodeConnectString(0)).toBe(zk.connectString)
    expect(await ext.fourLetter(0, 'ruok')).toBe('imok')
    expect(await ext.leader()).toBe(0)
    expect(ext.pids()).toEqual([])
    await expect(ext.killNode(0)).rejects.toThrow(/not available with ZK_CONNECT/)
    expect(() => ext.pauseNode(0)).toThrow(/not available with ZK_CONNECT/)
    await ext.stop()
    expect(await zk.fourLetter(0, 'ruok')).toBe('imok')
  })
})

describe('stop()', () => {
  it('leaves no JVM alive, is idempotent and disables node control', async () => {
    const zk = await startZooKeeper()
    perTest.push(zk)
    const pids = zk.pids()
    expect(pids).toHaveLength(1)
    zk.pauseNode(0) // a paused JVM must die too
    await zk.stop()
    await zk.stop()
    for (const pid of pids) expect(isAlive(pid)).toBe(false)
    expect(zk.pids()).toEqual([])
    await expect(zk.startNode(0)).rejects.toThrow(/stopped/)
  })
})

describe('3-node ensemble', () => {
  let zk: ZkCluster
  beforeAll(async () => {
    zk = await startZooKeeper({ nodes: 3 })
  })
  afterAll(async () => {
    await zk?.stop()
  })

  it('serves on three ports with exactly one leader', async () => {
    expect(zk.size).toBe(3)
    expect(zk.connectString.split(',')).toEqual([0, 1, 2].map((i) => zk.nodeConnectString(i)))
    expect(zk.pids()).toHaveLength(3)
    const leader = await zk.leader()
    const modes = await Promise.all([0, 1, 2].map(async (i) => mode(await zk.fourLetter(i, 'srvr'))))
    expect(modes[leader]).toBe('leader')
    expect(modes.filter((m) => m === 'follower')).toHaveLength(2)
    expect((await zk.mntr(leader))['zk_synced_followers']).toBe('2')
  })

  it('elects a new leader when the leader dies; the old one rejoins as a follower', async () => {
    const old = await zk.leader()
    await zk.killNode(old)
    const next = await zk.leader()
    expect(next).not.toBe(old)
    expect([0, 1, 2].filter((i) => i !== old)).toContain(next)

    await zk.startNode(old)
    expect(mode(await zk.fourLetter(old, 'srvr'))).toBe('follower')
    expect(await zk.leader()).toBe(next)
    await until(async () => (await zk.mntr(next))['zk_synced_followers'] === '2', { timeoutMs: ms(10_000), message: 'two synced followers again' })
  })

  it('keeps serving with one follower stopped and takes it back', async () => {
    const leader = await zk.leader()
    const follower = [0, 1, 2].find((i) => i !== leader) ?? 0
    await zk.stopNode(follower)
    expect(zk.pids()).toHaveLength(2)
    expect(mode(await zk.fourLetter(leader, 'srvr'))).toBe('leader')
    await zk.startNode(follower)
    expect(zk.pids()).toHaveLength(3)
  })

  it('stop() leaves none of the three JVMs alive', async () => {
    const pids = zk.pids()
    expect(pids).toHaveLength(3)
    await zk.stop()
    for (const pid of pids) expect(isAlive(pid)).toBe(false)
    for (const host of zk.connectString.split(',')) {
      await expect(fourLetterWord(host, 'ruok', 300)).rejects.toThrow(/ECONNREFUSED/)
    }
  })
})
