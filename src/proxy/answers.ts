// The proxy's own answers (errors it produces rather than forwards), one shape for all:
// {"error":"no_targets","code":"ZKPROXY_ERR_PROXY_NO_TARGETS","message":"..."} with the status
// from the error catalogue, never cached, and Connection: close when the request body was not
// read (the connection cannot be reused then). `sendProblem` answers through fastify's reply,
// `writeProblem` through Node's response (the raw forwarding path, fast-forward.ts).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import { errorCatalogue, type ErrorCode, type ErrorSpec } from '../errors.js'

const JSON_TYPE = 'application/json; charset=utf-8'

function problemBody (spec: ErrorSpec, code: ErrorCode, message: string | undefined, extra: Record<string, unknown> | undefined): string {
  return JSON.stringify({ error: spec.error ?? 'error', code, message: message ?? spec.message, ...extra })
}

export function sendProblem (reply: FastifyReply, code: ErrorCode, message?: string, extra?: Record<string, unknown>): void {
  const spec: ErrorSpec = errorCatalogue[code]
  if (!reply.request.raw.complete) reply.header('connection', 'close')
  reply.code(spec.statusCode ?? 500)
    .header('content-type', JSON_TYPE)
    .header('cache-control', 'no-store')
    .send(problemBody(spec, code, message, extra))
}

export function writeProblem (req: IncomingMessage, res: ServerResponse, code: ErrorCode, message?: string, extra?: Record<string, unknown>): void {
  const spec: ErrorSpec = errorCatalogue[code]
  const body = Buffer.from(problemBody(spec, code, message, extra))
  const fields = ['content-type', JSON_TYPE, 'cache-control', 'no-store', 'content-length', String(body.length)]
  if (!req.complete) fields.push('connection', 'close')
  res.writeHead(spec.statusCode ?? 500, fields)
  res.end(req.method === 'HEAD' ? undefined : body)
}
