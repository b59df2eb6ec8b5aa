// Real upstream servers for proxy tests: node:http on 127.0.0.1 port 0, counting hits per path,
// answering with x-served-by, closed in teardown. Handlers can be swapped per test.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

export interface Backend {
  readonly name: string
  readonly url: string
  readonly port: number
  readonly server: Server
  /** Requests seen, in order, with their headers and bodies. */
  readonly seen: Array<{ method: string, url: string, headers: IncomingMessage['headers'], body: Buffer }>
  hits (path?: string): number
  handler: Handler
  close (): Promise<void>
}

const open = new Set<Backend>()

export const defaultHandler: Handler = (req, res) => {
  res.setHeader('content-type', 'text/plain')
  res.end(`hello from ${res.getHeader('x-served-by') as string} ${req.url ?? ''}`)
}

/**
 * Streams `chunks` copies of `chunk` as one response with its Content-Length, only as fast as
 * the socket takes them (write until it says wait, resume on drain): a large body from memory.
 */
export function writeChunks (res: ServerResponse, chunk: Buffer, chunks: number): void {
  res.setHeader('content-type', 'application/octet-stream')
  res.setHeader('content-length', String(chunks * chunk.length))
  let i = 0
  const write = (): void => {
    while (i < chunks) {
      i++
      if (!res.write(chunk)) { res.once('drain', write); return }
    }
    res.end()
  }
  write()
}

export async function startBackend (name: string, handler: Handler = defaultHandler): Promise<Backend> {
  const seen: Backend['seen'] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      res.setHeader('x-served-by', name)
      backend.handler(req, res, body)
    })
  })
  server.keepAliveTimeout = 10_000
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const backend: Backend = {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    handler,
    hits: (path) => path === undefined ? seen.length : seen.filter(s => s.url === path).length,
    close: async () => {
      open.delete(backend)
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
  open.add(backend)
  return backend
}

export async function closeAllBackends (): Promise<void> {
  await Promise.all([...open].map(async b => { await b.close() }))
}
