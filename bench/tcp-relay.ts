// A bare TCP relay: every accepted connection is piped both ways to one target. The WebSocket
// bench (websocket.ts) measures its memory per idle connection as what two sockets and their
// pipes cost in a Node process, so that zkproxy's own cost per tunnel can be told apart.
// Usage: node tcp-relay.js <port> <target-port>; prints "ready <port>".
import { connect, createServer } from 'node:net'

const [port, targetPort] = process.argv.slice(2).map(Number)
const server = createServer((client) => {
  const upstream = connect(targetPort!, '127.0.0.1')
  client.pipe(upstream)
  upstream.pipe(client)
  const close = (): void => { client.destroy(); upstream.destroy() }
  client.on('error', close)
  upstream.on('error', close)
  client.on('close', close)
  upstream.on('close', close)
})
server.listen(port, '127.0.0.1', () => { process.stdout.write(`ready ${port!}\n`) })
process.on('SIGTERM', () => { process.exit(0) })
