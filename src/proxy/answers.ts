// The proxy's own answers (errors it produces rather than forwards), one shape for all:
// {"error":"no_targets","code":"ZKPROXY_ERR_PROXY_NO_TARGETS","message":"..."} with the status
// from the error catalogue, never cached, and Connection: close when the request body was not
// read (the connection cannot be reused then).
import type { FastifyReply } from 'fastify'
import { errorCatalogue, type ErrorCode, type ErrorSpec } from '../errors.js'

export function sendProblem (reply: FastifyReply, code: ErrorCode, message?: string, extra?: Record<string, unknown>): void {
  const spec: ErrorSpec = errorCatalogue[code]
  if (!reply.request.raw.complete) reply.header('connection', 'close')
  reply.code(spec.statusCode ?? 500)
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(JSON.stringify({ error: spec.error ?? 'error', code, message: message ?? spec.message, ...extra }))
}
