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
