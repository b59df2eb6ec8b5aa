// The bundled replica's HTTP side: a plain static file server (docs/operations.md "Replicas").
// Registration, draining and listening belong to the caller; this file only builds the app.

import { realpathSync } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import path from 'node:path'
import type { Socket } from 'node:net'

import fastifyStatic from '@fastify/static'
import fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Logger } from 'pino'

export interface StaticServerOptions {
  /** Folder to serve; must exist. Symlinks inside it may not lead outside it. */
  dir: string
  /** Target name, sent as `x-served-by` so clients and tests can see which replica answered. */
  name: string
  /** `Cache-Control: public, max-age=N` on files; the proxy's cache honours it. */
  maxAgeSec: number
  logger: Logger
}

const INDEX_FILE = 'index.html'

/**
 * Builds (does not start) the static server of `zkproxy replica`.
 * Throws when `dir` does not exist, so a typo in `--dir` fails at start-up, not per request.
 */
export function createStaticServer (opts: StaticServerOptions): FastifyInstance {
  if (!Number.isSafeInteger(opts.maxAgeSec) || opts.maxAgeSec < 0) {
    throw new RangeError(`maxAgeSec must be a non-negative integer, got ${opts.maxAgeSec}`)
  }
  // The real path, so the containment check below compares like with like even when the
  // folder itself is reached through a symlink (e.g. /srv/current → /srv/releases/42).
  const root = realpathSync(path.resolve(opts.dir))
  const servedBy = headerSafe(opts.name)

  // Widened to fastify's logger type so the app is a plain FastifyInstance for the caller.
  const loggerInstance: FastifyBaseLogger = opts.logger
  const app = fastify({
    loggerInstance,
    // One info line per request would drown the replica's own logs; the proxy logs requests.
    // Through logController: the top-level `disableRequestLogging` is deprecated (FSTDEP023).
    logController: new LogController({ disableRequestLogging: true }),
    // Malformed requests never reach a route; answer them ourselves so they carry the header too.
    clientErrorHandler: (err, socket) => { answerClientError(err, socket, servedBy, opts.logger) }
  })

  // x-served-by goes on every response, set at two levels. On the socket: some answers are
  // written by fastify straight to the raw response, skipping every hook (a malformed
  // percent-encoding's 400, the 503s while closing); headers set here are merged into them.
  app.server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('x-served-by', servedBy)
  })
  // In onSend, which runs for everything fastify sends itself (files, 304s, 404s, errors),
  // including `inject()`, which never goes through the socket.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-served-by', servedBy)
    return payload
  })

  app.get('/healthz', async (_request, reply) => {
    // Health answers must be live: a cached "ok" would hide a dead replica.
    reply.header('cache-control', 'no-store')
    return { status: 'ok', name: opts.name }
  })

  // No Cache-Control on 404s: the proxy's cache then stores them only when the operator
  // asks for it (`--cache-default-ttl`), since a file may be added before the next revision.
  app.setNotFoundHandler(async (_request, reply) => {
    return reply.code(404).send({ error: 'not_found', message: 'Not Found' })
  })

  // `serve: false`: the plugin only provides `reply.sendFile` (send + ETag, Last-Modified,
  // conditional requests, ranges, content types); the route below decides what may be sent.
  void app.register(fastifyStatic, {
    root,
    serve: false,
    index: [INDEX_FILE],
    // `/docs` → 301 `/docs/`, so relative links in docs/index.html resolve (as nginx does).
    redirect: true,
    // Never serve .git, .env and friends that happen to sit in the folder.
    dotfiles: 'ignore',
    cacheControl: true,
    maxAge: opts.maxAgeSec * 1000,
    etag: true,
    lastModified: true
  })

  app.route({
    method: ['GET', 'HEAD'],
    url: '/*',
    handler: async (request, reply) => {
      // The router has already percent-decoded the wildcard once; send() decodes the
      // re-encoded form again, so the file name it opens is exactly this string.
      const relative = (request.params as { '*': string })['*']
      const verdict = await locate(root, relative)
      if (verdict === 'bad-request') {
        return reply.code(400).send({ error: 'bad_request', message: 'Bad Request' })
      }
      if (verdict === 'not-found') return reply.callNotFound()
      return reply.sendFile('/' + relative)
    }
  })

  return app
}

type Verdict = 'ok' | 'not-found' | 'bad-request'

/**
 * Decides whether `relative` may be handed to send(). send() already refuses `..` (with a
 * 403 that would reveal the attempt) and NUL bytes, but it follows symlinks anywhere; here
 * traversal becomes a plain 404 and a path whose real location is outside `root` is refused.
 * A symlink swapped between this check and the open is not covered: the folder is the
 * operator's, and this guards against links left in it, not against a hostile local user.
 */
async function locate (root: string, relative: string): Promise<Verdict> {
  if (relative.includes('\0')) return 'bad-request'
  // Backslash too: on Windows it is a separator, and send() treats it as one.
  if (relative.split(/[\\/]/).includes('..')) return 'not-found'

  const candidate = path.join(root, relative)
  const real = await realpathOrUndefined(candidate)
  // Missing files are send()'s to report, so its 404 and the redirect logic stay in one place.
  if (real === undefined) return 'ok'
  if (!isInside(root, real)) return 'not-found'

  // A directory is answered with its index file, which may itself be a link.
  const stats = await stat(real)
  if (stats.isDirectory()) {
    const index = await realpathOrUndefined(path.join(real, INDEX_FILE))
    if (index !== undefined && !isInside(root, index)) return 'not-found'
  }
  return 'ok'
}

async function realpathOrUndefined (file: string): Promise<string | undefined> {
  try {
    return await realpath(file)
  } catch {
    // ENOENT, ENOTDIR, ELOOP, EACCES: none of them can be served.
    return undefined
  }
}

function isInside (root: string, file: string): boolean {
  const rel = path.relative(root, file)
  return rel === '' || (rel !== '..' && !rel.startsWith('..' + path.sep) && !path.isAbsolute(rel))
}

/**
 * Node refuses header values outside Latin-1 and control characters; target names may be
 * any printable Unicode (validateTargetName), so such names are percent-encoded rather than
 * crashing every response.
 */
function headerSafe (name: string): string {
  return /^[\x21-\x7e]+$/.test(name) ? name : encodeURIComponent(name)
}

// Mirrors fastify's default client error handler (status choice, JSON body, socket
// teardown), adding only the x-served-by header.
function answerClientError (err: Error & { code?: string }, socket: Socket, servedBy: string, logger: Logger): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, 'Client Timeout']
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Exceeded maximum allowed HTTP header size']
      : [400, 'Client Error']
  const reason = status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'
  const body = JSON.stringify({ error: reason, message, statusCode: status })
  logger.trace({ err }, 'client error')
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Content-Type: application/json\r\n' +
      `x-served-by: ${servedBy}\r\n` +
      'Connection: close\r\n\r\n' +
      body
    )
  }
  socket.destroy(err)
}
