// The demo leaves nothing behind: `npm run demo` stopped through npm's PID (SIGTERM, SIGINT),
// `zkproxy dev` SIGKILLed, and dev orphaned by the death of whoever started it. Every process
// under npm or dev (ZooKeeper's JVM, the replicas, the watchdog) is found through /proc when the
// stack is ready; afterwards each must be gone by PID, each port must refuse connections, and
// ZooKeeper's temp dir must be removed, all within deadlines.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { cliPath, waitForLog, type LogLine } from '../support/cli.js'
import { spawnTracked, stopAllTracked, type TrackedProcess } from '../support/processes.js'
import { ms, until } from '../support/until.js'
import { alive } from '../../src/dev/zookeeper-launcher.js'

interface DevSummary {
  proxy: string
  admin: string | null
  zk: string
  zookeeperPid: number | null
  replicas: Array<{ name: string, url: string, pid: number }>
}

const root = fileURLToPath(new URL('../../', import.meta.url))
// Every PID seen under a demo, SIGKILLed in teardown should a failing test leave one running.
const seen = new Set<number>()

afterAll(async () => {
  for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL')
  await stopAllTracked()
})

function env (): NodeJS.ProcessEnv {
  // The demo starts its own ZooKeeper: an ensemble chosen for the tests must not redirect it.
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'ZK_CONNECT' && !k.startsWith('ZKPROXY_') && !k.startsWith('npm_')))
}

/** Every live descendant of `pid`, from /proc (Linux). */
function descendants (pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try { stat = readFileSync(`/proc/${entry}/stat`, 'utf8') } catch { continue }
    // The parent PID is the second field after the parenthesised command name.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
  }
  const out: number[] = []
  const queue = [pid]
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c)
      queue.push(c)
    }
  }
  return out
}

async function refused (hostPort: string): Promise<boolean> {
  const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(':')), Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))]
  return await new Promise<boolean>((resolve) => {
    const s = connect({ host, port })
    s.once('connect', () => { s.destroy(); resolve(false) })
    s.once('error', (err: NodeJS.ErrnoException) => { resolve(err.code === 'ECONNREFUSED') })
  })
}

interface Running {
  readonly summary: DevSummary
  readonly devPid: number
  readonly pids: number[]
  readonly ports: string[]
  readonly zkDir: string
}

/** Waits for the ready line, then records what runs: PIDs under `top`, ports, ZooKeeper's dir. */
async function whenReady (proc: TrackedProcess, top: number): Promise<Running> {
  const ready = await waitForLog(proc, 'dev stack ready', ms(120_000)) as LogLine & DevSummary
  const pids = descendants(top)
  for (const pid of pids) seen.add(pid)
  const zkPid = ready.zookeeperPid ?? -1
  expect(pids).toContain(zkPid)
  for (const r of ready.replicas) expect(pids).toContain(r.pid)
  const ports = [ready.zk, new URL(ready.proxy).host, new URL(ready.admin ?? '').host, ...ready.replicas.map(r => new URL(r.url).host)]
  for (const p of ports) expect(await refused(p), p).toBe(false)
  // The JVM runs in its temp data dir.
  const zkDir = readlinkSync(`/proc/${zkPid}/cwd`)
  expect(zkDir).toMatch(/zkproxy-zk-/)
  return { summary: ready, devPid: Number(ready['pid']), pids, ports, zkDir }
}

async function expectAllGone (r: Running, timeoutMs: number): Promise<void> {
  await until(() => r.pids.every(pid => !alive(pid)), { timeoutMs, message: `every process gone: ${r.pids.filter(alive).join(', ')} still running` })
  for (const p of r.ports) expect(await refused(p), `${p} still answers`).toBe(true)
  await until(() => !existsSync(r.zkDir), { timeoutMs: ms(5000), message: `${r.zkDir} removed` })
}

