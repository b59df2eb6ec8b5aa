// WebSockets through the proxy (src/proxy/tunnel.ts), the Host the target sees, and streams
// whose head must not wait for their first event. Real targets (a `ws` echo server on
// node:http), a real ZooKeeper, real sockets.
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { request } from 'undici'
import { useZooKeeper } from '../support/suite.js'
import { ms, until } from '../support/until.js'
import { connectSession, uniquePath } from '../support/zk-client.js'
import { registerTarget, startTestProxy } from '../support/proxy.js'
import { freePort } from '../support/ports.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'
import type { ZkSession } from '../../src/zk/index.js'

const zkCluster = useZooKeeper()

interface EchoTarget {
  readonly name: string
  readonly url: string
  readonly server: Server
  readonly wss: WebSocketServer
  /** Handshakes accepted, with the Host the target saw. */
  readonly hosts: string[]
  close: () => Promise<void>
}

const opened: EchoTarget[] = []
const clients: WebSocket[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) {
    // A client whose handshake was refused reports the terminate as an error: expected here.
    c.on('error', () => {})
    c.terminate()
  }
  await Promise.all(opened.splice(0).map(async t => { await t.close() }))
})

/** A WebSocket echo server; `refuse` answers the upgrade with a plain 400 instead. */
async function echoTarget (name: string, opts: { refuse?: boolean } = {}): Promise<EchoTarget> {
  const hosts: string[] = []
  const server = createServer((req, res) => {
    hosts.push(req.headers.host ?? '')
    res.setHeader('x-served-by', name)
    res.end(`plain ${req.headers.host ?? ''}`)
  })
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 * 1024 })
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    hosts.push(req.headers.host ?? '')
    if (opts.refuse === true) {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 7\r\nconnection: close\r\n\r\nno ws!\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => { ws.send(data, { binary: isBinary }) })
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const t: EchoTarget = {
    name,
    url: `http://127.0.0.1:${port}`,
    server,
    wss,
    hosts,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
  opened.push(t)
  return t
}

async function setup (targets: EchoTarget[], flags: string[] = []): Promise<{ proxy: ProxyRuntime, session: ZkSession, path: string }> {
  const path = uniquePath('targets')
  const session = await connectSession(zkCluster().connectString)
  for (const t of targets) await registerTarget(session, path, t.name, t.url)
  const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--cache-ttl', '0', ...flags])
  await until(() => proxy.router.targets.length === targets.length)
  return { proxy, session, path }
}

function wsUrl (proxy: ProxyRuntime, path = '/chat'): string {
  return `${proxy.url.replace(/^http/, 'ws')}${path}`
}

async function connectWs (url: string): Promise<WebSocket> {
  const ws = new WebSocket(url)
  clients.push(ws)
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => { resolve() })
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => { reject(new Error(`unexpected ${res.statusCode ?? 0}`)) })
  })
  return ws
}

function nextMessage (ws: WebSocket): Promise<{ data: Buffer, binary: boolean }> {
  return new Promise((resolve) => { ws.once('message', (data, binary) => { resolve({ data: data as Buffer, binary }) }) })
}

function closed (ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(1006)
  return new Promise((resolve) => { ws.once('close', (code) => { resolve(code) }) })
}

const tunnelsOpen = (proxy: ProxyRuntime): number => proxy.server.tunnels.stats().open
const inFlight = (proxy: ProxyRuntime): number => proxy.router.targets.reduce((n, t) => n + t.inFlight, 0)

