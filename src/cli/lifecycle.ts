// Signals and exits, kept in the CLI layer (the only place that exits). The first SIGTERM or
// SIGINT starts a graceful shutdown; a second one exits at once.
import type { Logger } from 'pino'

export interface CliContext {
  readonly logger: Logger
  /** Registers the graceful shutdown; exit code 0 when it resolves, 1 when it throws. */
  onShutdown (fn: (signal: NodeJS.Signals) => Promise<void>): void
  /**
   * A start-up failure found after `run` returned (e.g. ZooKeeper refusing --zk-auth on the
   * first session): one line like main.ts prints for a bad flag, then exit code 2.
   */
  failStartup (message: string, code?: string): void
}

export function createContext (logger: Logger, command = ''): CliContext {
  let shutdown: ((signal: NodeJS.Signals) => Promise<void>) | undefined
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    stopping = true
    logger.info({ signal }, 'shutting down')
    const run = shutdown ?? (async () => {})
    run(signal).then(() => { process.exit(0) }, (err: unknown) => {
      logger.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  return {
    logger,
    onShutdown (fn) { shutdown = fn },
    failStartup (message, code) {
      process.stderr.write(`zkproxy${command === '' ? '' : ` ${command}`}: ${message}${code === undefined ? '' : ` (${code})`}\n`)
      process.exit(2)
    }
  }
}
