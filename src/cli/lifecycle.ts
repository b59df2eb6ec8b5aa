// Signals and exits, kept in the CLI layer (the only place that exits). The first SIGTERM or
// SIGINT starts a graceful shutdown; a second one exits at once (but see SAME_SIGNAL_MS).
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

// A Ctrl-C reaches every process of the terminal's foreground group, and npm also forwards the
// SIGINT it got to its child: under `npm run`, one Ctrl-C arrives twice within milliseconds.
// A repeat this soon is that same keypress, not a second request to hurry.
const SAME_SIGNAL_MS = 500

export function createContext (logger: Logger, command = ''): CliContext {
  let shutdown: ((signal: NodeJS.Signals) => Promise<void>) | undefined
  let stopping: { signal: NodeJS.Signals, at: number } | undefined
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== undefined) {
      if (signal === stopping.signal && Date.now() - stopping.at < SAME_SIGNAL_MS) return
      logger.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    stopping = { signal, at: Date.now() }
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
