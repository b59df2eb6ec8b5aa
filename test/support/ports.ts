// Free loopback ports for servers that must be told their port up front (ZooKeeper's config
// file cannot say "port 0"). There is an unavoidable window between closing our probe socket
// and the real server binding it; remembering recent answers at least keeps two calls in this
// process from handing out the same port.

import { createServer } from 'node:net'

const recentlyGiven = new Set<number>()
const RECENT_LIMIT = 4096

async function listenOnce (): Promise<{ port: number, close: () => Promise<void> }> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('unexpected server address')
  return {
    port: address.port,
    close: async () => await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

function remember (port: number): void {
  recentlyGiven.add(port)
  if (recentlyGiven.size > RECENT_LIMIT) {
    const oldest = recentlyGiven.values().next().value
    if (oldest !== undefined) recentlyGiven.delete(oldest)
  }
}

/** `n` distinct ports that were free on 127.0.0.1 a moment ago. */
export async function freePorts (n: number): Promise<number[]> {
  if (!Number.isInteger(n) || n < 0) throw new Error(`freePorts: bad count ${n}`)
  // Hold every probe open until all are found so the kernel cannot repeat itself.
  const held: Array<{ port: number, close: () => Promise<void> }> = []
  const ports: number[] = []
  try {
    for (let tries = 0; ports.length < n; tries++) {
      if (tries > n + 100) throw new Error(`freePorts: could not find ${n} unused ports`)
      const probe = await listenOnce()
      held.push(probe)
      if (!recentlyGiven.has(probe.port)) ports.push(probe.port)
    }
  } finally {
    await Promise.all(held.map(async (p) => await p.close()))
  }
  for (const p of ports) remember(p)
  return ports
}

/** One port that was free on 127.0.0.1 a moment ago. */
export async function freePort (): Promise<number> {
  const [port] = await freePorts(1)
  if (port === undefined) throw new Error('freePort: no port')
  return port
}
