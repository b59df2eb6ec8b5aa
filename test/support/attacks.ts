// Hostile clients as code, shared by test/security/hostile-clients.test.ts and `npm run attack`
// (scripts/attack.ts): raw sockets on loopback, each attack bounded in count, every socket and
// timer it made ended by stop(). Attackers connect from ATTACKER_ADDRESS (another loopback
// address) so that a well-behaved client on 127.0.0.1 is a different client to the proxy, as
// it would be in the wild.
import { connect, type Socket } from 'node:net'
import { request } from 'undici'

/** The attackers' source address: any 127/8 address is loopback on Linux. */
export const ATTACKER_ADDRESS = '127.0.0.2'

export interface Target { readonly host: string, readonly port: number, readonly hostHeader: string }

export interface Attack {
  readonly name: string
  /** Open attacker sockets. */
  readonly open: () => number
  /** Responses (status lines) the attackers received, when they read. */
  readonly statuses: Map<number, number>
  /** Ends every socket and timer of the attack. */
  stop: () => void
}

class Sockets {
  readonly all = new Set<Socket>()
  readonly timers = new Set<NodeJS.Timeout>()
  readonly statuses = new Map<number, number>()

  open (t: Target, reads: boolean): Socket {
    const s = connect({ host: t.host, port: t.port, localAddress: ATTACKER_ADDRESS })
    this.all.add(s)
    s.on('error', () => {})
    s.on('close', () => { this.all.delete(s) })
    if (reads) {
      let tail = ''
      s.on('data', (c: Buffer) => {
        // Status lines only; a line split across chunks is caught by keeping a short tail.
        const text = tail + c.toString('latin1')
        for (const m of text.matchAll(/HTTP\/1\.1 (\d{3}) /g)) {
          const code = Number(m[1])
          this.statuses.set(code, (this.statuses.get(code) ?? 0) + 1)
        }
        tail = text.slice(-16)
      })
    } else {
      s.pause()
    }
    return s
  }

  every (ms: number, fn: () => void): void {
    const t = setInterval(fn, ms)
    this.timers.add(t)
  }

  attack (name: string): Attack {
    return {
      name,
      open: () => this.all.size,
      statuses: this.statuses,
      stop: () => {
        for (const t of this.timers) clearInterval(t)
        this.timers.clear()
        for (const s of this.all) s.destroy()
        this.all.clear()
      }
    }
  }
}

/** `clients` connections each asking for `path` (a large uncacheable answer) and never reading. */
export function nonReadingClients (t: Target, clients: number, path: string): Attack {
  const s = new Sockets()
  for (let i = 0; i < clients; i++) s.open(t, false).write(`GET ${path}?c=${i} HTTP/1.1\r\nHost: ${t.hostHeader}\r\n\r\n`)
  return s.attack('clients that never read a large answer')
}

/** `clients` chunked uploads to `path` sending one byte every `intervalMs`. */
export function slowUploads (t: Target, clients: number, path: string, intervalMs: number): Attack {
  const s = new Sockets()
  const socks: Socket[] = []
  for (let i = 0; i < clients; i++) {
    const sock = s.open(t, true)
    sock.write(`POST ${path} HTTP/1.1\r\nHost: ${t.hostHeader}\r\nTransfer-Encoding: chunked\r\n\r\n`)
    socks.push(sock)
  }
  s.every(intervalMs, () => { for (const sock of socks) if (!sock.destroyed) sock.write('1\r\nx\r\n') })
  return s.attack('uploads at one byte per interval')
}

/** One connection pipelining `requests` GETs of `path` (a slow endpoint), reading the answers. */
export function pipelinedGets (t: Target, requests: number, path: string): Attack {
  const s = new Sockets()
  let batch = ''
  for (let i = 0; i < requests; i++) batch += `GET ${path}?p=${i} HTTP/1.1\r\nHost: ${t.hostHeader}\r\n\r\n`
  s.open(t, true).write(batch)
  return s.attack('pipelined GETs to a slow endpoint on one connection')
}

/**
 * `clients` connections that reset right after sending: a POST with its body and trailing
 * bytes, a request cut mid-body, a request cut mid-headers, in turn.
 */
export function resettingClients (t: Target, clients: number, path: string): Attack {
  const s = new Sockets()
  const shapes = [
    `POST ${path} HTTP/1.1\r\nHost: ${t.hostHeader}\r\nContent-Length: 5\r\n\r\nhelloGARBAGE`,
    `POST ${path} HTTP/1.1\r\nHost: ${t.hostHeader}\r\nContent-Length: 100\r\n\r\nhalf`,
    `GET ${path} HTTP/1.1\r\nHost: ${t.hostHeader}\r\nX-Partial: `
  ]
  for (let i = 0; i < clients; i++) {
    const sock = s.open(t, false)
    sock.once('connect', () => { sock.write(shapes[i % shapes.length]!, () => { sock.resetAndDestroy() }) })
  }
  return s.attack('clients that reset mid-request')
}

/** One connection pipelining `requests` GETs of `path`, never reading, gone once they are sent. */
export function pipelineAndLeave (t: Target, requests: number, path: string): Attack {
  const s = new Sockets()
  let batch = ''
  for (let i = 0; i < requests; i++) batch += `GET ${path}?l=${i} HTTP/1.1\r\nHost: ${t.hostHeader}\r\n\r\n`
  const sock = s.open(t, false)
  sock.write(batch, () => { sock.destroy() })
  return s.attack('a client that pipelines and leaves')
}

/** What a well-behaved client saw: answers, how many under a second, failures, the slowest. */
export interface ProbeReport { answers: number, underOneSecond: number, failures: number, worstMs: number }

/** `count` GETs of `url` one after another from 127.0.0.1, each given at most `timeoutMs`. */
export async function probe (url: string, count: number, timeoutMs = 5000): Promise<ProbeReport> {
  const r: ProbeReport = { answers: 0, underOneSecond: 0, failures: 0, worstMs: 0 }
  for (let i = 0; i < count; i++) {
    const started = performance.now()
    try {
      const res = await request(url, { signal: AbortSignal.timeout(timeoutMs), reset: true })
      await res.body.dump()
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
      r.answers++
    } catch {
      r.failures++
    }
    const took = performance.now() - started
    r.worstMs = Math.max(r.worstMs, took)
    if (took < 1000) r.underOneSecond++
  }
  return r
}

/** Resident memory of this process, in MiB. */
export function rssMiB (): number {
  return process.memoryUsage().rss / (1024 * 1024)
}
