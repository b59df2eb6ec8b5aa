// The proxy's own answers (errors it produces rather than forwards), one shape for all:
// {"error":"no_targets","code":"ZKPROXY_ERR_PROXY_NO_TARGETS","message":"..."} with the status
// from the error catalogue, never cached, and Connection: close when the request body was not
// read (the connection cannot be reused then).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { errorCatalogue, type ErrorCode, type ErrorSpec } from '../errors.js'

const JSON_TYPE = 'application/json; charset=utf-8'

export function writeProblem (req: IncomingMessage, res: ServerResponse, code: ErrorCode, message?: string, extra?: Record<string, unknown>,
  moreFields?: readonly string[]): void {
  // The client went away, or another answer already started: nothing to say any more.
  if (res.headersSent || res.destroyed) return
  const spec: ErrorSpec = errorCatalogue[code]
  const body = Buffer.from(JSON.stringify({ error: spec.error ?? 'error', code, message: message ?? spec.message, ...extra }))
  const fields = ['content-type', JSON_TYPE, 'cache-control', 'no-store', 'content-length', String(body.length)]
  if (moreFields !== undefined) fields.push(...moreFields)
  if (!req.complete && !fields.includes('connection')) fields.push('connection', 'close')
  res.writeHead(spec.statusCode ?? 500, fields)
  res.end(req.method === 'HEAD' ? undefined : body)
}

export function noTargetsMessage (hasView: boolean): string {
  return hasView ? 'no live target is registered' : 'no view of the targets yet (waiting for ZooKeeper)'
}
