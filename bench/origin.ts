// The fixed origin for benchmarks: a bare node:http server answering every path and method
// with the same 1 KiB body from memory (a request body is read and dropped by node:http).
// Usage: node dist/bench/origin.js PORT NAME
import { serve } from './serve.js'

const port = Number(process.argv[2] ?? 0)
const name = process.argv[3] ?? 'origin'
const body = Buffer.alloc(1024, 'z')
serve(port, (req, res) => {
  res.writeHead(200, {
    'content-type': 'text/plain',
    'content-length': body.length,
    // Cacheable, so the cache-hit case can store it (the bundled replica sends the same);
    // paths under /no-store are not, so a proxy with its cache on forwards every request.
    'cache-control': req.url?.startsWith('/no-store') === true ? 'no-store' : 'public, max-age=120',
    'x-served-by': name
  })
  res.end(req.method === 'HEAD' ? undefined : body)
})
