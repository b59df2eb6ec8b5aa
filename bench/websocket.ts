// `npm run bench:ws`: WebSockets through zkproxy against the same echo target direct, in one
// run. Two figures:
// - round trips per second: WS_CLIENTS clients, each sending a 64-byte message and waiting for
//   its echo before the next, for WS_SECONDS per run; runs alternate direct / proxy for
//   WS_ROUNDS rounds, medians and the paired ratio (the target: proxy ≥ 0.7 × direct);
// - memory per idle tunnel: the proxy's RSS before and after WS_IDLE idle tunnels are open
//   (sampled until it settles), divided by their number, beside the same figure for a bare TCP
//   relay (tcp-relay.ts: two sockets piped both ways, nothing else) measured in the same run;
//   the difference is what zkproxy adds per tunnel (the target: < 20 KiB).
// Loopback only, bounded in count and time; every process is stopped by PID.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { request } from 'undici'
import { WebSocket, WebSocketServer } from 'ws'
import { startZooKeeper } from '../test/support/zookeeper.js'
import { freePort } from '../test/support/ports.js'
import { spawnTracked, stopAllTracked } from '../test/support/processes.js'
import { CreateMode, ZkSession } from '../src/zk/index.js'
import { median } from './stats.js'

const clients = Number(process.env['WS_CLIENTS'] ?? 20)
const seconds = Number(process.env['WS_SECONDS'] ?? 3)
const rounds = Number(process.env['WS_ROUNDS'] ?? 3)
const idle = Number(process.env['WS_IDLE'] ?? 2000)
const here = dirname(fileURLToPath(import.meta.url))
const cli = join(here, '..', 'src', 'cli', 'main.js')

function rssKiB (pid: number): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(text)?.[1] ?? NaN)
}

async function open (url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => { resolve() })
    ws.once('error', reject)
  })
  return ws
}

/** Round trips per second over `clients` sockets for `seconds`. */
async function roundTrips (url: string): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: clients }, async () => await open(url)))
  const payload = Buffer.alloc(64, 'm')
  const deadline = performance.now() + seconds * 1000
  let done = 0
  const started = performance.now()
  await Promise.all(sockets.map(async (ws) => {
    while (performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        ws.once('message', () => { resolve() })
        ws.send(payload)
      })
      done++
    }
  }))
  const elapsed = (performance.now() - started) / 1000
  for (const ws of sockets) ws.terminate()
  return done / elapsed
}

