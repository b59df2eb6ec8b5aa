// One pino logger per process: JSON by default (one line per state change, never one per
// request unless --access-log), pretty for humans with --log-pretty and in `zkproxy dev`, one
// line per entry either way (a multi-line object per event buries what matters).
import { writeSync } from 'node:fs'
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
const ACCESS_LOG_BUFFER_BYTES = 4096
/** Lines kept while stdout cannot take them (a slow reader); older ones are dropped beyond. */
const ACCESS_LOG_BACKLOG_BYTES = 1024 * 1024

/**
 * Access-log lines buffered in memory and written to a file descriptor in one synchronous write
 * per 4 KiB or per 200 ms, whichever comes first, and at exit. A reader that went away (EPIPE,
 * or any other error) turns the log off rather than the proxy; a reader that is slow (EAGAIN)
 * keeps up to 1 MiB waiting, then loses the oldest lines. Never blocks, never loops.
 */
export class BufferedLines {
  readonly #fd: number
  #pending: string[] = []
  #bytes = 0
  #broken = false
  #dropped = 0

  constructor (fd: number) { this.#fd = fd }

  /** Lines lost to a slow or gone reader. */
  get dropped (): number { return this.#dropped }

  write (line: string): void {
    if (this.#broken) { this.#dropped++; return }
    this.#pending.push(line)
    this.#bytes += line.length
    if (this.#bytes >= ACCESS_LOG_BUFFER_BYTES) this.flush()
  }

  flush (): void {
    if (this.#pending.length === 0 || this.#broken) return
    const text = this.#pending.join('')
    try {
      const buf = Buffer.from(text)
      let off = 0
      while (off < buf.length) off += writeSync(this.#fd, buf, off)
      this.#pending = []
      this.#bytes = 0
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
        this.#broken = true
        this.#dropped += this.#pending.length
        this.#pending = []
        this.#bytes = 0
        return
      }
      // A partial write may have gone out before EAGAIN; what waits is kept whole (a line may
      // then repeat), and the backlog is bounded.
      while (this.#bytes > ACCESS_LOG_BACKLOG_BYTES && this.#pending.length > 0) {
        this.#bytes -= this.#pending.shift()!.length
        this.#dropped++
      }
    }
  }
}

/**
 * The access log's own stream (--access-log): the same JSON lines on stdout, but buffered
 * (BufferedLines) so a line per request does not cost a write system call per request. The
 * proxy's other log lines stay unbuffered: they are rare and someone may be waiting for them.
 */
export function createAccessLogger (logger: Logger): Logger {
  if (!logger.isLevelEnabled('info')) return logger
  const lines = new BufferedLines(1)
  const timer = setInterval(() => { lines.flush() }, ACCESS_LOG_FLUSH_MS)
  timer.unref()
  process.once('exit', () => {
    clearInterval(timer)
    lines.flush()
  })
  return pino({ level: 'info', timestamp: pino.stdTimeFunctions.isoTime, base: logger.bindings() }, lines)
}
