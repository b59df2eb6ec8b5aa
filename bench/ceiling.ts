// The ceiling a cache hit is measured against: a bare node:http server sending exactly the
// head fields and body of one zkproxy cache hit, captured by bench/cases.ts, from memory, for
// every request (the most one Node process can do for a hit).
// Usage: node dist/bench/ceiling.js PORT FILE   (FILE: JSON { status, fields: [name, value, …], body: base64 })
import { serve } from './serve.js'
import { readFileSync } from 'node:fs'

const port = Number(process.argv[2] ?? 0)
const spec = JSON.parse(readFileSync(process.argv[3] ?? '', 'utf8')) as { status: number, fields: string[], body: string }
const body = Buffer.from(spec.body, 'base64')
const fields = spec.fields
serve(port, (req, res) => {
  res.writeHead(spec.status, fields)
  res.end(req.method === 'HEAD' ? undefined : body)
})