async function main (): Promise<void> {
  const zk = await startZooKeeper({ nodes: 1 })
  const echo = createServer((_req, res) => { res.end('echo target') })
  const wss = new WebSocketServer({ server: echo, perMessageDeflate: false })
  wss.on('connection', (ws) => { ws.on('message', (data, binary) => { ws.send(data, { binary }) }) })
  await new Promise<void>(resolve => echo.listen(0, '127.0.0.1', resolve))
  const echoPort = (echo.address() as AddressInfo).port
  const session = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 10_000, logger: pino({ level: 'silent' }) }).start()
  try {
    await session.waitConnected(10_000)
    await session.mkdirp('/targets')
    await session.create('/targets/echo', Buffer.from(JSON.stringify({ url: `http://127.0.0.1:${echoPort}`, requests: 0 })), CreateMode.EPHEMERAL)
    const port = await freePort()
    const proxy = spawnTracked(process.execPath, [cli, 'proxy', '--zk', zk.connectString, '--listen', `127.0.0.1:${port}`, '--admin', 'off',
      '--max-tunnels', String(idle + clients + 10)], { name: 'proxy' })
    await proxy.waitForOutput(/proxy listening/, 20_000)
    const deadline = Date.now() + 15_000
    for (;;) {
      const r = await request(`http://127.0.0.1:${port}/`).catch(() => undefined)
      await r?.body.dump()
      if (r?.statusCode === 200) break
      if (Date.now() > deadline) throw new Error('the proxy does not route')
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    const direct = `ws://127.0.0.1:${echoPort}/`
    const viaProxy = `ws://127.0.0.1:${port}/`
    await roundTrips(direct) // warm-up, not counted
    await roundTrips(viaProxy)
    const d: number[] = []
    const p: number[] = []
    for (let r = 0; r < rounds; r++) {
      // Alternating order: a drift of the machine's speed weighs on both sides.
      if (r % 2 === 0) { d.push(await roundTrips(direct)); p.push(await roundTrips(viaProxy)) } else { p.push(await roundTrips(viaProxy)); d.push(await roundTrips(direct)) }
      process.stderr.write(`round ${r + 1}/${rounds}: direct ${d.at(-1)!.toFixed(0)}, proxy ${p.at(-1)!.toFixed(0)} round trips/s\n`)
    }
    const paired = median(p.map((x, i) => x / d[i]!))

    // Memory per idle tunnel.
    const before = rssKiB(proxy.pid)
    const idleSockets: WebSocket[] = []
    for (let i = 0; i < idle; i++) idleSockets.push(await open(viaProxy))
    // Let allocation settle (the proxy's GC runs on its own schedule; sample until stable).
    let after = rssKiB(proxy.pid)
    for (let i = 0; i < 20; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      after = rssKiB(proxy.pid)
    }
    const perTunnel = (after - before) / idle
    for (const ws of idleSockets) ws.terminate()

    // The same for a bare relay: what two sockets and their pipes cost in a Node process.
    const relayPort = await freePort()
    const relay = spawnTracked(process.execPath, [join(here, 'tcp-relay.js'), String(relayPort), String(echoPort)], { name: 'relay' })
    await relay.waitForOutput(/^ready /m, 10_000)
    await roundTrips(`ws://127.0.0.1:${relayPort}/`) // the same warm-up as the proxy had
    const relayBefore = rssKiB(relay.pid)
    const relaySockets: WebSocket[] = []
    for (let i = 0; i < idle; i++) relaySockets.push(await open(`ws://127.0.0.1:${relayPort}/`))
    let relayAfter = rssKiB(relay.pid)
    for (let i = 0; i < 20; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      relayAfter = rssKiB(relay.pid)
    }
    const perRelay = (relayAfter - relayBefore) / idle
    for (const ws of relaySockets) ws.terminate()
    await relay.stop('SIGTERM', 3000)

    const lines = [
      `zkproxy WebSocket benchmark — ${new Date().toISOString()}, Node ${process.version}`,
      `command: WS_CLIENTS=${clients} WS_SECONDS=${seconds} WS_ROUNDS=${rounds} WS_IDLE=${idle} npm run bench:ws`,
      `${clients} clients, 64-byte messages, one in flight per client, ${seconds} s per run, ${rounds} rounds alternating`,
      `round trips/s   direct ${median(d).toFixed(0)}   through zkproxy ${median(p).toFixed(0)}`,
      `proxy / direct  ${(median(p) / median(d)).toFixed(2)} (paired ${paired.toFixed(2)})   target >= 0.7: ${paired >= 0.7 ? 'met' : 'NOT met'}`,
      `memory per idle tunnel: ${perTunnel.toFixed(1)} KiB of proxy RSS; a bare TCP relay: ${perRelay.toFixed(1)} KiB per connection (${idle} each)`,
      `zkproxy beyond the two sockets: ${(perTunnel - perRelay).toFixed(1)} KiB per tunnel   target < 20 KiB: ${perTunnel - perRelay < 20 ? 'met' : 'NOT met'}`
    ]
    process.stdout.write(lines.join('\n') + '\n')
    await proxy.stop('SIGTERM', 5000)
  } finally {
    for (const c of wss.clients) c.terminate()
    echo.closeAllConnections()
    echo.close()
    await session.close()
    await stopAllTracked()
    await zk.stop()
  }
}

await main()