const DEV_ARGS = ['--replicas', '1', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']

describe('npm run demo', () => {
  const ways: Array<[label: string, send: (npm: TrackedProcess) => void]> = [
    ['SIGTERM to npm\'s PID', (npm) => { npm.signal('SIGTERM') }],
    ['SIGINT to npm\'s PID', (npm) => { npm.signal('SIGINT') }],
    // What a terminal does on Ctrl-C: SIGINT to the whole foreground group (npm and dev; the
    // children have groups of their own), and npm forwards its copy to dev as well.
    ['Ctrl-C (SIGINT to npm\'s process group)', (npm) => { process.kill(-npm.pid, 'SIGINT') }]
  ]
  for (const [label, send] of ways) {
    it(`${label} stops everything gracefully: dev, ZooKeeper, the replica, the watchdog, the temp dir`, async () => {
      // Its own process group, as a terminal would give it (and so a group signal spares vitest).
      const npm = spawnTracked('npm', ['run', 'demo', '--', ...DEV_ARGS], { cwd: root, env: env(), name: 'npm run demo', detached: true })
      const r = await whenReady(npm, npm.pid)
      // npm's child is dev itself: no shell in between to swallow the signal.
      expect(descendants(npm.pid)[0]).toBe(r.devPid)
      expect(r.pids.length).toBeGreaterThanOrEqual(4) // dev, JVM, replica, watchdog
      const t0 = Date.now()
      send(npm)
      await expectAllGone(r, ms(30_000))
      await npm.exited
      expect(Date.now() - t0).toBeLessThan(ms(30_000))
      // One graceful stop: a doubly delivered Ctrl-C is not taken for an impatient second one.
      expect(npm.output()).toContain('dev stack stopped')
      expect(npm.output()).not.toContain('second signal')
    }, ms(240_000))
  }
})

describe('zkproxy dev', () => {
  it('SIGKILLed: the replica notices its pipe end, the watchdog stops ZooKeeper and removes its dir', async () => {
    const dev = spawnTracked(process.execPath, [cliPath(), 'dev', ...DEV_ARGS], { env: env(), name: 'zkproxy dev' })
    const r = await whenReady(dev, dev.pid)
    r.pids.push(dev.pid)
    dev.kill()
    await expectAllGone(r, ms(30_000))
  }, ms(120_000))

  it('one Ctrl-C delivered twice (by the terminal and by npm, ms apart) is one graceful stop', async () => {
    const dev = spawnTracked(process.execPath, [cliPath(), 'dev', ...DEV_ARGS], { env: env(), name: 'zkproxy dev' })
    const r = await whenReady(dev, dev.pid)
    dev.signal('SIGINT')
    await until(() => dev.output().includes('shutting down'), { timeoutMs: ms(5000), message: 'the first SIGINT handled' })
    dev.signal('SIGINT')
    expect(await dev.exited).toEqual({ code: 0, signal: null })
    expect(dev.output()).not.toContain('second signal')
    await expectAllGone(r, ms(30_000))
  }, ms(120_000))

  it('SIGHUP (a closed terminal) to its own PID stops everything gracefully', async () => {
    const dev = spawnTracked(process.execPath, [cliPath(), 'dev', ...DEV_ARGS], { env: env(), name: 'zkproxy dev' })
    const r = await whenReady(dev, dev.pid)
    dev.signal('SIGHUP')
    expect(await dev.exited).toEqual({ code: 0, signal: null })
    await expectAllGone(r, ms(30_000))
    expect(dev.output()).toContain('dev stack stopped')
  }, ms(120_000))

  it('stops everything when whoever started it dies (npm or a shell killed outright)', async () => {
    // A shell starts dev in the background and waits; SIGKILL to the shell re-parents dev.
    const quote = (s: string): string => `'${s}'`
    const shell = spawnTracked('bash', ['-c', `${[process.execPath, cliPath(), 'dev', ...DEV_ARGS].map(quote).join(' ')} & wait`], { env: env(), name: 'bash -c zkproxy dev' })
    const r = await whenReady(shell, shell.pid)
    shell.kill()
    await expectAllGone(r, ms(30_000))
  }, ms(120_000))
})
