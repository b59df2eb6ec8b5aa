// `zkproxy dev` as a process: it starts ZooKeeper, a proxy and two replicas, prints where they
// are (also as one JSON line), routes through the replicas, and on SIGTERM stops every
// process it started — the replicas and the ZooKeeper JVM, checked by the PIDs it reported.
import { afterAll, describe, expect, it } from 'vitest'
import { runCli, startCli, type LogLine } from '../support/cli.js'
import { stopAllTracked, type TrackedProcess } from '../support/processes.js'
import { ms, until } from '../support/until.js'
import { fourLetterWord } from '../support/zookeeper.js'
import { alive } from '../../src/dev/zookeeper-launcher.js'

interface DevSummary {
  proxy: string
  admin: string | null
  zk: string
  zookeeperPid: number | null
  replicas: Array<{ name: string, url: string, pid: number }>
}

// `zkproxy dev` starts its own ZooKeeper: an ensemble chosen for the tests must not redirect it.
const env = { ZK_CONNECT: undefined }
// PIDs dev reported, killed in teardown should a failing test leave dev unable to stop them.
const reported: number[] = []
let dev: TrackedProcess | undefined

afterAll(async () => {
  // Graceful first, so dev stops the children it has not reported yet; then by PID.
  await dev?.stop('SIGTERM', ms(20_000))
  for (const pid of reported) if (alive(pid)) process.kill(pid, 'SIGKILL')
  await stopAllTracked()
})

describe('zkproxy dev', () => {
  it('runs ZooKeeper, a proxy and two replicas, and SIGTERM stops every one of them', async () => {
    const started = await startCli(['dev', '--replicas', '2', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], 'dev stack ready', { env, timeoutMs: ms(60_000) })
    dev = started.proc
    const s = started.ready as LogLine & DevSummary
    reported.push(...s.replicas.map((r) => r.pid), ...(s.zookeeperPid === null ? [] : [s.zookeeperPid]))

    expect(s.proxy).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    expect(s.admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    expect(s.zk).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(s.replicas.map((r) => r.name)).toEqual(['replica-1', 'replica-2'])
    expect(s.zookeeperPid).toBeTypeOf('number')
    for (const pid of reported) expect(alive(pid)).toBe(true)
    expect(await fourLetterWord(s.zk, 'ruok')).toBe('imok')
    // The human summary says the same.
    expect(dev.output()).toContain(`proxy       ${s.proxy}`)
    expect(dev.output()).toContain(`ZooKeeper   ${s.zk}`)

    // Through the proxy, with its cache bypassed so that each request is routed: both
    // replicas answer (least-used spreads requests), bounded by the deadline.
    const servedBy = new Set<string>()
    await until(async () => {
      const res = await fetch(s.proxy, { headers: { 'cache-control': 'no-store' } })
      await res.arrayBuffer()
      if (res.status !== 200) throw new Error(`status ${res.status}`)
      servedBy.add(res.headers.get('x-served-by') ?? '(none)')
      return servedBy.has('replica-1') && servedBy.has('replica-2')
    }, { timeoutMs: ms(10_000), message: 'responses from both replicas' })
    expect([...servedBy].sort()).toEqual(['replica-1', 'replica-2'])

    // The printed dashboard URL is the proxy's live admin listener.
    const health = await fetch(new URL('healthz', s.admin ?? ''))
    await health.arrayBuffer()
    expect(health.status).toBe(200)

    // `zkproxy status` against the dev ZooKeeper sees both replicas.
    const status = await runCli(['status', '--zk', s.zk, '--json'])
    expect(status.code).toBe(0)
    expect((JSON.parse(status.output) as { targets: Array<{ name: string }> }).targets.map((t) => t.name)).toEqual(['replica-1', 'replica-2'])

    const code = await dev.stop('SIGTERM', ms(30_000))
    expect(code).toBe(0)
    // dev waits for its children before exiting, so none may be left at this point.
    for (const pid of reported) expect(alive(pid), `pid ${pid}`).toBe(false)
    await expect(fourLetterWord(s.zk, 'ruok', 500)).rejects.toThrow(/ECONNREFUSED/)
  })

  it('says in one line how to get ZooKeeper when there is none, and exits 2', async () => {
    const { code, output } = await runCli(['dev', '--replicas', '0', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
      env: { ...env, ZOOKEEPER_HOME: '/nonexistent/zookeeper' }
    })
    expect(code).toBe(2)
    const lines = output.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^zkproxy dev: ZOOKEEPER_HOME=\/nonexistent\/zookeeper holds no ZooKeeper server jar.*npm run demo/)
  })
})
