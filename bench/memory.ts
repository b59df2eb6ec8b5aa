// `npm run bench:memory`: how much a large download grows the proxy's resident memory (the
// target: a 64 MB download through the proxy grows its RSS by under 32 MB). One proxy
// process per cache mode, a backend streaming the body from memory, ordinary small requests
// first (so start-up and heap sizing are not counted), then DOWNLOADS downloads one
// after the other; the figure is the largest growth of the proxy's RSS during a download
// (sampled every 10 ms) over its value just before, which is what streaming costs. Every process is stopped
// by PID. Env: MEMORY_BODY_MB (default 64), MEMORY_DOWNLOADS (5).
// "first" is the first download after 20,000 small requests; "median" over all downloads.
import { createServer, type Server } from 'node:http'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { request } from 'undici'
import { startZooKeeper } from '../test/support/zookeeper.js'
import { freePort } from '../test/support/ports.js'
import { spawnTracked, stopAllTracked, type TrackedProcess } from '../test/support/processes.js'
import { writeChunks } from '../test/support/backends.js'
import { CreateMode, ZkSession } from '../src/zk/index.js'
import { median } from './stats.js'

const bodyMb = Number(process.env['MEMORY_BODY_MB'] ?? 64)
const downloads = Number(process.env['MEMORY_DOWNLOADS'] ?? 5)
const here = dirname(fileURLToPath(import.meta.url))
const cli = join(here, '..', 'src', 'cli', 'main.js')
const MiB = 1024 * 1024

/** Peak (VmHWM) and current (VmRSS) resident set size of `pid`, MiB (Linux /proc). */
function rss (pid: number): { peak: number, now: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN)
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 }
}

async function backend (port: number): Promise<Server> {
  const chunk = Buffer.alloc(64 * 1024, 'd')
  const chunks = Math.ceil(bodyMb * MiB / chunk.length)
  const server = createServer((req, res) => {
    if (req.url !== '/big.bin') { res.end('small'); return }
    writeChunks(res, chunk, chunks)
  })
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  return server
}

async function get (url: string): Promise<number> {
  const r = await request(url)
  let n = 0
  for await (const c of r.body) n += (c as Buffer).length
  if (r.statusCode !== 200) throw new Error(`${url} answered ${r.statusCode}`)
  return n
}

async function measure (zk: string, targetsPath: string, mode: string, flags: string[]): Promise<number[]> {
  const port = await freePort()
  const proxy: TrackedProcess = spawnTracked(process.execPath, [cli, 'proxy', '--zk', zk, '--targets-path', targetsPath,
    '--listen', `127.0.0.1:${port}`, '--admin', 'off', ...flags], { name: `proxy-${mode}` })
  await proxy.waitForOutput(/proxy listening/, 20_000)
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 15_000
  for (;;) {
    try { await get(`${base}/small`); break } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  // Warm: ordinary traffic first (20,000 small requests, 50 at a time), so the heap has grown to
  // its working size as it would in service, and only the streaming is measured.
  let next = 0
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < 20_000) await get(`${base}/small?${next++}`)
  }))
  const growth: number[] = []
  for (let i = 0; i < downloads; i++) {
    // RSS sampled every 10 ms during the download: its highest value over the one just before.
    const before = rss(proxy.pid).now
    let highest = before
    const sampler = setInterval(() => { highest = Math.max(highest, rss(proxy.pid).now) }, 10)
    const n = await get(`${base}/big.bin`).finally(() => { clearInterval(sampler) })
    if (n < bodyMb * MiB) throw new Error(`short body: ${n} bytes`)
    growth.push(Math.max(highest, rss(proxy.pid).now) - before)
  }
  process.stderr.write(`${mode}: RSS growth during each download ${growth.map(g => g.toFixed(1)).join(', ')} MiB\n`)
  await proxy.stop('SIGTERM', 5000)
  return growth
}

async function main (): Promise<void> {
  const zk = await startZooKeeper({ nodes: 1 })
  let server: Server | undefined
  try {
    const port = await freePort()
    server = await backend(port)
    const session = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 10_000, logger: pino({ level: 'silent' }) }).start()
    await session.waitConnected(10_000)
    await session.mkdirp('/targets')
    await session.create('/targets/big', Buffer.from(JSON.stringify({ url: `http://127.0.0.1:${port}`, requests: 0 })), CreateMode.EPHEMERAL)
    const off = await measure(zk.connectString, '/targets', 'cache off', ['--cache-ttl', '0'])
    const on = await measure(zk.connectString, '/targets', 'cache on', ['--cache-ttl', '120'])
    const lines = [
      `zkproxy memory benchmark — ${new Date().toISOString()}, Node ${process.version}`,
      `${downloads} downloads of ${bodyMb} MiB each through one proxy process; the largest RSS growth during a download (median of downloads)`,
      `cache off (raw GET path)        first ${off[0]!.toFixed(1)} MiB, median ${median(off).toFixed(1)} MiB, max ${Math.max(...off).toFixed(1)} MiB   (target < 32)`,
      `cache on (stream-through miss)  first ${on[0]!.toFixed(1)} MiB, median ${median(on).toFixed(1)} MiB, max ${Math.max(...on).toFixed(1)} MiB   (target < 32)`
    ]
    process.stdout.write(lines.join('\n') + '\n')
    await session.close()
  } finally {
    server?.closeAllConnections()
    server?.close()
    await stopAllTracked()
    await zk.stop()
  }
}

await main()
