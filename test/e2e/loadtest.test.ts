// `npm run loadtest` (dist/scripts/loadtest.js) as a process against a real proxy in front of two
// `register`ed backends that name themselves in no header: who served what comes from the
// proxy's own counts, so the shares match what each backend saw, cache hits are counted, and
// `--json` prints one JSON document on stdout and nothing else.
import { createServer, type Server } from 'node:http'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCli } from '../support/cli.js'
import { spawnTracked, stopAllTracked } from '../support/processes.js'
import { ms, until } from '../support/until.js'
import { chrootConnect, closeAllSessions } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

const script = fileURLToPath(new URL('../../dist/scripts/loadtest.js', import.meta.url))

let zk: ZkCluster
let proxyUrl: string
let adminUrl: string
const backends: Array<{ name: string, server: Server, hits: number }> = []

beforeAll(async () => {
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first`)
  zk = await startZooKeeper({ nodes: 1 })
  const connect = await chrootConnect(zk.connectString, 'e2e-loadtest')
  for (const name of ['plain-a', 'plain-b']) {
    const b = { name, server: createServer(), hits: 0 }
    // A backend in any language: cacheable answers, and no x-served-by.
    b.server.on('request', (req, res) => {
      if (req.url !== '/healthz') b.hits++
      res.setHeader('cache-control', 'public, max-age=60')
      res.end('hello')
    })
    await new Promise<void>((resolve) => { b.server.listen({ host: '127.0.0.1', port: 0 }, resolve) })
    backends.push(b)
    const url = `http://127.0.0.1:${(b.server.address() as { port: number }).port}`
    await startCli(['register', '--zk', connect, '--url', url, '--name', name, '--session-timeout-ms', '4000'], 'register running')
  }
  const proxy = await startCli(['proxy', '--zk', connect, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--session-timeout-ms', '4000'], 'proxy listening')
  proxyUrl = String(proxy.ready['url'])
  adminUrl = String(proxy.ready['admin'])
  await until(async () => ((await (await fetch(`${adminUrl}/targets`)).json()) as unknown[]).length === 2, { timeoutMs: ms(15_000), message: 'the proxy to see both backends' })
})

afterAll(async () => {
  await stopAllTracked()
  for (const b of backends) {
    b.server.closeAllConnections()
    await new Promise<void>((resolve) => { b.server.close(() => { resolve() }) })
  }
  await closeAllSessions()
  await zk?.stop()
})

interface Report { requests: number, errors: number, non2xx: number, cache: { hits: number, misses: number, bypassed: number }, servedBy: Record<string, number> }

/** Runs the load test to its exit; stdout kept apart from stderr (where progress goes). */
async function loadtest (args: string[]): Promise<{ code: number | null, stdout: string, output: string }> {
  const proc = spawnTracked(process.execPath, [script, '--url', `${proxyUrl}/page`, '--admin', adminUrl, '--duration', '20', '--connections', '4', '--max-requests', '120', ...args], { name: 'loadtest' })
  let stdout = ''
  proc.child.stdout?.on('data', (c: Buffer) => { stdout += c.toString() })
  const timer = setTimeout(() => { proc.kill() }, ms(30_000))
  try {
    const { code } = await proc.exited
    return { code, stdout, output: proc.output() }
  } finally {
    clearTimeout(timer)
  }
}

describe('npm run loadtest', () => {
  it('--json: one JSON document on stdout; shares and cache hits from the proxy\'s counts', async () => {
    const seenBefore = backends.map(b => b.hits)
    const bypass = await loadtest(['--json', '--bypass-cache'])
    expect(bypass.code, bypass.output).toBe(0)
    const r = JSON.parse(bypass.stdout) as Report
    expect(r.errors + r.non2xx).toBe(0)
    expect(r.requests).toBe(120)
    // Exactly what each backend saw, though neither says who it is.
    expect(r.servedBy).toEqual({ 'plain-a': backends[0]!.hits - seenBefore[0]!, 'plain-b': backends[1]!.hits - seenBefore[1]! })
    expect(r.servedBy['plain-a']! + r.servedBy['plain-b']!).toBe(r.requests)
    expect(r.cache).toEqual({ hits: 0, misses: 0, bypassed: r.requests, stale: 0 })

    // With the cache on, one miss fills it (concurrent ones coalesce) and the rest are hits.
    const cached = await loadtest(['--json'])
    expect(cached.code, cached.output).toBe(0)
    const c = JSON.parse(cached.stdout) as Report
    const forwarded = Object.values(c.servedBy).reduce((a, b) => a + b, 0)
    expect(c.cache.hits + forwarded).toBe(c.requests)
    expect(c.cache.hits).toBeGreaterThan(c.requests / 2)
  })

  it('prints the table without --json, and stops before the load when --admin is wrong', async () => {
    const human = await loadtest([])
    expect(human.code, human.output).toBe(0)
    expect(human.stdout).toMatch(/cache {8}hits \d+/)
    expect(human.stdout).not.toContain('{')

    const wrong = await loadtest(['--admin', proxyUrl])
    expect(wrong.code).toBe(2)
    expect(wrong.stdout).toBe('')
    expect(wrong.output).toContain('--admin')
  })
})