describe('WebSocket tunnels', () => {
  it('handshake, 100 text and binary messages both ways, a 1 MB message, close from the client', async () => {
    const { proxy } = await setup([await echoTarget('a')])
    const ws = await connectWs(wsUrl(proxy))
    for (let i = 0; i < 100; i++) {
      const binary = i % 2 === 1
      const payload = binary ? Buffer.from([i, 255 - i, 0, 7]) : `message ${i}`
      const reply = nextMessage(ws)
      ws.send(payload, { binary })
      const got = await reply
      expect(got.binary).toBe(binary)
      expect(binary ? [...got.data] : got.data.toString()).toEqual(binary ? [...(payload as Buffer)] : payload)
    }
    const big = Buffer.alloc(1024 * 1024, 7)
    big[12345] = 1
    const reply = nextMessage(ws)
    ws.send(big)
    expect((await reply).data.equals(big)).toBe(true)
    expect(tunnelsOpen(proxy)).toBe(1)
    const stats = proxy.server.tunnels.stats()
    expect(stats.bytesUp).toBeGreaterThan(1024 * 1024)
    expect(stats.bytesDown).toBeGreaterThan(1024 * 1024)
    ws.close(1000, 'bye')
    expect(await closed(ws)).toBe(1000)
    await until(() => tunnelsOpen(proxy) === 0 && inFlight(proxy) === 0, { message: 'tunnel gone, nothing in flight' })
    // Counted once per tunnel.
    expect(proxy.router.targets[0]!.requests).toBe(1)
  })

  it('a close from the target side closes the client too', async () => {
    const target = await echoTarget('a')
    const { proxy } = await setup([target])
    const ws = await connectWs(wsUrl(proxy))
    await until(() => target.wss.clients.size === 1, { message: 'target side open' })
    for (const c of target.wss.clients) c.close(4001, 'server says bye')
    expect(await closed(ws)).toBe(4001)
    await until(() => tunnelsOpen(proxy) === 0, { message: 'tunnel gone' })
  })

  it('20 sockets spread over 2 targets by least use', async () => {
    const a = await echoTarget('a')
    const b = await echoTarget('b')
    const { proxy } = await setup([a, b])
    for (let i = 0; i < 20; i++) await connectWs(wsUrl(proxy))
    expect(a.wss.clients.size + b.wss.clients.size).toBe(20)
    expect(Math.abs(a.wss.clients.size - b.wss.clients.size)).toBeLessThanOrEqual(2)
    expect(proxy.server.tunnels.perTarget()).toEqual(new Map([['a', a.wss.clients.size], ['b', b.wss.clients.size]]))
  })

  it('a dead target (refusing, znode still there) costs no handshake: failover before the 101', async () => {
    const live = await echoTarget('live')
    const deadPort = await freePort()
    const path = uniquePath('targets')
    const session = await connectSession(zkCluster().connectString)
    await registerTarget(session, path, 'dead', `http://127.0.0.1:${deadPort}`)
    await registerTarget(session, path, 'live', live.url)
    const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path, '--cache-ttl', '0'])
    await until(() => proxy.router.targets.length === 2)
    for (let i = 0; i < 6; i++) {
      const ws = await connectWs(wsUrl(proxy))
      const reply = nextMessage(ws)
      ws.send(`hi ${i}`)
      expect((await reply).data.toString()).toBe(`hi ${i}`)
    }
    expect(live.wss.clients.size).toBe(6)
  })

  it('a target that answers the upgrade with 400 gives the client that 400', async () => {
    const { proxy } = await setup([await echoTarget('no', { refuse: true })])
    const ws = new WebSocket(wsUrl(proxy))
    clients.push(ws)
    ws.on('error', () => {})
    const status = await new Promise<number>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => {
        let body = ''
        res.on('data', (c: Buffer) => { body += c.toString() })
        res.on('end', () => { expect(body).toBe('no ws!\n'); resolve(res.statusCode ?? 0) })
      })
      ws.once('open', () => { reject(new Error('opened')) })
    })
    expect(status).toBe(400)
    await until(() => tunnelsOpen(proxy) === 0 && inFlight(proxy) === 0, { message: 'nothing left open' })
  })

  it('--tunnel-idle-timeout-ms closes both sides after silence either way', async () => {
    const target = await echoTarget('a')
    const { proxy } = await setup([target], ['--tunnel-idle-timeout-ms', '300'])
    const ws = await connectWs(wsUrl(proxy))
    // Traffic keeps it open past the timeout...
    for (let i = 0; i < 4; i++) {
      const reply = nextMessage(ws)
      ws.send('ping')
      await reply
      await new Promise(resolve => setTimeout(resolve, 120))
    }
    expect(ws.readyState).toBe(WebSocket.OPEN)
    // ...silence does not.
    expect(await closed(ws)).toBe(1006)
    await until(() => target.wss.clients.size === 0, { message: 'the target side closed too' })
    expect(proxy.server.tunnels.stats().closed.idle).toBe(1)
  })

  it('--max-tunnels: one more upgrade gets 503 too_many_tunnels', async () => {
    const { proxy } = await setup([await echoTarget('a')], ['--max-tunnels', '2'])
    await connectWs(wsUrl(proxy))
    await connectWs(wsUrl(proxy))
    await expect(connectWs(wsUrl(proxy))).rejects.toThrow(/unexpected 503/)
    expect(proxy.server.tunnels.stats().refused).toBe(1)
  })

  it('SIGTERM of the proxy: new upgrades refused, open tunnels run until the drain ends, then close; the proxy exits', async () => {
    const { proxy } = await setup([await echoTarget('a')], ['--drain-ms', '400'])
    const ws = await connectWs(wsUrl(proxy))
    const started = performance.now()
    const stopping = proxy.stop()
    // Still working during the drain.
    const reply = nextMessage(ws)
    ws.send('during the drain')
    expect((await reply).data.toString()).toBe('during the drain')
    expect(await closed(ws)).toBe(1006)
    await stopping
    const took = performance.now() - started
    expect(took).toBeGreaterThanOrEqual(350)
    expect(took).toBeLessThan(400 + 1000)
    expect(tunnelsOpen(proxy)).toBe(0)
  })

  it('a target that leaves the registry (its replica got SIGTERM) keeps its open tunnels running', async () => {
    const target = await echoTarget('a')
    const other = await echoTarget('b')
    const { proxy, session, path } = await setup([target])
    const ws = await connectWs(wsUrl(proxy))
    await registerTarget(session, path, 'b', other.url)
    await session.delete(`${path}/a`, -1)
    await until(() => proxy.router.targets.length === 1 && proxy.router.targets[0]!.name === 'b', { message: 'a left the view' })
    const reply = nextMessage(ws)
    ws.send('still here')
    expect((await reply).data.toString()).toBe('still here')
    expect(target.wss.clients.size).toBe(1)
  })
})

