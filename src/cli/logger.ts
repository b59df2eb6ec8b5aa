// One pino logger per process: JSON by default (one line per state change, never one per
// request unless --access-log), pretty for humans with --log-pretty and in `zkproxy dev`.
import { hostname } from 'node:os'
import pino, { type Logger } from 'pino'
import pretty from 'pino-pretty'
import type { LogLevel } from '../config.js'

export function createLogger (opts: { level: LogLevel, pretty: boolean, cmd?: string }): Logger {
  // `cmd`, not pino's `name`: log lines about targets carry their own `name` field.
  const base = { level: opts.level, base: { pid: process.pid, hostname: hostname(), ...(opts.cmd === undefined ? {} : { cmd: opts.cmd }) } }
  if (!opts.pretty) return pino(base)
  // Synchronous pretty stream: no worker thread, and nothing lost when we exit right after.
  return pino(base, pretty({ colorize: process.stdout.isTTY, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }))
}

/** How long an access-log line may wait in the buffer before it is written. */
const ACCESS_LOG_FLUSH_MS = 200

/**
 * The access log's own stream (--access-log): the same JSON lines on stdout, but buffered (4 KiB
 * or 200 ms, whichever first) so a line per request does not cost a write system call per
 * request. Writes are synchronous (no write is ever in flight), so what is buffered is written
 * whole when the process exits. The proxy's other log lines stay
 * unbuffered: they are rare and someone may be waiting for them.
 */
export function createAccessLogger (logger: Logger): Logger {
  if (!logger.isLevelEnabled('info')) return logger
  const dest = pino.destination({ dest: 1, minLength: 4096, sync: true })
  const write = (): void => {
    try { dest.flushSync() } catch { /* stdout gone: the lines have nowhere to go */ }
  }
  const timer = setInterval(write, ACCESS_LOG_FLUSH_MS)
  timer.unref()
  process.once('exit', () => {
    clearInterval(timer)
    write()
  })
  return pino({ level: 'info', base: logger.bindings() }, dest)
}
