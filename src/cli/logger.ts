// One pino logger per process: JSON by default (one line per state change, never one per
// request unless --access-log), pretty for humans with --log-pretty and in `zkproxy dev`, one
// line per entry either way (a multi-line object per event buries what matters).
import { hostname } from 'node:os'
import pino, { type Logger } from 'pino'
import pretty from 'pino-pretty'
import type { LogLevel } from '../config.js'

function base (level: LogLevel, cmd: string | undefined): pino.LoggerOptions {
  // `cmd`, not pino's `name`: log lines about targets carry their own `name` field. `time` as an
  // ISO date, which a person reading the JSON can read too (pino's default is epoch ms).
  return { level, timestamp: pino.stdTimeFunctions.isoTime, base: { pid: process.pid, hostname: hostname(), ...(cmd === undefined ? {} : { cmd }) } }
}

function prettyStream (): pretty.PrettyStream {
  // Synchronous: no worker thread, and nothing lost when we exit right after.
  return pretty({ colorize: process.stdout.isTTY, sync: true, singleLine: true, ignore: 'pid,hostname,cmd', translateTime: 'HH:MM:ss.l' })
}

export function createLogger (opts: { level: LogLevel, pretty: boolean, cmd?: string }): Logger {
  const options = base(opts.level, opts.cmd)
  return opts.pretty ? pino(options, prettyStream()) : pino(options)
}

export interface QuietLogger {
  readonly logger: Logger
  /** From now on every entry at the logger's level is written, not only warnings and errors. */
  release (): void
}

const WARN = 40

/**
 * A pretty logger that, until `release()`, writes only warnings and errors: `zkproxy dev`
 * prints its banner before the start-up chatter of a dozen parts would bury it. A filter on the
 * stream rather than a level: child loggers copy their level when made, a stream is shared.
 */
export function createQuietLogger (level: LogLevel, cmd?: string): QuietLogger {
  const out = prettyStream()
  let quiet = true
  const stream = {
    write (line: string): void {
      // pino writes `{"level":N,...`: the level is the first field of every line.
      const n = Number(/^\{"level":(\d+)/.exec(line)?.[1] ?? WARN)
      if (!quiet || n >= WARN) out.write(line)
    }
  }
  return { logger: pino(base(level, cmd), stream), release: () => { quiet = false } }
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
