// Baseline for the proxy's own overhead: bare fastify + @fastify/reply-from forwarding
// round-robin to fixed upstreams, with none of zkproxy's discovery, counting or failover.
// Usage: node dist/bench/bare-forward.js PORT UPSTREAM_URL...
import fastify from 'fastify'
import replyFrom from '@fastify/reply-from'

const port = Number(process.argv[2] ?? 0)
const upstreams = process.argv.slice(3)
const app = fastify({ logger: false })
await app.register(replyFrom, { disableRequestLogging: true, disableCache: true })
let i = 0
app.all('/*', (_request, reply) => {
  const origin = upstreams[i++ % upstreams.length]!
  return reply.from(undefined, { getUpstream: () => origin, retryDelay: () => null })
})
await app.listen({ host: '127.0.0.1', port })
process.stdout.write(`ready ${port}\n`)
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
