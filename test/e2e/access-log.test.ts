// The access log of the built `zkproxy proxy --access-log`: one JSON line per request, written
// when the request ends, through a buffer that is flushed within a fraction of a second and
// when the process exits, so no line is lost to a SIGTERM.
import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import { ms, until } from '../support/until.js'
import { stopAllTracked } from '../support/processes.js'
import { parseLogLines, startCli } from '../support/cli.js'
import { closeAllSessions, connectSession } from '../support/zk-client.js'
import { closeAllBackends, startBackend } from '../support/backends.js'
import { registerTarget } from '../support/proxy.js'

let zk: ZkCluster | undefined

afterEach(async () => {
  await stopAllTracked()
  await closeAllBackends()
  await closeAllSessions()
  await zk?.stop()
  zk = undefined
})

describe('--access-log', () => {
  it('one line per request with method, url, status, target and time; all of them there after SIGTERM', async () => {
    zk = await startZooKeeper()
    const backend = await startBackend('t1')
    await registerTarget(await connectSession(zk.connectString), '/targets', 't1', backend.url)
    const { proc, ready } = await startCli(['proxy', '--zk', zk.connectString, '--listen', '127.0.0.1:0', '--admin', 'off', '--access-log', '--cache-ttl', '0'], 'proxy listening')
    const url = ready['url'] as string
    await until(async () => {
      const r = await request(`${url}/warm`)
      await r.body.dump()
      return r.statusCode === 200
    }, { timeoutMs: ms(15_000), message: 'routing' })
    const lines = (): ReturnType<typeof parseLogLines> => parseLogLines(proc.output()).filter(l => l.msg === 'request completed')
    // Flushed without waiting for the buffer to fill.
    await until(() => lines().length >= 1, { timeoutMs: ms(5000), message: 'the first access line' })
    for (let i = 0; i < 5; i++) {
      const r = await request(`${url}/page${i}`, i === 4 ? { method: 'POST', body: 'x' } : {})
      await r.body.dump()
    }
    const miss = await request(`${url}/x`, { method: 'TRACE' })
    await miss.body.dump()
    expect(await proc.stop('SIGTERM')).toBe(0)
    const seen = lines().map(l => [(l['req'] as { method: string }).method, (l['req'] as { url: string }).url, (l['res'] as { statusCode: number }).statusCode, l['target']])
    expect(seen.slice(-6)).toEqual([
      ['GET', '/page0', 200, 't1'], ['GET', '/page1', 200, 't1'], ['GET', '/page2', 200, 't1'], ['GET', '/page3', 200, 't1'],
      ['POST', '/page4', 200, 't1'], ['TRACE', '/x', 405, undefined]
    ])
    for (const l of lines()) expect(typeof l['responseTime']).toBe('number')
  })
})
