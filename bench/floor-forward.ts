// The floor of this stack: the least a proxy built on node:http and undici can do per request.
// Node's HTTP server hands each request straight to undici's dispatcher (round-robin over fixed
// upstreams) and the response straight back; no discovery, counting, failover, timeouts,
// request checks or metrics, and only the hop-by-hop header rules. zkproxy's request path is
// this plus its rules; the gap between them is what those rules cost, and the gap between
// this and nginx is what the runtime costs.
// Usage: node dist/bench/floor-forward.js PORT UPSTREAM_URL...
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Agent, type Dispatcher } from 'undici'
import { serve } from './serve.js'

const port = Number(process.argv[2] ?? 0)
const upstreams = process.argv.slice(3)
const agent = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 4000 })
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host'])
let next = 0

serve(port, (req: IncomingMessage, res: ServerResponse) => {
  const headers: string[] = []
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!)
  const handler: Dispatcher.DispatchHandler = {
    onConnect () {},
    onHeaders (status, rawHeaders, _resume) {
      const out: string[] = []
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i]!.toString('latin1').toLowerCase()
        if (!HOP.has(name)) out.push(name, rawHeaders[i + 1]!.toString('latin1'))
      }
      res.writeHead(status, out)
      return true
    },
    onData (chunk) { return res.write(chunk) },
    onComplete () { res.end() },
    onError () { if (res.headersSent) res.destroy(); else { res.writeHead(502); res.end() } }
  }
  agent.dispatch({ origin: upstreams[next++ % upstreams.length]!, path: req.url!, method: req.method as Dispatcher.HttpMethod, headers }, handler)
})
