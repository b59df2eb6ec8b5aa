// A proxy whose stdout pipe broke (the log reader died: a closed terminal, a crashed log
// shipper) keeps serving and still stops on SIGTERM within --drain-ms plus a second, the
// graceful way: its /proxies node is deleted, exit code 0. Writes then fail with EPIPE, which
// must neither crash the process nor hold up the shutdown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { cliPath } from '../support/cli.js'
import { spawnTracked, stopAllTracked } from '../support/processes.js'
import { ms, until } from '../support/until.js'
import { chrootConnect, closeAllSessions, connectSession } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

let zk: ZkCluster
let connect: string

beforeAll(async () => {
  zk = await startZooKeeper()
  connect = await chrootConnect(zk.connectString, 'broken-stdout')
})

afterAll(async () => {
  await stopAllTracked()
  await closeAllSessions()
  await zk.stop()
})

describe('a proxy whose stdout pipe broke', () => {
  for (const pretty of [false, true]) {
    it(`keeps answering and stops on SIGTERM within --drain-ms + 1 s, gracefully${pretty ? ' (--log-pretty)' : ''}`, async () => {
      const drainMs = 1000
      const args = ['proxy', '--zk', connect, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', '--drain-ms', String(drainMs), '--id', `p${pretty ? 1 : 0}`, ...(pretty ? ['--log-pretty'] : [])]
      // Pretty logs have no JSON ready line to wait for: the znode says the proxy is up.
      const observer = await connectSession(connect)
      const path = `/proxies/p${pretty ? 1 : 0}`
      const proc = spawnTracked(process.execPath, [cliPath(), ...args], { name: 'zkproxy proxy' })
      await until(async () => await observer.exists(path) !== null, { timeoutMs: ms(20_000), message: `${path} created` })
      const url = JSON.parse((await observer.get(path)).data.toString()).url as string

      // The reader goes away: the pipe's read end is closed, every later write gets EPIPE.
      proc.child.stdout?.destroy()
      // Each request writes an access-log line into the broken pipe.
      for (let i = 0; i < 5; i++) {
        const r = await request(url)
        await r.body.dump()
        expect(r.statusCode).toBe(503) // no targets registered: answered, not hung
      }
      expect(proc.running).toBe(true)

      const t0 = Date.now()
      proc.signal('SIGTERM')
      const exit = await Promise.race([proc.exited, new Promise<'late'>((resolve) => setTimeout(() => { resolve('late') }, ms(drainMs + 1000)))])
      expect(exit, `exited within ${drainMs + 1000} ms`).toEqual({ code: 0, signal: null })
      expect(Date.now() - t0).toBeLessThan(ms(drainMs + 1000))
      // The graceful path ran: the proxy removed its own announcement.
      expect(await observer.exists(path)).toBeNull()
    })
  }
})