describe('tunnels on the admin listener', () => {
  it('/targets and /metrics show open tunnels per target, bytes each way, and why tunnels closed', async () => {
    const { proxy } = await setup([await echoTarget('a')], ['--admin', '127.0.0.1:0'])
    const ws = await connectWs(wsUrl(proxy))
    const reply = nextMessage(ws)
    ws.send('12345')
    await reply
    const rows = JSON.parse(await (await request(`${proxy.admin!.url}/targets`)).body.text()) as Array<{ name: string, tunnels: number, inFlight: number }>
    expect(rows).toMatchObject([{ name: 'a', tunnels: 1, inFlight: 1 }])
    ws.close()
    await until(() => tunnelsOpen(proxy) === 0, { message: 'closed' })
    const text = await (await request(`${proxy.admin!.url}/metrics`)).body.text()
    expect(text).toMatch(/^zkproxy_tunnels_open 0$/m)
    expect(text).toMatch(/^zkproxy_tunnels_opened_total 1$/m)
    // A WebSocket close handshake ends with the target closing TCP, so either side may be first.
    expect(text).toMatch(/^zkproxy_tunnels_closed_total\{reason="(client|target)"\} 1$/m)
    expect(text).toMatch(/^zkproxy_tunnel_bytes_total\{direction="up"\} \d+$/m)
  })
})

describe('the Host a target sees', () => {
  it('is the client\'s by default, and the target\'s own with --upstream-host target; X-Forwarded-Host stays', async () => {
    for (const [flags, expected] of [[[], 'shop.example:9000'], [['--upstream-host', 'target'], undefined]] as const) {
      const target = await echoTarget(`h${flags.length}`)
      const { proxy } = await setup([target], [...flags])
      const r = await request(`${proxy.url}/x`, { headers: { host: 'shop.example:9000' } })
      const body = await r.body.text()
      const seen = expected ?? new URL(target.url).host
      expect(body).toBe(`plain ${seen}`)
      // WebSocket handshakes too.
      await connectWs(wsUrl(proxy))
      expect(target.hosts.at(-1)).toBe(expected === undefined ? new URL(target.url).host : `127.0.0.1:${new URL(proxy.url).port}`)
    }
  })
})

describe('streams start when they start', () => {
  it('a server-sent events target: the head arrives at once, each event when it is sent', async () => {
    let send: ((s: string) => void) | undefined
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.flushHeaders()
      send = (s) => { res.write(s) }
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const path = uniquePath('targets')
      const session = await connectSession(zkCluster().connectString)
      await registerTarget(session, path, 'sse', url)
      const proxy = await startTestProxy(zkCluster().connectString, ['--targets-path', path])
      await until(() => proxy.router.targets.length === 1)
      const r = await request(`${proxy.url}/events`, { headersTimeout: ms(2000) })
      // The head came before any event was sent.
      expect(r.statusCode).toBe(200)
      expect(r.headers['content-type']).toBe('text/event-stream')
      await until(() => send !== undefined, { message: 'the target is streaming' })
      const reader = r.body[Symbol.asyncIterator]()
      send!('data: one\n\n')
      expect(Buffer.from((await reader.next()).value as Buffer).toString()).toBe('data: one\n\n')
      send!('data: two\n\n')
      expect(Buffer.from((await reader.next()).value as Buffer).toString()).toBe('data: two\n\n')
      r.body.destroy()
      await until(() => proxy.router.targets[0]!.inFlight === 0, { message: 'released' })
    } finally {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  })
})
