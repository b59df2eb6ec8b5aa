// The bench's own servers (origin.ts, ceiling.ts, floor-forward.ts): a node:http server on 127.0.0.1 with
// long keep-alive that prints "ready PORT" for bench/run.ts and exits on SIGTERM.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

export function serve (port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): void {
  const server = createServer(handler)
  server.keepAliveTimeout = 60_000
  server.listen(port, '127.0.0.1', () => {
    const a = server.address()
    process.stdout.write(`ready ${typeof a === 'object' && a !== null ? a.port : port}\n`)
  })
  process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0) })
}
